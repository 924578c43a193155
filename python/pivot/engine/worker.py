"""Code that runs inside worker processes: prepare outputs, run the stage, capture its output.

Workers are started by the runner with `forkserver` (never `fork`: the Rust thread pool may be
running in the parent, and a forked child of a multi-threaded process can deadlock). Everything
crossing the process boundary is plain data (`WorkerTask` in, `WorkerOutcome` out).
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pivot.exceptions import PivotError
from pivot.storage import files
from pivot.storage.links import LinkMode
from pivot.types import HashInfo

if TYPE_CHECKING:
    from pivot.pipeline import Pipeline

_PR_SET_PDEATHSIG = 1
_MAX_CAPTURE = 1 << 20  # keep the last MiB of a stage's output

# The pipeline, loaded once per worker process (keyed by where it was loaded from).
# (root, pipeline dir) -> loaded pipeline; several with `--all`, whose stages come from several
# pipeline files, so that alternating tasks do not re-import them.
_PIPELINES: dict[tuple[str, str], Pipeline] = {}


@dataclass(frozen=True)
class IncrementalPrep:
    path: str  # absolute
    previous: HashInfo | None  # recorded version in the cache, restored as a writable copy


@dataclass(frozen=True)
class WorkerTask:
    stage: str
    root: str
    cwd: str  # where the pipeline file was discovered from
    remove: tuple[str, ...]  # absolute paths of declared outputs, deleted before the run
    incremental: tuple[IncrementalPrep, ...] = ()
    # Where old output directories are moved aside and deleted while the stage runs
    # (`.pivot/tmp`); None: delete them before the run.
    trash_dir: str | None = None
    cache_dir: str = ""
    state_dir: str | None = None
    allow_uncached_incremental: bool = False
    # Capture stdout/stderr into this file (the main process tails it to stream the output);
    # None: an anonymous temp file, read back at the end.
    log_path: str | None = None
    # Load the pipeline from this project root instead of `root` (the Dask executor: the code
    # lives in one directory per snapshot, the stage runs in its own scratch project; `cwd`
    # is then under `load_root`).
    load_root: str | None = None


@dataclass
class WorkerOutcome:
    ok: bool
    error: str = ""  # one line: "<ExceptionType>: <message>"
    output: str = ""  # captured stdout/stderr (+ traceback for non-pivot errors)
    duration_ms: float = 0.0


def init_worker(main_pid: int) -> None:
    """Process initializer: die with the main process, one Rust thread, no SIGINT."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    # PDEATHSIG fires when our *parent* dies, and with forkserver that is the fork server, which
    # stays alive as long as any worker holds its "alive" pipe — so it is not enough. Watch the
    # main process itself.
    _watch_main(main_pid)
    os.environ.setdefault("PIVOT_THREADS", "1")
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _watch_main(main_pid: int) -> None:
    """SIGKILL ourselves as soon as the main process exits (pidfd, else 0.5 s polling)."""
    try:
        pidfd: int | None = os.pidfd_open(main_pid)
    except ProcessLookupError:
        os._exit(1)
    except (OSError, AttributeError):
        pidfd = None

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])  # readable when the process exits
        else:
            while True:
                try:
                    os.kill(main_pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="pivot-watch-main", daemon=True).start()


def _pipeline(root: str, cwd: str) -> Pipeline:
    key = (root, cwd)
    if key not in _PIPELINES:
        from pivot.pipeline import load_pipeline

        _PIPELINES[key] = load_pipeline(Path(root), Path(cwd))
    return _PIPELINES[key]


def _delete_in_background(paths: list[str]) -> threading.Thread | None:
    """Delete moved-aside trees on a thread (the Rust core releases the GIL, so the stage's
    Python code does not wait for it); the caller joins it before reporting the stage done."""
    if not paths:
        return None

    def run() -> None:
        for p in paths:
            files.remove_tree(p)

    t = threading.Thread(target=run, name="pivot-remove-old-outputs", daemon=True)
    t.start()
    return t


def _private_copy(path: str) -> None:
    """Make every file under `path` a private writable copy (break hard links to the cache)."""
    found: list[str] = []
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, _dirs, names in os.walk(path):
            files.make_writable(dirpath)
            found.extend(os.path.join(dirpath, n) for n in names)
    else:
        found.append(path)
    for f in found:
        st = os.lstat(f)
        if stat.S_ISLNK(st.st_mode):
            continue
        if st.st_nlink > 1 or not (st.st_mode & stat.S_IWUSR):
            tmp = f"{f}.pivot-tmp-{os.getpid()}"
            shutil.copy2(f, tmp)
            files.make_writable(tmp)
            os.replace(tmp, f)


def _prepare_incremental(task: WorkerTask, inc: IncrementalPrep) -> None:
    if inc.previous is not None:
        from pivot.storage.cache import Cache

        state_dir = Path(task.state_dir) if task.state_dir is not None else None
        cache = Cache(Path(task.cache_dir), state_dir)
        cache.restore(inc.previous, Path(inc.path), [LinkMode.COPY])
        _private_copy(inc.path)
        return
    if not os.path.lexists(inc.path):
        return  # first run: the stage gets loader.empty()
    if not task.allow_uncached_incremental:
        raise PivotError(
            f"IncrementalOut {inc.path} exists but its previous version is not in the cache; "
            "delete it or pass --allow-uncached-incremental to build on it as it is"
        )
    _private_copy(inc.path)


def _body(task: WorkerTask) -> None:
    from pivot.pipeline import run_stage

    pipeline = _pipeline(task.load_root or task.root, task.cwd)
    stage = pipeline.stages[task.stage]
    aside: list[str] = []
    for path in task.remove:
        moved = files.move_aside(path, task.trash_dir)
        if moved is None:
            files.remove_path(path)
        else:
            aside.append(moved)
    deleting = _delete_in_background(aside)
    try:
        for inc in task.incremental:
            _prepare_incremental(task, inc)
        run_stage(stage, Path(task.root))
    finally:
        if deleting is not None:
            deleting.join()


def execute(task: WorkerTask) -> WorkerOutcome:
    """Run one stage with fd-level capture of stdout/stderr (subprocess and C output too)."""
    started = time.perf_counter()
    os.chdir(task.root)
    error = ""
    tb = ""
    sys.stdout.flush()
    sys.stderr.flush()
    capture = open(task.log_path, "w+b") if task.log_path else tempfile.TemporaryFile()
    with capture as tmp:
        saved = (os.dup(1), os.dup(2))
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            _body(task)
        except PivotError as e:
            error = f"{type(e).__name__}: {e}"
        except BaseException as e:
            error = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
            tb = "".join(traceback.format_exception(e))
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except Exception:
                pass
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        size = tmp.seek(0, os.SEEK_END)
        tmp.seek(max(0, size - _MAX_CAPTURE))
        captured = tmp.read().decode("utf-8", errors="replace")
    output = captured + tb
    return WorkerOutcome(
        ok=not error,
        error=error,
        output=output,
        duration_ms=(time.perf_counter() - started) * 1000.0,
    )
