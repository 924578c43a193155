"""`pivot track`: put a data file or directory under pivot with a `<path>.pvt` file.

A `.pvt` file is canonical JSON (keys sorted, one trailing newline):
`{"hash": ..., "is_dir": ..., "nfiles": ..., "path": "<name>", "size": ...}` where `path` is
the tracked path relative to the `.pvt` file's directory (we write the base name). The content
goes into the cache; `pivot checkout` restores it. Tracked paths are ordinary files to the
pipeline graph, so stages may depend on them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import orjson

from pivot import _native
from pivot.exceptions import PivotError, StorageError, UnsafePathError
from pivot.types import HashInfo

if TYPE_CHECKING:
    from pivot.engine.context import Context
    from pivot.project import Project
    from pivot.storage.cache import Cache

PVT_SUFFIX = ".pvt"
_MAX_PVT_BYTES = 1 << 20
_PRUNE = frozenset({".git", ".pivot", ".venv", "venv", "__pycache__", "node_modules"})


@dataclass(frozen=True)
class Tracked:
    pvt: str  # project-relative path of the .pvt file
    path: str  # project-relative path of the tracked file or directory
    info: HashInfo


def encode_pvt(name: str, info: HashInfo) -> bytes:
    doc = {
        "path": name,
        "hash": info["hash"],
        "size": info["size"],
        "nfiles": info["nfiles"],
        "is_dir": info["is_dir"],
    }
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) + b"\n"


def read_pvt(root: Path, pvt_rel: str) -> Tracked:
    """Parse and validate one `.pvt` file; StorageError naming the file and field."""
    file = root / pvt_rel
    try:
        if file.stat().st_size > _MAX_PVT_BYTES:
            raise StorageError(f"{pvt_rel}: too large for a .pvt file")
        doc = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError as e:
        raise StorageError(f"{pvt_rel}: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise StorageError(f"{pvt_rel}: expected a JSON object")
    name = doc.get("path")
    if not isinstance(name, str) or not name or "\x00" in name or "\n" in name:
        raise StorageError(f"{pvt_rel}: field 'path' must be a non-empty string")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts:
        raise UnsafePathError(f"{pvt_rel}: field 'path' escapes its directory: {name!r}")
    h = doc.get("hash")
    if not isinstance(h, str) or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise StorageError(f"{pvt_rel}: field 'hash' must be 64 lowercase hex digits")
    for fld, typ in (("size", int), ("nfiles", int), ("is_dir", bool)):
        v = doc.get(fld)
        if not isinstance(v, typ) or (typ is int and (isinstance(v, bool) or v < 0)):
            raise StorageError(f"{pvt_rel}: field '{fld}' is missing or invalid")
    parent = PurePosixPath(pvt_rel).parent
    rel = (parent / pure).as_posix()
    info = HashInfo(hash=h, size=doc["size"], nfiles=doc["nfiles"], is_dir=doc["is_dir"])
    return Tracked(pvt=pvt_rel, path=rel, info=info)


def find_pvt_files(root: Path, prune: Sequence[str] = ()) -> list[str]:
    """Project-relative paths of every `.pvt` file, skipping `.git`, `.pivot`, venvs and
    the directories in `prune` (stage output directories: they hold no tracked files)."""
    pruned = {p.rstrip("/") for p in prune}
    found: list[str] = []
    for dirpath, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        keep = []
        for d in dirs:
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if d in _PRUNE or rel in pruned:
                continue
            keep.append(d)
        dirs[:] = sorted(keep)
        for f in sorted(files):
            if f.endswith(PVT_SUFFIX):
                found.append(f"{rel_dir}/{f}" if rel_dir else f)
    return found


def track(target: Context | Project, paths: Sequence[Path | str]) -> list[Path]:
    """Cache each path and write `<path>.pvt` next to it; returns the `.pvt` paths."""
    from pivot.engine.context import Context

    if isinstance(target, Context):
        project = target.project
        cache: Cache = target.cache
        outputs = {
            o.path.rstrip("/"): s.name for s in target.pipeline.stages.values() for o in s.outs
        }
    else:
        from pivot.storage.cache import Cache

        project = target
        cache = Cache(project.cache_dir, project.state_dir, project.link_modes)
        outputs = {}

    written: list[Path] = []
    rels: list[str] = []
    for p in paths:
        rel = project.relpath(p)
        if rel in ("", "."):
            raise PivotError("cannot track the project root itself")
        first = rel.split("/", 1)[0]
        if first in (".pivot", ".git"):
            raise UnsafePathError(f"{rel}: cannot track paths under {first}/")
        if rel.endswith(PVT_SUFFIX):
            raise PivotError(f"{rel}: is a .pvt file; track the data path instead")
        for out, stage in outputs.items():
            if rel == out or rel.startswith(out + "/") or out.startswith(rel + "/"):
                raise PivotError(f"{rel}: overlaps output {out} of stage '{stage}'")
        path = project.root / rel
        if not os.path.lexists(path):
            raise PivotError(f"{rel}: no such file or directory")
        info = cache.insert(path)
        pvt = path.parent / (path.name + PVT_SUFFIX)
        _native.write_atomic(str(pvt), encode_pvt(path.name, info), None)
        written.append(pvt)
        rels.append(rel)
    from pivot.storage.gitignore import ignore_outputs

    # The data is ignored, its .pvt file is not: git keeps the pointer, pivot the content.
    ignore_outputs(project, rels)
    return written
