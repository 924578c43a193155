"""Helpers for the cache tests: build trees, list them, check objects, run children."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import blake3

# A tree spec: relative path -> bytes (file), ("exec", bytes) (executable file), ("link", target).
Spec = Mapping[str, "bytes | tuple[str, bytes | str]"]


def write_tree(root: Path, spec: Spec) -> Path:
    """Create `root` with the files and links of `spec`."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, val in spec.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(val, bytes):
            p.write_bytes(val)
        elif val[0] == "exec":
            assert isinstance(val[1], bytes)
            p.write_bytes(val[1])
            p.chmod(0o755)
        else:
            assert isinstance(val[1], str)
            os.symlink(val[1], p)
    return root


def listing(root: Path) -> dict[str, tuple[str, bytes | str, bool]]:
    """Every file and link under `root`: path -> (kind, content or target, exec bit)."""
    out: dict[str, tuple[str, bytes | str, bool]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p), False)
            else:
                out[rel] = ("file", p.read_bytes(), bool(st.st_mode & 0o100))
    return out


def objects(cache_dir: Path) -> dict[str, Path]:
    """hash -> path of every object under `cache_dir/files/` (temps excluded)."""
    out: dict[str, Path] = {}
    files = cache_dir / "files"
    if not files.exists():
        return out
    for shard in files.iterdir():
        if shard.is_dir() and len(shard.name) == 2:
            for o in shard.iterdir():
                out[shard.name + o.name] = o
    return out


def temps(directory: Path) -> list[str]:
    """Leftover pivot temp names directly in `directory`."""
    if not directory.exists():
        return []
    return sorted(n for n in os.listdir(directory) if n.startswith((".pvtmp-", ".pvold-")))


def assert_objects_valid(cache_dir: Path) -> int:
    """Every object's content hashes to its name and is read-only, not executable."""
    objs = objects(cache_dir)
    for h, p in objs.items():
        assert blake3.blake3(p.read_bytes()).hexdigest() == h, f"{p} does not match its name"
        assert stat.S_IMODE(p.stat().st_mode) == 0o444, f"{p} is not 0o444"
    return len(objs)


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def run_child(code: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run Python `code` in a fresh interpreter (kill points and test hooks read env once)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, check=False
    )


SAMPLE: Spec = {
    "a.txt": b"alpha\n",
    "dup.txt": b"alpha\n",
    "sub/b.bin": bytes(range(256)) * 40,
    "sub/deeper/c": b"",
    "run.sh": ("exec", b"#!/bin/sh\necho hi\n"),
    "link": ("link", "sub/b.bin"),
}
