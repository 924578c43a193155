"""The project's code as a content-addressed snapshot: what a Dask worker needs to load the
pipeline without a shared filesystem (docs/cluster.md, "What travels").

What is included: every `*.py` file under the project root, and the pipeline and params
files (`pivot.yaml`, `pivot.yml`, `params.yaml`, `params.yml`), outside `.pivot/`, `.git/`,
hidden directories, virtualenvs (a directory holding `pyvenv.cfg`), `site-packages`,
`__pycache__` and declared outputs. Declared dependencies do not travel here: they go through
the remote. The worker checks that the snapshot gives each stage the fingerprint the
coordinator computed, so code the snapshot misses (a module outside the project) is an error,
not a silent difference.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from pivot.exceptions import PivotError
from pivot.storage import files

CODE_NAMES = frozenset({"pivot.yaml", "pivot.yml", "params.yaml", "params.yml"})
SKIP_DIRS = frozenset({"__pycache__", "site-packages", "node_modules"})
MAX_FILES = 20_000
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class CodeSnapshot:
    id: str  # blake3 of the canonical {path: blake3} map
    files: dict[str, bytes]  # project-relative POSIX path -> content

    def write_to(self, dest: Path) -> None:
        """Write every file under `dest` (a fresh directory), each checked against the id."""
        if snapshot_id(self.files) != self.id:
            raise PivotError(f"code snapshot {self.id[:12]}: content does not match its id")
        for rel, data in self.files.items():
            parts = rel.split("/")
            if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
                raise PivotError(f"code snapshot {self.id[:12]}: unsafe path {rel!r}")
            path = dest.joinpath(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def snapshot_id(contents: dict[str, bytes]) -> str:
    doc = {rel: files.hash_bytes(data) for rel, data in contents.items()}
    return files.hash_bytes(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))


def _wanted(name: str) -> bool:
    return name.endswith(".py") or name in CODE_NAMES


def collect(root: Path, outputs: Iterable[str]) -> CodeSnapshot:
    """The code files under `root` (see module docstring), declared `outputs` excluded."""
    skip_outs = {o.rstrip("/") for o in outputs}
    contents: dict[str, bytes] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        keep = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if d.startswith(".") or d in SKIP_DIRS or rel in skip_outs:
                continue
            if os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg")):
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                continue
            keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not _wanted(name) or rel in skip_outs:
                continue
            path = os.path.join(dirpath, name)
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            contents[rel] = data
            total += len(data)
            if len(contents) > MAX_FILES or total > MAX_BYTES:
                raise PivotError(
                    f"{root}: more than {MAX_FILES} code files or {MAX_BYTES >> 20} MiB of code "
                    "to send to the cluster; move data files out of *.py names or the project"
                )
    return CodeSnapshot(id=snapshot_id(contents), files=contents)
