"""Tracked-file records, `<path>.pvt` (docs/formats.md, "Tracked files"): encode, write,
read with validation, and find them in the workspace.

A `.pvt` file is canonical JSON (keys sorted, one trailing newline):
`{"hash": ..., "is_dir": ..., "nfiles": ..., "path": "<name>", "size": ...}` where `path` is
the tracked path relative to the `.pvt` file's directory (pivot writes the base name).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import orjson

from pivot import naming
from pivot.exceptions import StorageError, UnsafePathError
from pivot.storage.files import clean_stale_temps, write_atomic
from pivot.types import HashInfo

PVT_SUFFIX = ".pvt"
_MAX_PVT_BYTES = 1 << 20
_PRUNE = frozenset({".git", ".pivot", ".venv", "venv", "__pycache__", "node_modules"})


@dataclass(frozen=True)
class Tracked:
    pvt: str  # project-relative path of the .pvt file
    path: str  # project-relative path of the tracked file or directory
    info: HashInfo


def pvt_path(path: Path) -> Path:
    """The `.pvt` file that tracks `path`."""
    return path.parent / (path.name + PVT_SUFFIX)


def encode_pvt(name: str, info: HashInfo) -> bytes:
    doc = {
        "path": name,
        "hash": info["hash"],
        "size": info["size"],
        "nfiles": info["nfiles"],
        "is_dir": info["is_dir"],
    }
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) + b"\n"


def write_pvt(path: Path, info: HashInfo) -> Path:
    """Write (durably) the `.pvt` file recording `info` for `path`; returns its path."""
    pvt = pvt_path(path)
    write_atomic(pvt, encode_pvt(path.name, info))
    clean_stale_temps(pvt.parent)  # an earlier crash's temp beside it
    return pvt


def read_pvt(root: Path, pvt_rel: str) -> Tracked:
    """Parse and validate one `.pvt` file; StorageError naming the file and field."""
    file = root / pvt_rel
    if file.stat().st_size > _MAX_PVT_BYTES:
        raise StorageError(f"{pvt_rel}: too large for a .pvt file")
    return parse_pvt(file.read_bytes(), pvt_rel)


def parse_pvt(data: bytes, pvt_rel: str, label: str | None = None) -> Tracked:
    """Validate the bytes of the `.pvt` file at project-relative `pvt_rel` (read from disk or
    from git); errors name `label` (default: `pvt_rel`) and the field."""
    where = label or pvt_rel
    if len(data) > _MAX_PVT_BYTES:
        raise StorageError(f"{where}: too large for a .pvt file")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise StorageError(f"{where}: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise StorageError(f"{where}: expected a JSON object")
    name = doc.get("path")
    if not isinstance(name, str) or not name or naming.has_nul_or_newline(name):
        raise StorageError(f"{where}: field 'path' must be a non-empty string")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts:
        raise UnsafePathError(f"{where}: field 'path' escapes its directory: {name!r}")
    h = doc.get("hash")
    if not isinstance(h, str) or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise StorageError(f"{where}: field 'hash' must be 64 lowercase hex digits")
    for fld, typ in (("size", int), ("nfiles", int), ("is_dir", bool)):
        v = doc.get(fld)
        if not isinstance(v, typ) or (typ is int and (isinstance(v, bool) or v < 0)):
            raise StorageError(f"{where}: field '{fld}' is missing or invalid")
    parent = PurePosixPath(pvt_rel).parent
    rel = (parent / pure).as_posix()
    info = HashInfo(hash=h, size=doc["size"], nfiles=doc["nfiles"], is_dir=doc["is_dir"])
    return Tracked(pvt=pvt_rel, path=rel, info=info)


def find_pvt_files(root: Path, prune: Sequence[str] = ()) -> list[str]:
    """Project-relative paths of every `.pvt` file, skipping `.git`, `.pivot`, venvs, the
    directories in `prune` (stage output directories: they hold no tracked files) and every
    directory `d` next to a `d.pvt` (a tracked directory: `pivot track` refuses nested
    tracking, so a 10^6-file tree costs one name lookup, not a walk)."""
    pruned = {p.rstrip("/") for p in prune}
    found: list[str] = []
    for dirpath, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        pvts = sorted(f for f in files if f.endswith(PVT_SUFFIX))
        tracked = {f[: -len(PVT_SUFFIX)] for f in pvts}
        keep = []
        for d in dirs:
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if d in _PRUNE or rel in pruned or d in tracked:
                continue
            keep.append(d)
        dirs[:] = sorted(keep)
        found.extend(f"{rel_dir}/{f}" if rel_dir else f for f in pvts)
    return found
