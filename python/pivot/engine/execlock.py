"""Per-stage execution locks: `flock` on `.pivot/tmp/locks/<stage>.lock`.

The kernel releases an flock when its holder dies, so a killed pivot never leaves a lock that
needs manual clean-up: the "dead-PID takeover" is flock semantics, not a pid check. The file
records the holder's pid only so that a waiting pivot can say whom it waits for. Lock files are
never deleted (deleting a lock file someone may be about to open races with flock).

`pivot gc` must not delete an object that a running stage has put into the cache but not yet
recorded in a lock, nor one it is about to reuse: every holder of a stage lock (and `track`,
`fetch`) also holds a shared flock on `.pivot/tmp/locks/.gc.lock` (no stage name starts with
`.`), and gc holds it exclusively while it reads the roots and deletes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path
from types import TracebackType

from pivot.storage.lock import lock_path

logger = logging.getLogger(__name__)


GC_LOCK_NAME = ".gc.lock"


def _open_lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


class CacheUse:
    """A shared hold on the cache against `pivot gc` (see the module docstring)."""

    def __init__(self, locks_dir: Path) -> None:
        self.path = locks_dir / GC_LOCK_NAME
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = _open_lock(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def acquire(self, poll_s: float = 0.05) -> None:
        if self.try_acquire():
            return
        logger.warning("waiting for pivot gc (pid %s)", _read_pid(self.path) or "?")
        while not self.try_acquire():
            time.sleep(poll_s)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> CacheUse:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class GcLock:
    """`pivot gc`'s exclusive hold: waits until no stage lock, `track` or `fetch` is held."""

    def __init__(self, locks_dir: Path) -> None:
        self.path = locks_dir / GC_LOCK_NAME
        self._fd: int | None = None

    def acquire(self, poll_s: float = 0.1) -> None:
        fd = _open_lock(self.path)
        logged = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not logged:
                        logged = True
                        logger.warning("waiting for running pivot commands to finish")
                    time.sleep(poll_s)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError:
                pass  # the pid is informational only
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> GcLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StageLock:
    """An exclusive lock on one stage, across processes."""

    def __init__(self, locks_dir: Path, stage: str) -> None:
        self.stage = stage
        self.path = lock_path(locks_dir, stage)
        self._fd: int | None = None
        self._cache = CacheUse(locks_dir)
        self._gc_busy = False

    def try_acquire(self) -> bool:
        """Take the lock if free; False (without blocking) if another process holds it."""
        if self._fd is not None:
            return True
        fd = _open_lock(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._gc_busy = False
            return False
        except BaseException:
            os.close(fd)
            raise
        try:
            self._gc_busy = not self._cache.try_acquire()
        except BaseException:
            os.close(fd)
            raise
        if self._gc_busy:
            os.close(fd)
            return False
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is informational only
        self._fd = fd
        return True

    def holder_pid(self) -> int | None:
        """The pid recorded by the current (or last) holder, if readable."""
        return _read_pid(self.path)

    def blocker(self) -> str:
        """Whom the last failed `try_acquire` waits for: `<stage> (pid N)` or `pivot gc`."""
        if self._gc_busy:
            return f"pivot gc (pid {_read_pid(self._cache.path) or '?'})"
        return f"{self.stage} (pid {self.holder_pid() or '?'})"

    def acquire(self, poll_s: float = 0.05) -> None:
        """Block until the lock is ours, logging once whom we wait for."""
        if self.try_acquire():
            return
        logger.warning("waiting for %s", self.blocker())
        while not self.try_acquire():
            time.sleep(poll_s)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            self._cache.release()

    def __enter__(self) -> StageLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
