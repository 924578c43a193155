"""`repro --watch`: run, then re-run what a change made stale, until stopped.

One thread (the caller's) owns the pipeline and runs `runner.run`; a watcher thread
(`watchfiles`) and the `--serve` server only put requests on a queue. A change to a Python
file or a pipeline/params YAML re-imports the pipeline in this process (user modules dropped
from `sys.modules` first) and rebuilds the graph; then the whole selection is run and the
planner decides what actually changed. Worker processes always see the new code: the runner
starts a fresh pool for every run, and each worker imports the pipeline itself.

Changes are filtered before they count: `.pivot/`, `.git/`, virtualenvs, `__pycache__`, editor
temp files, pivot's own temp names and every declared output of the current pipeline are
ignored (so what a run writes never triggers another run), and of the rest only Python files,
the pipeline/params YAML files and the stages' dependencies matter.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import linecache
import logging
import os
import queue
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot.engine import runner
from pivot.exceptions import PivotError, UnknownStageError
from pivot.selection import expand_stages

if TYPE_CHECKING:
    from pivot.engine.context import Context
    from pivot.engine.events import RunSummary

logger = logging.getLogger(__name__)

DEFAULT_DEBOUNCE_MS = 300
_IGNORED_DIRS = frozenset(
    {
        ".pivot",
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "node_modules",
        ".ipynb_checkpoints",
    }
)
_CONFIG_NAMES = frozenset({"pivot.yaml", "pivot.yml", "params.yaml"})


@dataclass
class WatchSettings:
    cwd: Path
    cache_dir: Path | None = None
    all_pipelines: bool = False  # --all: every pipeline file at or below `cwd`, as one graph
    # Empty: the whole pipeline. Names, matrix groups or patterns (`pivot.selection`),
    # expanded against each reloaded pipeline.
    targets: list[str] = field(default_factory=list)
    opts: runner.RunOptions = field(default_factory=runner.RunOptions)
    debounce_ms: int = DEFAULT_DEBOUNCE_MS


@dataclass
class _Request:
    kind: str  # "changes" | "run" | "stop"
    paths: frozenset[str] = frozenset()
    stages: list[str] | None = None
    force: bool = False
    run_id: int = 0


def _call(observers: Iterable[object], method: str, *args: Any) -> None:
    for o in observers:
        fn = getattr(o, method, None)
        if fn is not None:
            fn(*args)


def _is_editor_temp(name: str) -> bool:
    return (
        name.endswith(("~", ".swp", ".swx", ".swo", ".tmp"))
        or name.startswith((".#", ".pvtmp-", ".pvold-"))
        or ".pivot-tmp-" in name
        or name == "4913"  # vim's write test
    )


def _foreign_roots() -> list[str]:
    """Directories whose modules are never user code (stdlib, site-packages, this pivot)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            roots.add(p)
    roots.add(str(Path(__file__).resolve().parents[1]))  # the pivot package itself
    return sorted(os.path.realpath(r) + os.sep for r in roots)


def purge_user_modules(root: Path) -> list[str]:
    """Drop from `sys.modules` every module loaded from a file under `root` (user code).

    Modules of the stdlib, of installed packages (a virtualenv inside the project included)
    and of pivot itself are kept. Returns the dropped names.
    """
    prefix = os.path.realpath(root) + os.sep
    foreign = _foreign_roots()
    dropped = []
    for name, module in list(sys.modules.items()):
        if name == "pivot" or name.startswith("pivot."):
            continue
        f = getattr(module, "__file__", None)
        if not isinstance(f, str):
            continue
        real = os.path.realpath(f)
        if not real.startswith(prefix) or any(real.startswith(r) for r in foreign):
            continue
        parts = Path(real[len(prefix) :]).parts
        if any(p in _IGNORED_DIRS or p == "site-packages" for p in parts[:-1]):
            continue
        del sys.modules[name]
        dropped.append(name)
    importlib.invalidate_caches()
    linecache.clearcache()
    return dropped


def forget_bytecode(paths: Iterable[str]) -> None:
    """Delete the cached bytecode of changed .py files.

    A .pyc is trusted when the source's mtime (whole seconds) and size match, so an edit of
    the same size within the second the .pyc was written would otherwise run the old code.
    """
    for p in paths:
        if not p.endswith(".py"):
            continue
        try:
            os.unlink(importlib.util.cache_from_source(p))
        except (OSError, ValueError, NotImplementedError):
            pass


class PathFilter:
    """Which changed paths matter for the current pipeline (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self.outputs: tuple[str, ...] = ()
        self.deps: tuple[str, ...] = ()
        self.sentinel: str | None = None  # a path whose event means "the watcher is live"
        self.ready = threading.Event()
        self.venvs = frozenset(
            e.name
            for e in os.scandir(self.root)
            if e.is_dir(follow_symlinks=False)
            and os.path.exists(os.path.join(e.path, "pyvenv.cfg"))
        )

    def update(self, ctx: Context) -> None:
        outs: list[str] = []
        deps: list[str] = []
        for stage in ctx.pipeline.stages.values():
            outs.extend(o.path.rstrip("/") for o in stage.outs)
            deps.extend(d.rstrip("/") for d in stage.dep_paths)
        self.outputs, self.deps = tuple(outs), tuple(deps)

    def relpath(self, path: str) -> str | None:
        # The directory resolved (the root is), the name kept: a symlinked dep is still a dep,
        # and a deleted file still maps to its path.
        real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        if real == self.root or not real.startswith(self.root + os.sep):
            return None
        return Path(real[len(self.root) + 1 :]).as_posix()

    @staticmethod
    def _under(rel: str, paths: tuple[str, ...]) -> bool:
        return any(rel == p or rel.startswith(p + "/") for p in paths)

    def ignored(self, rel: str) -> bool:
        parts = rel.split("/")
        if any(p in _IGNORED_DIRS for p in parts[:-1]) or parts[0] in self.venvs:
            return True
        return _is_editor_temp(parts[-1]) or self._under(rel, self.outputs)

    def relevant(self, rel: str) -> bool:
        """Could this change make a stage stale or change the pipeline?"""
        if self.ignored(rel):
            return False
        if rel.endswith(".py") or rel.split("/")[-1] in _CONFIG_NAMES:
            return True
        # a dependency, a file inside a dependency directory, or a directory holding one
        return self._under(rel, self.deps) or any(d.startswith(rel + "/") for d in self.deps)

    def __call__(self, _change: object, path: str) -> bool:  # watchfiles' filter signature
        if path == self.sentinel:
            self.ready.set()
            return False
        rel = self.relpath(path)
        return rel is not None and self.relevant(rel)


def needs_reload(rels: Iterable[str]) -> bool:
    return any(r.endswith(".py") or r.split("/")[-1] in _CONFIG_NAMES for r in rels)


class WatchLoop:
    """The loop; `observers` get the runner's sink events plus the loop's own:

    `run_started(run_id, trigger, stages)`, `run_finished(run_id, summary)`,
    `pipeline_error(message, kept_last_good)`, `watching()` — each optional.
    """

    def __init__(
        self,
        settings: WatchSettings,
        observers: Sequence[object],
        load: Callable[[], Context] | None = None,
    ) -> None:
        from pivot.project import find_root

        self.settings = settings
        self.observers = list(observers)
        self.root = find_root(settings.cwd)
        self._load = load or self._default_load
        self.ctx: Context | None = None  # the last good pipeline
        self.targets: list[str] = []  # settings.targets expanded against `ctx`
        self.error: str | None = None  # why the current files do not load, if they do not
        self.filter = PathFilter(self.root)
        self.requests: queue.Queue[_Request] = queue.Queue()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.current_run: int | None = None
        self.last_summary: RunSummary | None = None
        self._cancel: threading.Event | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # --- called from any thread ------------------------------------------------------------
    def request_run(self, stages: Sequence[str] | None = None, force: bool = False) -> int:
        """Queue a run (UnknownStageError for a stage the current pipeline lacks); its id."""
        ctx = self.ctx
        if self.error is not None:
            raise PivotError(f"pipeline error: {self.error}")
        if stages:
            if ctx is None:
                raise PivotError("no pipeline loaded yet")
            stages = expand_stages(stages, ctx.graph.names)
        run_id = next(self._ids)
        self.requests.put(_Request("run", stages=list(stages or []), force=force, run_id=run_id))
        return run_id

    def cancel(self) -> int | None:
        """Cancel the running run (workers killed, dependents not started); its id or None."""
        with self._lock:
            if self._cancel is not None:
                self._cancel.set()
            return self.current_run

    def stop(self) -> None:
        self._stop.set()
        self.cancel()
        self.requests.put(_Request("stop"))

    # --- the loop (caller's thread) --------------------------------------------------------
    def run_forever(self) -> None:
        """Initial run, then watch; returns after `stop()`; Ctrl-C raises KeyboardInterrupt."""
        import watchfiles  # noqa: F401  (imported here, not first on the watcher thread)

        try:
            # Watch before loading and the initial run: an edit made meanwhile is not lost.
            self._start_watcher()
            if self._reload():
                self._run(self.targets, self.settings.opts.force, "initial")
            while not self._stop.is_set():
                _call(self.observers, "watching")
                batch = self._next_batch()
                if batch is None:
                    return
                self._handle(batch)
        finally:
            self._stop.set()
            if self._watcher is not None:
                self._watcher.join(timeout=5)

    def _next_batch(self) -> list[_Request] | None:
        while True:
            try:
                # A timeout keeps Ctrl-C responsive on every platform.
                first = self.requests.get(timeout=0.5)
                break
            except queue.Empty:
                if self._stop.is_set():
                    return None
        batch = [first]
        while True:
            try:
                batch.append(self.requests.get_nowait())
            except queue.Empty:
                break
        if any(r.kind == "stop" for r in batch):
            return None
        return batch

    def _handle(self, batch: list[_Request]) -> None:
        changed = sorted(p for r in batch if r.kind == "changes" for p in r.paths)
        if changed:
            forget_bytecode(str(self.root / p) for p in changed)
            if needs_reload(changed):
                self._reload()
            # While the files on disk do not load, nothing runs: the last good pipeline's
            # functions no longer match their source (fingerprints), nor would workers load.
            if self.error is None and self.ctx is not None:
                shown = ", ".join(changed[:3]) + (", …" if len(changed) > 3 else "")
                self._run(self.targets, False, f"changed: {shown}")
        for r in batch:
            if r.kind != "run":
                continue
            if self.error is not None or self.ctx is None:
                _call(self.observers, "pipeline_error", self.error or "", self.ctx is not None)
                continue
            self._run(r.stages or self.targets, r.force, "requested", r.run_id)

    def _default_load(self) -> Context:
        from pivot.engine.context import load_context

        return load_context(
            self.settings.cwd,
            cache_dir=self.settings.cache_dir,
            all_pipelines=self.settings.all_pipelines,
        )

    def _reload(self) -> bool:
        """Import the pipeline afresh; on failure keep the last good one and say why."""
        purge_user_modules(self.root)
        try:
            ctx = self._load()
            targets = expand_stages(self.settings.targets, ctx.graph.names)
        except (PivotError, SyntaxError, ImportError, OSError) as e:
            self.error = " ".join(str(e).split()) or type(e).__name__
            _call(self.observers, "pipeline_error", self.error, self.ctx is not None)
            return False
        except Exception as e:  # user code raising anything while being imported
            self.error = f"{type(e).__name__}: {' '.join(str(e).split())}"
            _call(self.observers, "pipeline_error", self.error, self.ctx is not None)
            return False
        self.ctx, self.targets, self.error = ctx, targets, None
        self.filter.update(ctx)
        return True

    def _run(
        self, stages: Sequence[str], force: bool, trigger: str, run_id: int | None = None
    ) -> None:
        ctx = self.ctx
        assert ctx is not None
        rid = run_id if run_id is not None else next(self._ids)
        try:
            order = ctx.graph.order(list(stages) or None)
        except UnknownStageError as e:  # a stage removed since the request was queued
            _call(self.observers, "pipeline_error", str(e), True)
            return
        cancel = threading.Event()
        with self._lock:
            self.current_run, self._cancel = rid, cancel
        _call(self.observers, "run_started", rid, trigger, list(order))
        try:
            opts = replace(self.settings.opts, force=force)
            summary = runner.run(ctx, order, opts, self.observers, cancel=cancel)  # type: ignore[arg-type]
        except (PivotError, OSError) as e:  # e.g. --checkout-missing; the loop goes on
            logger.error("%s", e)
            return
        finally:
            with self._lock:
                self.current_run, self._cancel = None, None
        self.last_summary = summary
        _call(self.observers, "run_finished", rid, summary)

    def _start_watcher(self) -> None:
        """Start the watcher thread and wait (at most 10 s) until it sees changes.

        watchfiles sets its watches up on its own thread with no "ready" signal, so a file
        in .pivot/tmp is touched until its event comes through the filter.
        """
        tmp = self.root / ".pivot" / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        sentinel = tmp / f".pvtmp-{os.getpid()}-watch-ready"
        self.filter.sentinel = str(sentinel)
        self._watcher = threading.Thread(
            target=self._watch_files, name="pivot-watch-files", daemon=True
        )
        self._watcher.start()
        deadline = time.monotonic() + 10
        try:
            while not self.filter.ready.wait(0.05) and time.monotonic() < deadline:
                sentinel.write_bytes(b"")
        finally:
            sentinel.unlink(missing_ok=True)
        if not self.filter.ready.is_set():
            logger.warning("file watching did not start within 10 s; changes may be missed")

    def _watch_files(self) -> None:
        import watchfiles

        try:
            for changes in watchfiles.watch(
                self.root,
                watch_filter=self.filter,
                debounce=self.settings.debounce_ms,
                step=50,
                stop_event=self._stop,
                raise_interrupt=False,
                yield_on_timeout=False,
            ):
                rels = {r for _c, p in changes if (r := self.filter.relpath(p)) is not None}
                if rels:
                    self.requests.put(_Request("changes", paths=frozenset(rels)))
        except Exception as e:  # the watcher must not die silently
            logger.error("file watching stopped: %s", e)
