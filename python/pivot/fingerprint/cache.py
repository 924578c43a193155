"""The stat-keyed cache of per-function/per-class source digests (`.pivot/state/fingerprints.json`).

Parsing and dumping ASTs is the expensive part of fingerprinting; what it yields for one def or
class (its normalized digest and the names it references) depends only on the source file. So
results are stored per file, under that file's (size, mtime_ns, ctime_ns, inode, device): while
the stat matches, the file is neither read nor parsed. Values (constants, closures, defaults,
loader configuration) are always read from the live objects: they are cheap and may differ.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from types import CodeType, FunctionType

from pivot.fingerprint import ast_normalize

# Bump when digests or refs are computed differently; the Python version is part of the key
# because `ast.dump` output changes between versions.
_FORMAT = 1
_HEADER = f"{_FORMAT}:{sys.version_info[0]}.{sys.version_info[1]}"
# A file changed within this window of our stat could change again within the same timestamp
# tick and keep its stat ("racily clean", as in git's index): such entries are used in this
# process but not persisted. 2 s also covers filesystems with coarse (FAT: 2 s) timestamps.
RACY_NS = 2_000_000_000

FILE_NAME = "fingerprints.json"

# (digest, refs) of one def or class; None when the source could not be found.
SourceInfo = tuple[str, tuple[str, ...]] | None
_Stat = tuple[int, int, int, int, int]


class _FileRecord:
    __slots__ = ("objects", "racy", "stat")

    def __init__(self, stat: _Stat, objects: dict[str, SourceInfo], racy: bool) -> None:
        self.stat = stat
        self.objects = objects
        self.racy = racy


class FingerprintCache:
    """Source digests keyed by file stat; `load` it from the state dir, `save` after use."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._files: dict[str, _FileRecord] = {}
        self._checked: dict[str, _FileRecord | None] = {}  # files stat'ed in this process
        self._indexes: dict[str, ast_normalize.FileIndex | None] = {}
        self._code: dict[CodeType, tuple[str, tuple[str, ...]]] = {}
        self._dirty = False

    @classmethod
    def load(cls, state_dir: Path) -> FingerprintCache:
        """Read `<state_dir>/fingerprints.json`; a missing or corrupt file gives an empty cache."""
        path = Path(state_dir) / FILE_NAME
        self = cls(path)
        try:
            data = json.loads(path.read_bytes())
            if data.get("header") != _HEADER:
                return self
            for file, rec in data["files"].items():
                stat = tuple(int(x) for x in rec["stat"])
                if len(stat) != 5 or not isinstance(file, str):
                    continue
                objects: dict[str, SourceInfo] = {}
                for key, info in rec["objects"].items():
                    objects[str(key)] = (
                        None if info is None else (str(info[0]), tuple(str(r) for r in info[1]))
                    )
                self._files[file] = _FileRecord(stat, objects, racy=False)
        except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
            self._files.clear()  # disposable state: start over
        return self

    def save(self) -> None:
        """Write the cache durably (`write_atomic`); racily-clean files are left out."""
        if self.path is None or not self._dirty:
            return
        files = {
            file: {
                "stat": list(rec.stat),
                "objects": {
                    k: None if v is None else [v[0], list(v[1])] for k, v in rec.objects.items()
                },
            }
            for file, rec in sorted(self._files.items())
            if not rec.racy
        }
        data = json.dumps({"header": _HEADER, "files": files}, separators=(",", ":"))
        # Imported only when something changed: a no-op run never saves.
        from pivot.storage.files import write_atomic

        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, data.encode())
        self._dirty = False

    # --- lookups ---------------------------------------------------------------------------
    def _record(self, file: str) -> _FileRecord | None:
        if file in self._checked:
            return self._checked[file]
        rec: _FileRecord | None
        try:
            now = time.time_ns()
            st = os.stat(file)
        except (OSError, ValueError):
            rec = None
        else:
            stat: _Stat = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
            rec = self._files.get(file)
            if rec is None or rec.stat != stat:
                racy = max(st.st_mtime_ns, st.st_ctime_ns) >= now - RACY_NS
                rec = self._files[file] = _FileRecord(stat, {}, racy)
                self._indexes.pop(file, None)
                self._dirty = True
        self._checked[file] = rec
        return rec

    def _index(self, file: str) -> ast_normalize.FileIndex | None:
        if file not in self._indexes:
            self._indexes[file] = ast_normalize.FileIndex.parse(file)
        return self._indexes[file]

    def function_info(self, func: FunctionType) -> SourceInfo:
        """Digest and refs of a function's normalized def, or None if it has no usable source."""
        code = func.__code__
        file = code.co_filename
        if file.startswith("<"):
            return None
        rec = self._record(file)
        if rec is None:
            return None
        key = f"f:{func.__qualname__}:{code.co_firstlineno}"
        if key in rec.objects:
            return rec.objects[key]
        index = self._index(file)
        node = index.function(func.__qualname__, code.co_firstlineno) if index else None
        info: SourceInfo = None
        if node is not None:
            refs = ast_normalize.function_refs(node, code)
            info = (ast_normalize.digest(ast_normalize.dump([node])), tuple(refs))
        rec.objects[key] = info
        self._dirty = True
        return info

    def class_info(self, qualname: str, file: str) -> SourceInfo:
        """Digest and refs of the class statement(s) defining `qualname` in `file`."""
        rec = self._record(file)
        if rec is None:
            return None
        key = f"c:{qualname}"
        if key in rec.objects:
            return rec.objects[key]
        index = self._index(file)
        nodes = index.classes(qualname) if index else []
        info: SourceInfo = None
        if nodes:
            refs = sorted(ast_normalize.node_refs(nodes))
            info = (ast_normalize.digest(ast_normalize.dump(nodes)), tuple(refs))
        rec.objects[key] = info
        self._dirty = True
        return info

    def code_info(self, code: CodeType, skip_doc: bool = False) -> tuple[str, tuple[str, ...]]:
        """Digest and refs of a code object without source (memoized for this process)."""
        info = self._code.get(code)
        if info is None:
            text = ast_normalize.code_repr(code, skip_doc)
            info = (ast_normalize.digest(text), tuple(sorted(ast_normalize.code_refs(code))))
            self._code[code] = info
        return info


__all__ = ["FILE_NAME", "FingerprintCache"]
