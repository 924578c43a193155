"""Helpers for the hostile-input and hostile-environment cases (docs/reliability.md,
"Hostile input and environment").

Each test builds its own small project on disk and drives the real CLI through
`_invariants.pivot` (a fresh interpreter per command). Trees are compared as raw bytes
(`os.fsencode` names), so names that are not UTF-8 round-trip exactly.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import _invariants as inv
import blake3

PIPELINE_HEAD = """
import os
import pathlib
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline
"""


def new_project(root: Path, pipeline: str, files: dict[str, str] | None = None) -> Path:
    """`root` with `.pivot/`, `pipeline.py` (PIPELINE_HEAD + `pipeline`) and `files`."""
    from pivot import project

    root.mkdir(parents=True, exist_ok=True)
    project.init(root)
    (root / "pipeline.py").write_text(PIPELINE_HEAD + pipeline, encoding="utf-8")
    for rel, text in {"input.txt": "hello\n", **(files or {})}.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def ok(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    proc = inv.pivot(list(args), root, **env)
    assert proc.returncode == 0, f"pivot {' '.join(args)}: {inv.describe(proc)}"
    return proc


def fails(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    proc = inv.pivot(list(args), root, **env)
    assert proc.returncode == 1, f"pivot {' '.join(args)}: expected exit 1: {inv.describe(proc)}"
    assert "Traceback" not in proc.stderr, inv.describe(proc)
    return proc


def cause_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The one stderr line containing every needle (I4: the cause is on one line)."""
    lines = [ln for ln in proc.stderr.splitlines() if all(n in ln for n in needles)]
    assert lines, f"no stderr line contains all of {needles}: {inv.describe(proc)}"
    return lines[0]


def hash_file(path: bytes | str | Path) -> str:
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def tree(path: Path) -> dict[bytes, str]:
    """Raw relative name -> 'file:<mode>:<blake3>' / 'link:<target>' / 'dir' for a file or tree."""
    base = os.fsencode(path)
    out: dict[bytes, str] = {}

    def one(p: bytes, rel: bytes) -> None:
        st = os.lstat(p)
        if os.path.islink(p):
            out[rel] = "link:" + os.fsdecode(os.readlink(p))
        elif os.path.isdir(p):
            out[rel] = "dir"
        else:
            out[rel] = f"file:{st.st_mode & 0o100:o}:{hash_file(p)}"

    if not os.path.isdir(base) or os.path.islink(base):
        one(base, b".")
        return out
    for dirpath, dirs, files in os.walk(base):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            one(full, os.path.relpath(full, base))
    return out


def objects(cache_files: Path) -> set[str]:
    """Names of the objects under a cache's `files/` (temps excluded)."""
    found: set[str] = set()
    if cache_files.is_dir():
        for shard in cache_files.iterdir():
            if shard.is_dir() and len(shard.name) == 2:
                found |= {
                    shard.name + o.name for o in shard.iterdir() if not o.name.startswith(".")
                }
    return found


def temps(cache_files: Path) -> list[Path]:
    """Temp objects (`.pvtmp-*`) anywhere under a cache's `files/`."""
    return sorted(cache_files.rglob(".pvtmp-*")) if cache_files.is_dir() else []


def check_objects(cache_files: Path) -> int:
    """I1 for a cache outside the project: every object hashes to its name."""
    names = objects(cache_files)
    bad = [n for n in names if hash_file(cache_files / n[:2] / n[2:]) != n]
    assert not bad, f"I1: objects whose content differs from their name: {bad}"
    return len(names)
