"""`pivot gc --remote NAME`: remove what no clone needs from a remote (docs/remote.md,
"Garbage collection").

Roots: this clone's (the workspace and the revisions `pivot gc` would read), every roots
record pushes from any clone left on the remote, and the outputs of the remote's run-cache
entries younger than the retention. The work (lock, listing, pack rewrites, deletes) is done in
the Rust core (`rust/remote/gc.rs`).
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivot.engine.gc import GcOptions, GcResult, check_options, record_roots
from pivot.exceptions import PivotError
from pivot.results.revs import Revisions

if TYPE_CHECKING:
    from pivot.project import Project
    from pivot.storage.remote import Remote


@dataclass
class RemoteGcOptions:
    base: GcOptions
    roots_days: float | None = None  # superseded roots records this old go (None: run_cache_days)
    repack_ratio: float | None = None  # None: config gc.repack_ratio
    lease_minutes: float = 120.0
    break_lock: bool = False


@dataclass
class RemoteGcResult:
    remote: str
    dry_run: bool
    revisions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "remote": self.remote,
            "dry_run": self.dry_run,
            "revisions": list(self.revisions),
            "notes": [*self.notes, *r["notes"]],
            "removed": {
                "objects": r["objects_removed"],
                "bytes": r["bytes_removed"],
                "packs": r["packs_removed"],
            },
            "packs_rewritten": r["packs_rewritten"],
            "kept": r["live"],
            "young": r["young"],
            "roots_records": {"kept": r["records"], "removed": r["records_removed"]},
            "run_cache": {"removed": r["runs_removed"], "kept": r["runs_kept"]},
        }


def _holder() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def gc_remote(project: Project, remote: Remote, opts: RemoteGcOptions) -> RemoteGcResult:
    base = opts.base
    check_options(base)
    config = project.config
    days = config.gc_run_cache_days if base.run_cache_days is None else base.run_cache_days
    minutes = config.gc_grace_minutes if base.grace_minutes is None else base.grace_minutes
    ratio = config.gc_repack_ratio if opts.repack_ratio is None else opts.repack_ratio
    if days < 0 or minutes < 0 or (opts.roots_days is not None and opts.roots_days < 0):
        raise PivotError("the retentions and the grace period must be >= 0")
    if opts.lease_minutes <= 0:
        raise PivotError("the gc lease must be > 0 minutes")
    local = GcResult(dry_run=base.dry_run)
    roots: set[tuple[str, bool]] = set()
    with Revisions(project) as revs:
        record_roots(project, revs, base, local, roots)
    report = remote.gc(
        sorted(roots),
        grace_s=int(minutes * 60),
        runs_s=int(days * 86400),
        records_s=int((days if opts.roots_days is None else opts.roots_days) * 86400),
        repack_ratio=ratio,
        dry_run=base.dry_run,
        holder=_holder(),
        lease_s=int(opts.lease_minutes * 60),
        break_lock=opts.break_lock,
    )
    return RemoteGcResult(
        remote=remote.name,
        dry_run=base.dry_run,
        revisions=local.revisions,
        notes=local.notes,
        report=report,
    )
