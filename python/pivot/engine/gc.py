"""`pivot gc`: remove cache objects and run-cache entries nothing needs (docs/cli.md, "pivot gc").

Safe by default. The roots are every cached output and tracked path recorded by the workspace
(`.pivot/stages/*.lock`, `.pvt` files) and by every commit that HEAD, a local branch, a tag
or a remote-tracking branch points to (read from git, no checkout), plus the outputs of
run-cache entries younger than the retention. A lock or `.pvt` file that cannot be read stops
gc: what it needs cannot be known. Objects younger than the grace period are never removed,
and gc holds the `.gc.lock` exclusively (engine/execlock.py) while it reads the roots and
deletes, so a stage being recorded, or a `track`, never loses an object to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivot.engine.execlock import GcLock
from pivot.exceptions import PivotError, RevisionError
from pivot.results.revs import WORKSPACE, Rev, Revisions
from pivot.storage import runcache
from pivot.storage.cache import Cache
from pivot.storage.files import kill_point

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pivot.project import Project


@dataclass
class GcOptions:
    revs: Sequence[str] = ()  # roots: the workspace and exactly these revisions
    all_commits: bool = False  # roots: the workspace and every commit of the repository
    workspace_only: bool = False
    dry_run: bool = False
    run_cache_days: float | None = None  # None: config gc.run_cache_days
    grace_minutes: float | None = None  # None: config gc.grace_minutes


@dataclass
class GcResult:
    dry_run: bool
    revisions: list[str] = field(default_factory=list)  # "workspace", then commit ids read
    notes: list[str] = field(default_factory=list)  # e.g. "not a git repository"
    removed: list[tuple[str, int]] = field(default_factory=list)  # (hash, size)
    bytes: int = 0
    kept: int = 0  # objects a root needs
    young: int = 0  # unreferenced objects younger than the grace period (kept)
    runs_removed: int = 0
    runs_kept: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "revisions": list(self.revisions),
            "notes": list(self.notes),
            "removed": {"objects": len(self.removed), "bytes": self.bytes},
            "objects": [{"hash": h, "size": s} for h, s in self.removed],
            "kept": self.kept,
            "young": self.young,
            "run_cache": {"removed": self.runs_removed, "kept": self.runs_kept},
        }


def _commits(project: Project, revs: Revisions, opts: GcOptions, notes: list[str]) -> list[Rev]:
    """The git revisions whose records are roots (besides the workspace)."""
    if opts.workspace_only:
        return []
    try:
        git = revs.git
    except RevisionError as e:
        if opts.revs or opts.all_commits:
            raise
        notes.append(f"{e}: only the workspace's records are roots")
        return []
    if opts.revs:
        return [revs.rev(r) for r in opts.revs]
    if opts.all_commits:
        return [Rev(c, c) for c in git.all_commits()]
    by_commit: dict[str, str] = {}
    for name, commit in git.ref_commits().items():
        by_commit.setdefault(commit, name)
    return [Rev(name, commit) for commit, name in by_commit.items()]


def _record_roots(
    revs: Revisions,
    rev: Rev,
    roots: set[tuple[str, bool]],
    tracked: Iterable[tuple[str, bool]] | None = None,
) -> None:
    """`tracked`: the revision's tracked (hash, is_dir) when the caller has them already (a
    push of the workspace: no second walk of the project for `.pvt` files)."""
    for lock in revs.locks(rev).values():
        for e in lock["outs"].values():
            if e["cache"]:
                roots.add((e["hash"], e["is_dir"]))
    if tracked is None:
        tracked = [(t.hash, t.is_dir) for t in revs.tracked(rev).values()]
    roots.update(tracked)


def check_options(opts: GcOptions) -> None:
    if sum([bool(opts.revs), opts.all_commits, opts.workspace_only]) > 1:
        raise PivotError("--rev, --all-commits and --workspace-only exclude each other")


def record_roots(
    project: Project,
    revs: Revisions,
    opts: GcOptions,
    result: GcResult,
    roots: set[tuple[str, bool]],
    workspace_tracked: Iterable[tuple[str, bool]] | None = None,
) -> None:
    """Add the outputs the workspace and the chosen revisions record to `roots`
    (`workspace_tracked`: see `_record_roots`)."""
    for rev in [Rev(WORKSPACE, None), *_commits(project, revs, opts, result.notes)]:
        _record_roots(revs, rev, roots, workspace_tracked if rev.commit is None else None)
        result.revisions.append(rev.commit or WORKSPACE)


def gc(project: Project, opts: GcOptions) -> GcResult:
    """Collect the roots, remove run-cache entries older than the retention, then every
    object no root needs that is older than the grace period (`dry_run`: report only)."""
    check_options(opts)
    config = project.config
    days = config.gc_run_cache_days if opts.run_cache_days is None else opts.run_cache_days
    minutes = config.gc_grace_minutes if opts.grace_minutes is None else opts.grace_minutes
    if days < 0 or minutes < 0:
        raise PivotError("the run-cache retention and the grace period must be >= 0")
    cache = Cache(project.cache_dir, project.state_dir, config.link_modes)
    result = GcResult(dry_run=opts.dry_run)
    roots: set[tuple[str, bool]] = set()
    with GcLock(project.locks_dir), Revisions(project) as revs:
        record_roots(project, revs, opts, result, roots)
        cutoff = time.time() - days * 86400
        old = []
        for key, path, mtime in runcache.entries(project.runs_dir):
            if mtime < cutoff:
                old.append(path)
                continue
            outs = runcache.lookup(project.runs_dir, key)
            result.runs_kept += 1
            for e in (outs or {}).values():
                if e["cache"]:
                    roots.add((e["hash"], e["is_dir"]))
        kill_point("gc_roots")
        # Entries first: a crash after them leaves no entry naming a removed object.
        result.runs_removed = len(old)
        if not opts.dry_run:
            for path in old:
                runcache.remove(path)
        report = cache.gc(sorted(roots), grace_s=minutes * 60, dry_run=opts.dry_run)
    result.removed = [(h, s) for h, s in report["removed"]]
    result.bytes = report["bytes"]
    result.kept = report["kept"]
    result.young = report["young"]
    return result
