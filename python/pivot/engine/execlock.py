"""Per-stage execution locks: `flock` on `.pivot/tmp/locks/<stage>.lock`.

The kernel releases an flock when its holder dies, so a killed pivot never leaves a lock that
needs manual clean-up: the "dead-PID takeover" is flock semantics, not a pid check. The file
records the holder's pid only so that a waiting pivot can say whom it waits for. Lock files are
never deleted (deleting a lock file someone may be about to open races with flock).
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


class StageLock:
    """An exclusive lock on one stage, across processes."""

    def __init__(self, locks_dir: Path, stage: str) -> None:
        self.stage = stage
        self.path = lock_path(locks_dir, stage)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if free; False (without blocking) if another process holds it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is informational only
        self._fd = fd
        return True

    def holder_pid(self) -> int | None:
        """The pid recorded by the current (or last) holder, if readable."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
            return int(text) if text else None
        except (OSError, ValueError):
            return None

    def acquire(self, poll_s: float = 0.05) -> None:
        """Block until the lock is ours, logging once whom we wait for."""
        if self.try_acquire():
            return
        logger.warning("waiting for %s (pid %s)", self.stage, self.holder_pid() or "?")
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
