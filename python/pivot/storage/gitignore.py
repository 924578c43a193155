"""Keep cached outputs and tracked data out of git: one `/<name>` line per path in the
`.gitignore` of its parent directory (docs/formats.md, "Git ignore entries").

Lock files, `.pvt` files and uncached outputs (metrics) stay visible to git. Nothing is
written outside a git work tree or when the config says `core.gitignore: false`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pivot.storage.files import write_atomic

if TYPE_CHECKING:
    from pivot.project import Project

GITIGNORE = ".gitignore"
_LOCK = threading.Lock()  # stages are recorded from several threads of one process
_SPECIAL = frozenset("*?[\\")


def in_git_worktree(root: Path) -> bool:
    """Whether `root` is inside a git work tree (a `.git` directory or file at or above it)."""
    for d in (root, *root.parents):
        if os.path.lexists(d / ".git"):
            return True
    return False


def entry_for(name: str) -> str:
    """The anchored pattern that matches exactly `name` (a file or directory) in its directory.

    No trailing `/`: like DVC, one form for files and directories, so an output that changes
    from one to the other keeps its entry.
    """
    escaped = "".join("\\" + c if c in _SPECIAL else c for c in name)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "  # git strips unescaped trailing spaces
    return "/" + escaped


def _present(lines: list[str], entry: str) -> bool:
    return entry in lines or entry + "/" in lines


def add_entries(root: Path, rel_paths: Iterable[str], lock_dir: Path | None = None) -> list[Path]:
    """Append the missing entries for project-relative `rel_paths`; returns the files changed.

    Idempotent: an entry already there (with or without a trailing `/`) is not added again.
    Each `.gitignore` is rewritten with the durable-write helper; `lock_dir` (the project's
    tmp dir) holds a lock file serialising concurrent pivot processes.
    """
    by_dir: dict[Path, list[str]] = {}
    for rel in rel_paths:
        pure = PurePosixPath(rel.rstrip("/"))
        if not pure.name:
            continue
        entries = by_dir.setdefault(root / pure.parent, [])
        entry = entry_for(pure.name)
        if entry not in entries:
            entries.append(entry)
    if not by_dir:
        return []
    with _LOCK, _process_lock(lock_dir):
        return [f for d, e in sorted(by_dir.items()) if (f := _append(d / GITIGNORE, e))]


def _append(file: Path, entries: list[str]) -> Path | None:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    new = [e for e in entries if not _present(lines, e)]
    if not new:
        return None
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(e + "\n" for e in new)
    file.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(file, text.encode("utf-8"))
    return file


class _process_lock:
    """`flock` on `<lock_dir>/gitignore.lock` (no-op without a lock dir)."""

    def __init__(self, lock_dir: Path | None) -> None:
        self.lock_dir = lock_dir
        self.fd: int | None = None

    def __enter__(self) -> None:
        if self.lock_dir is None:
            return
        try:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.lock_dir / "gitignore.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return  # best effort: the in-process lock still holds
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def ignore_outputs(project: Project, rel_paths: Iterable[str]) -> None:
    """Project policy: add entries for `rel_paths` unless `core.gitignore` is off or the project
    is not in git. Failing to update a `.gitignore` never fails the command that recorded the
    data (a warning says which file)."""
    paths = list(rel_paths)
    if not paths or not project.config.gitignore or not in_git_worktree(project.root):
        return
    try:
        add_entries(project.root, paths, project.tmp_dir)
    except OSError as exc:
        logging.getLogger("pivot").warning("could not update .gitignore: %s", exc)
