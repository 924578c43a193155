"""The Dask task that runs one stage on a worker sharing no filesystem with the coordinator.

Steps (each attempt starts from nothing, so Dask may retry it on another worker after a crash):
  1. a fresh scratch project under the worker's own local directory gets the code snapshot;
  2. the stage's inputs are fetched from the remote into the worker's cache (one cache per
     worker, content-addressed, so shared by its tasks and attempts) and restored into it;
  3. one of the worker's stage processes (`stage.py`: a pool per code snapshot, the pipeline
     loaded once per process) runs the stage with the local runner's worker code
     (`engine.worker`), after checking that the snapshot gives the stage the coordinator's
     fingerprint and params;
  4. the outputs go into the worker's cache and are pushed to the remote, then the run-cache
     entry (unless --no-commit); the task returns the output entries, which the coordinator
     verifies against the remote before it writes anything (`executor.py`).
Remote writes are create-only and content-addressed (docs/remote.md), so an attempt killed
half-way leaves nothing a retry could trip over.

Test hooks (environment of the Dask worker process, documented in docs/cluster.md):
  PIVOT_DASK_FORBID=DIR   the task and its stage process refuse (PermissionError, through an
                          audit hook) to open, list, create or chdir into anything under DIR:
                          tests point it at the coordinator's project to prove nothing is read
                          from there.
  PIVOT_DASK_LIE=STAGE    the task reports a wrong hash for STAGE's first output (a lying or
                          broken worker), which the coordinator must refuse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivot.exceptions import PivotError
from pivot.types import HashInfo, OutEntry

FORBID_ENV = "PIVOT_DASK_FORBID"
LIE_ENV = "PIVOT_DASK_LIE"


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs about one stage; plain data, no coordinator paths."""

    stage: str  # the stage's name in the coordinator's graph (for messages and run entries)
    own_name: str  # its name in its own pipeline file (differs with --all)
    pipeline_dir: str  # project-relative directory the pipeline is loaded from ("" = root)
    remote: Any  # storage.remote_config.RemoteSettings, without secrets
    deps: tuple[tuple[str, HashInfo], ...]  # project-relative path -> object to restore there
    outs: tuple[tuple[str, bool], ...]  # output key -> cached
    incremental: tuple[tuple[str, HashInfo | None], ...] = ()  # IncrementalOut -> previous
    code: dict[str, str] = field(default_factory=dict)  # the coordinator's fingerprint
    params: dict[str, Any] = field(default_factory=dict)
    run_key: str = ""
    push_run_entry: bool = True  # False: --no-commit, or a stage with an IncrementalOut
    allow_uncached_incremental: bool = False


@dataclass
class TaskResult:
    ok: bool
    error: str = ""
    output: str = ""
    outs: dict[str, OutEntry] = field(default_factory=dict)
    worker: str = ""  # the Dask worker's address
    duration_ms: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # step -> ms (for `pivot -vv`)


_guarded = False


def install_guard() -> None:
    """PIVOT_DASK_FORBID (tests): refuse file access under that directory in this process."""
    global _guarded
    forbid = os.environ.get(FORBID_ENV)
    if not forbid or _guarded:
        return
    prefix = os.path.realpath(forbid)
    events = {
        "open",
        "os.listdir",
        "os.scandir",
        "os.chdir",
        "os.mkdir",
        "os.remove",
        "os.rename",
        "os.link",
        "os.symlink",
        "shutil.copyfile",
        "shutil.copytree",
    }

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in events:
            return
        for a in args:
            if isinstance(a, (str, bytes, os.PathLike)):
                p = os.fsdecode(a)
                if not p:
                    continue
                full = os.path.realpath(p)
                if full == prefix or full.startswith(prefix + os.sep):
                    raise PermissionError(f"{FORBID_ENV}: {event} of {p} refused on a worker")

    sys.addaudithook(hook)
    _guarded = True


def _base_dir() -> Path:
    """This worker's own directory for pivot (the Dask worker's local directory)."""
    try:
        from distributed import get_worker

        base = Path(get_worker().local_directory) / "pivot"
    except (ImportError, ValueError):
        base = Path(tempfile.gettempdir()) / f"pivot-dask-{os.getpid()}"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return ""


def _worker_project(base: Path) -> Any:
    """The worker's own project: its cache, run cache and remote index copies live here."""
    from pivot.config import Config
    from pivot.project import PIVOT_DIR, Project

    root = base / "project"
    (root / PIVOT_DIR / "state").mkdir(parents=True, exist_ok=True)
    return Project(root=root, config=Config(), cache_dir=root / PIVOT_DIR / "cache")


def run_task(spec: TaskSpec, code: Any) -> TaskResult:
    """Run one stage (see module docstring). A stage failure is a result with `ok=False`;
    infrastructure errors (remote unreachable, the stage process killed) raise, so that Dask
    retries the task."""
    from pivot.storage import files

    started = time.perf_counter()
    install_guard()
    base = _base_dir()
    wproj = _worker_project(base)
    (base / "tasks").mkdir(exist_ok=True)
    task_dir = Path(tempfile.mkdtemp(prefix="t-", dir=base / "tasks"))
    try:
        result = _run_in(spec, code, wproj, task_dir)
    finally:
        files.remove_tree(str(task_dir))
    result.worker = _worker_address()
    result.duration_ms = (time.perf_counter() - started) * 1000.0
    return result


def _fetch_inputs(spec: TaskSpec, remote: Any, cache: Any, root: Path) -> str | None:
    items = [(info["hash"], info["is_dir"]) for _p, info in spec.deps]
    items += [(info["hash"], info["is_dir"]) for _p, info in spec.incremental if info is not None]
    if items:
        rep = remote.fetch(items)
        bad = [*(p.hash for p in rep.missing), *(p.hash for p in rep.corrupt)]
        if bad:
            names = {info["hash"]: p for p, info in spec.deps}
            where = ", ".join(f"{names.get(h, h)} ({h[:12]})" for h in bad)
            return f"remote {remote.name}: input(s) missing or corrupt: {where}"
    # Parents before what lies inside them (a directory dep and a file dep within it).
    for path, info in sorted(spec.deps, key=lambda d: d[0]):
        dest = root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        cache.restore(info, dest)
    return None


def _run_in(spec: TaskSpec, code: Any, wproj: Any, root: Path) -> TaskResult:
    phases: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        phases[name] = round((now - t0) * 1000.0, 1)
        t0 = now

    result = _steps(spec, code, wproj, root, lap)
    result.phases = phases
    return result


def _steps(spec: TaskSpec, code: Any, wproj: Any, root: Path, lap: Any) -> TaskResult:
    from pivot.engine import plan
    from pivot.project import PIVOT_DIR
    from pivot.storage import runcache
    from pivot.storage.cache import Cache
    from pivot.storage.remote import Remote

    code.write_to(root)
    (root / PIVOT_DIR / "tmp").mkdir(parents=True, exist_ok=True)
    (root / spec.pipeline_dir).mkdir(parents=True, exist_ok=True)
    remote = Remote(spec.remote, wproj)
    cache = Cache(wproj.cache_dir, None)
    lap("snapshot")
    problem = _fetch_inputs(spec, remote, cache, root)
    lap("inputs")
    if problem is not None:
        return TaskResult(ok=False, error=f"PivotError: {problem}")

    outcome = _run_stage_process(spec, code, wproj.root.parent, root, wproj.cache_dir)
    lap("stage process")
    if not outcome["ok"]:
        return TaskResult(ok=False, error=outcome["error"], output=outcome["output"])

    outs: dict[str, OutEntry] = {}
    for key, cached in spec.outs:
        path = root / key
        if not os.path.lexists(path):
            return TaskResult(
                ok=False,
                error=f"OutputMissingError: stage '{spec.stage}' did not produce output {key}",
                output=outcome["output"],
            )
        # Uncached outputs (metrics) travel through the remote too: it is the only channel.
        outs[key] = plan.out_entry(cache.insert(path), cached)
    lap("insert outputs")
    rep = remote.push([(e["hash"], e["is_dir"]) for e in outs.values()])
    if rep.missing or rep.incomplete:
        raise PivotError(
            f"stage '{spec.stage}': could not publish outputs to remote {remote.name} "
            f"({', '.join([*rep.missing, *rep.incomplete])})"
        )
    if spec.push_run_entry:
        runcache.write(wproj.runs_dir, spec.run_key, spec.stage, outs)
        remote.push_run_entries([spec.run_key])
    lap("push")
    if os.environ.get(LIE_ENV) == spec.stage and outs:
        key = next(iter(outs))
        real = outs[key]["hash"]
        outs[key] = {**outs[key], "hash": real[:-1] + ("0" if real[-1] != "0" else "1")}
    return TaskResult(ok=True, output=outcome["output"], outs=outs)


def _code_root(base: Path, code: Any) -> Path:
    """The snapshot's own directory on this worker (written once, renamed into place), from
    which the stage processes load the pipeline."""
    from pivot.project import PIVOT_DIR
    from pivot.storage import files

    root: Path = base / "code" / str(code.id)
    if not root.is_dir():
        (base / "code").mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=base / "code"))
        code.write_to(tmp)
        (tmp / PIVOT_DIR).mkdir()
        try:
            os.rename(tmp, root)
        except OSError:  # another task of this worker was first
            files.remove_tree(str(tmp))
    return root


DONE = "PIVOT-STAGE-DONE"


class _StageProcess:
    """A `python -m pivot.engine.cluster.stage` child: jobs as JSON lines on its stdin; after
    each, the result in the job's file and a `DONE <id>` line on its stdout."""

    def __init__(self, snapshot: str) -> None:
        self.snapshot = snapshot
        env = dict(os.environ)
        env.setdefault("PIVOT_THREADS", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pivot.engine.cluster.stage", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def run(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """The job's result; None when the process died."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        token = f"{DONE} {job['id']}"
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except OSError:
            return None
        for line in self.proc.stdout:  # anything else is stray output of the stage's code
            if line.strip() == token:
                result: dict[str, Any] = json.loads(Path(job["result"]).read_text())
                return result
        return None

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


_idle: list[_StageProcess] = []  # this worker's stage processes waiting for a job
_idle_lock = threading.Lock()


def _take(snapshot: str) -> _StageProcess:
    with _idle_lock:
        for p in [p for p in _idle if p.snapshot != snapshot or p.proc.poll() is not None]:
            _idle.remove(p)  # another snapshot's code (a newer run), or dead
            p.stop()
        if _idle:
            return _idle.pop()
    return _StageProcess(snapshot)


def _give_back(p: _StageProcess) -> None:
    with _idle_lock:
        _idle.append(p)


def _run_stage_process(
    spec: TaskSpec, code: Any, base: Path, root: Path, cache_dir: Path
) -> dict[str, Any]:
    """Run the stage in one of this worker's stage processes (`stage.py`)."""
    code_root = _code_root(base, code)
    job = {
        "id": os.urandom(8).hex(),
        "result": str(root / ".pivot" / "tmp" / "stage-result.json"),
        "root": str(root),
        "load_root": str(code_root),
        "cwd": str(code_root / spec.pipeline_dir),
        "stage": spec.own_name,
        "display": spec.stage,
        "code": spec.code,
        "params": spec.params,
        "cache_dir": str(cache_dir),
        "incremental": [[str(root / p), info] for p, info in spec.incremental],
        "allow_uncached_incremental": spec.allow_uncached_incremental,
    }
    proc = _take(code.id)
    result = proc.run(job)
    if result is None:
        # The stage process died (killed, out of memory): an infrastructure failure that Dask
        # retries, with a new process.
        proc.stop()
        raise RuntimeError(f"stage '{spec.stage}': its process exited ({proc.proc.returncode})")
    _give_back(proc)
    return result
