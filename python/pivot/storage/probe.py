"""Which link modes work between a cache and a project (for `pivot doctor`).

A throw-away file is created among the cache's temp files (`files/.pvtmp-<pid>-…`, so a crash
leaves a temp the next cache operation removes) and linked into the project's `.pivot/tmp/` the
way a restore would: `ioctl(FICLONE)` for reflink, `link(2)` for hardlink. Both probes are
removed at once.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from pivot.storage.files import write_atomic

FICLONE = 0x40049409  # _IOW(0x94, 9, int), linux/fs.h


@dataclass(frozen=True)
class ModeProbe:
    mode: str
    works: bool
    reason: str  # "" when it works, else the errno name and message


def _temp_name(tag: str) -> str:
    return f".pvtmp-{os.getpid()}-0-{tag}{secrets.token_hex(4)}"


def _why(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "error")
    return f"{name}: {exc.strerror or exc}"


def _reflink(src: Path, dest: Path) -> None:
    with open(src, "rb") as s, open(dest, "xb") as d:
        fcntl.ioctl(d.fileno(), FICLONE, s.fileno())


def probe_link_modes(cache_dir: Path, project_tmp: Path) -> list[ModeProbe]:
    """Try reflink, hardlink and copy from `cache_dir/files` into `project_tmp`."""
    files = cache_dir / "files"
    files.mkdir(parents=True, exist_ok=True)
    project_tmp.mkdir(parents=True, exist_ok=True)
    src = files / _temp_name("doctor")
    write_atomic(src, b"pivot doctor link probe\n")
    results: list[ModeProbe] = []
    try:
        for mode, action in (("reflink", _reflink), ("hardlink", os.link), ("copy", shutil.copy)):
            dest = project_tmp / _temp_name(mode)
            try:
                action(src, dest)
            except OSError as exc:
                results.append(ModeProbe(mode, False, _why(exc)))
            else:
                results.append(ModeProbe(mode, True, ""))
            finally:
                dest.unlink(missing_ok=True)
    finally:
        src.unlink(missing_ok=True)
    return results


def same_filesystem(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free
