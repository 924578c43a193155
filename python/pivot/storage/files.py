"""Durable writes, stray-temp clean-up and tree removal (docs/formats.md, "Durable writes").

`write_atomic` is the one way pivot writes a file that anything else reads: a temp file
`.pvtmp-<pid>-…` beside the destination, fsync, rename, fsync of the directory. A crash leaves at
worst such a temp, which `clean_stale_temps` removes once its process is gone.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from pivot import _native


def write_atomic(path: Path, data: bytes, kill_point: str | None = None) -> None:
    """Write `data` to `path` durably (old or new content after a crash, never a mix)."""
    _native.write_atomic(str(path), data, kill_point)


def kill_point(name: str) -> None:
    """SIGKILL this process when env `PIVOT_KILL_AT` equals `name` (crash tests only)."""
    _native.kill_point(name)


def hash_bytes(data: bytes) -> str:
    """blake3 (hex) of `data`: the cache's object name for these bytes."""
    return _native.blake3_bytes(data)


def clean_stale_temps(directory: Path) -> None:
    """Remove `.pvtmp-<pid>-*` / `.pvold-<pid>-*` left in `directory` by a process that is gone
    (a crash between a durable write's temp and its rename). Best effort, never raises."""
    _native.clean_stale_temps(str(directory))


def make_writable(path: str) -> None:
    """Add the owner's write bit to `path` (never through a symlink); errors are ignored."""
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISLNK(mode):
            os.chmod(path, stat.S_IMODE(mode) | stat.S_IWUSR)
    except OSError:
        pass


_TRASH_SEQ = iter(range(1 << 62))


def move_aside(path: str, trash_dir: str | None) -> str | None:
    """Rename the directory `path` into `trash_dir` (same filesystem) so that it can be deleted
    while the stage runs; the name `.pvtmp-<pid>-…` lets a later command remove it if this
    process dies first. None: not a directory, or it cannot be moved (delete it in place)."""
    if trash_dir is None:
        return None
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or os.stat(trash_dir).st_dev != st.st_dev:
            return None
        dest = os.path.join(trash_dir, f".pvtmp-{os.getpid()}-trash-{next(_TRASH_SEQ)}")
        os.rename(path, dest)
    except OSError:
        return None
    return dest


def remove_path(path: str) -> None:
    """Delete a file, link or directory tree (read-only cache links included)."""
    import shutil  # not at module level: it costs every command a few ms of imports (lzma...)

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return

    def retry(func: object, p: str, exc: object) -> None:
        # A read-only directory cannot lose entries: make it writable and retry once.
        make_writable(os.path.dirname(p))
        make_writable(p)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        elif os.path.lexists(p):
            os.unlink(p)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)


def remove_tree(path: str) -> None:
    """Delete a directory tree with the Rust core (parallel, releases the GIL); read-only
    directories deeper down fall back to `remove_path`, the slower, thorough way."""
    try:
        _native.remove_tree(path)
    except OSError:
        remove_path(path)
