"""What a revision recorded: its locks, tracked files (`.pvt`) and committed files.

A revision is a git commit read through `pivot.gitrev` (no checkout), or the workspace (the
files on disk). Lock bytes from git are decoded by the same validating decoder as
`.pivot/stages/*.lock` on disk, so a lock is judged identically wherever it comes from; errors
name `<revision>:<path>`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pivot.exceptions import RevisionError

if TYPE_CHECKING:
    from pivot.gitrev import GitRepo
    from pivot.project import Project
    from pivot.types import LockData

WORKSPACE = "workspace"
STAGES_DIR = ".pivot/stages"
LOCK_SUFFIX = ".lock"


@dataclass(frozen=True)
class Rev:
    label: str  # as the user named it ("HEAD", "v1", "workspace")
    commit: str | None  # None: the workspace

    @property
    def is_workspace(self) -> bool:
        return self.commit is None


@dataclass(frozen=True)
class RecordedOut:
    """An output (stage lock) or tracked path (`.pvt`) as a revision recorded it."""

    path: str  # project-relative, no trailing "/"
    owner: str  # stage name, or the `.pvt` file
    hash: str
    is_dir: bool
    cache: bool
    size: int
    nfiles: int


class Revisions:
    """Reads revisions of one project; `close()` (or `with`) stops the git reader."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._git: GitRepo | None = None
        self._locks: dict[str | None, dict[str, LockData]] = {}
        self._tracked: dict[str | None, dict[str, RecordedOut]] = {}

    def __enter__(self) -> Revisions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._git is not None:
            self._git.close()

    @property
    def git(self) -> GitRepo:
        if self._git is None:
            from pivot.gitrev import GitRepo

            self._git = GitRepo(self.project.root)
        return self._git

    def rev(self, name: str) -> Rev:
        """`workspace` or anything `git rev-parse` resolves to a commit."""
        if name == WORKSPACE:
            return Rev(WORKSPACE, None)
        return Rev(name, self.git.resolve(name))

    def is_revision(self, name: str) -> bool:
        return name == WORKSPACE or self.git.is_revision(name)

    # -- files ----------------------------------------------------------------------------
    def read(self, rev: Rev, rel: str) -> bytes | None:
        """A committed file (git) or a file on disk (workspace); None when absent."""
        if rev.commit is None:
            try:
                return (self.project.root / rel).read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None
        return self.git.read(rev.commit, rel)

    # -- locks ----------------------------------------------------------------------------
    def locks(self, rev: Rev) -> dict[str, LockData]:
        """Every stage lock of the revision, by stage name (sorted)."""
        if rev.commit in self._locks:
            return self._locks[rev.commit]
        found: dict[str, LockData] = {}
        if rev.commit is None:
            from pivot.storage.lock import read_lock

            stages_dir = self.project.stages_dir
            names = sorted(os.listdir(stages_dir)) if stages_dir.is_dir() else []
            for name in names:
                if name.endswith(LOCK_SUFFIX) and not name.startswith("."):
                    lock = read_lock(stages_dir / name)
                    if lock is not None:
                        found[name[: -len(LOCK_SUFFIX)]] = lock
        else:
            from pivot.storage.lock import decode_lock

            for rel in sorted(self.git.list_files(rev.commit, STAGES_DIR)):
                name = rel.rsplit("/", 1)[-1]
                if "/" in rel[len(STAGES_DIR) + 1 :] or not name.endswith(LOCK_SUFFIX):
                    continue
                data = self.git.read(rev.commit, rel)
                if data is not None:
                    found[name[: -len(LOCK_SUFFIX)]] = decode_lock(data, f"{rev.label}:{rel}")
        self._locks[rev.commit] = found
        return found

    def lock(self, rev: Rev, stage: str) -> LockData:
        """The lock of `stage` at `rev`; RevisionError naming both when there is none."""
        lock = self.locks(rev).get(stage)
        if lock is None:
            raise RevisionError(
                f"{rev.label}: no lock for stage '{stage}' ({STAGES_DIR}/{stage}{LOCK_SUFFIX})"
            )
        return lock

    # -- recorded outputs -----------------------------------------------------------------
    def tracked(self, rev: Rev) -> dict[str, RecordedOut]:
        """Tracked paths (`.pvt` files) of the revision, by tracked path."""
        if rev.commit in self._tracked:
            return self._tracked[rev.commit]
        from pivot.storage.pvt import PVT_SUFFIX, find_pvt_files, parse_pvt

        if rev.commit is None:
            # Output directories hold no tracked files; skipping them spares a walk of trees
            # of 10^6 files.
            locks = self.locks(rev).values()
            dirs = [p for lock in locks for p, e in lock["outs"].items() if e["is_dir"]]
            pvts = find_pvt_files(self.project.root, prune=dirs)
        else:
            pvts = [
                p
                for p in self.git.list_files(rev.commit)
                if p.endswith(PVT_SUFFIX) and not p.startswith((".pivot/", ".git/"))
            ]
        found: dict[str, RecordedOut] = {}
        for pvt in pvts:
            data = self.read(rev, pvt)
            if data is None:
                continue
            t = parse_pvt(data, pvt, label=f"{rev.label}:{pvt}")
            i = t.info
            found[t.path] = RecordedOut(
                t.path, pvt, i["hash"], i["is_dir"], True, i["size"], i["nfiles"]
            )
        self._tracked[rev.commit] = found
        return found

    def recorded(self, rev: Rev) -> dict[str, RecordedOut]:
        """Every output the revision's locks record plus its tracked paths, by path."""
        out: dict[str, RecordedOut] = {}
        for stage, lock in self.locks(rev).items():
            for path, e in lock["outs"].items():
                p = path.rstrip("/")
                out[p] = RecordedOut(
                    p, stage, e["hash"], e["is_dir"], e["cache"], e["size"], e["nfiles"]
                )
        out.update(self.tracked(rev))
        return dict(sorted(out.items()))


def project_rel(project: Project, target: str, cwd: Path | None = None) -> str:
    """`target` (relative to `cwd`) as a project-relative POSIX path without trailing '/'."""
    base = Path.cwd() if cwd is None else cwd
    rel = project.relpath(base / target)
    return "" if rel == "." else rel.rstrip("/")


def under(path: str, target: str) -> bool:
    """`path` is `target` or lies inside it (component-wise: `data` does not hold `data2`)."""
    return not target or path == target or path.startswith(target + "/")
