"""`pivot push` / `fetch` / `pull`: which objects the workspace references, and moving them.

The referenced set is what `checkout` would restore: the cached outputs recorded in the
stages' locks and the tracked files (`.pvt`), or, with targets, those of the named stages or
paths. A directory brings its manifest and every file in it (expanded in the Rust core, which
streams the manifest rather than handing 10^6 names to Python). Push also publishes the
run-cache entries of the pushed stages' recorded runs, after the objects they name.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivot.engine import checkout as checkout_mod
from pivot.engine import plan
from pivot.exceptions import RemoteError
from pivot.storage import runcache
from pivot.storage.files import write_atomic
from pivot.types import HashInfo

if TYPE_CHECKING:
    from pathlib import Path

    from pivot.engine.context import Context
    from pivot.storage.remote import FetchReport, Problem, PushReport, Remote

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ref:
    path: str  # project-relative output or tracked path
    hash: str
    is_dir: bool
    size: int
    stage: str | None


def referenced(ctx: Context, targets: Sequence[str] | None = None) -> list[Ref]:
    """Cached outputs of the locks and `.pvt` files (or of `targets`), in checkout order."""
    items = checkout_mod._resolve(ctx, list(targets) if targets else None)
    return [Ref(i.path, i.info["hash"], i.info["is_dir"], i.info["size"], i.stage) for i in items]


def run_keys(ctx: Context, stages: Sequence[str]) -> list[str]:
    """Run-cache keys of the stages' recorded runs (the entries their last record wrote)."""
    keys: list[str] = []
    for name in dict.fromkeys(stages):
        stage = ctx.pipeline.stages.get(name)
        if stage is None or any(o.kind == "incremental" for o in stage.outs):
            continue
        lock, _problem = plan.read_stage_lock(ctx, name)
        if lock is None:
            continue
        key = runcache.run_key(lock["code"], lock["params"], lock["deps"], plan.out_specs(stage))
        entry = runcache.lookup(ctx.runs_dir, key)
        # Only an entry that records exactly the locked outputs (the objects being pushed).
        if entry is not None and {k: e["hash"] for k, e in entry.items()} == {
            k: e["hash"] for k, e in lock["outs"].items()
        }:
            keys.append(key)
    return keys


def clone_id(state_dir: Path) -> str:
    """This clone's id (`.pivot/state/clone-id`, made on first use): names its roots records."""
    path = state_dir / "clone-id"
    try:
        cid = path.read_text(encoding="utf-8").strip()
        if cid and all(c in "0123456789abcdef" for c in cid):
            return cid
    except FileNotFoundError:
        pass
    cid = secrets.token_hex(8)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (cid + "\n").encode(), None)
    return cid


def clone_roots(
    ctx: Context, workspace_tracked: Sequence[tuple[str, bool]] | None = None
) -> tuple[list[tuple[str, bool]], bool]:
    """What this clone needs, as `pivot gc` computes it by default (the workspace and every
    branch and tag), and whether every revision could be read. `workspace_tracked`: the
    workspace's tracked data when the caller has it (no second walk for `.pvt` files)."""
    from pivot.engine import gc as gc_mod
    from pivot.exceptions import PivotError
    from pivot.results.revs import Revisions

    roots: set[tuple[str, bool]] = set()
    try:
        with Revisions(ctx.project) as revs:
            gc_mod.record_roots(
                ctx.project,
                revs,
                gc_mod.GcOptions(),
                gc_mod.GcResult(False),
                roots,
                workspace_tracked,
            )
    except PivotError as e:
        logger.warning("roots record of this push is incomplete: %s", e)
        return sorted(roots), False
    return sorted(roots), True


@dataclass
class PushResult:
    remote: str
    objects: PushReport
    runs_uploaded: int = 0
    runs_skipped: int = 0
    missing: dict[str, str] = field(default_factory=dict)  # path -> message

    @property
    def ok(self) -> bool:
        return not self.missing

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "uploaded": self.objects.uploaded,
            "bytes": self.objects.bytes,
            "skipped": self.objects.skipped,
            "runs_uploaded": self.runs_uploaded,
            "runs_skipped": self.runs_skipped,
            "missing": self.missing,
        }


def push(ctx: Context, remote: Remote, targets: Sequence[str] | None = None) -> PushResult:
    """Objects first (files, then manifests), then run-cache entries of complete stages."""
    refs = referenced(ctx, targets)
    # The roots record goes first, then the gc lock is checked (docs/remote.md "Garbage
    # collection"): a gc either sees this record or this push sees its lock.
    pushed = [(r.hash, r.is_dir) for r in refs]
    # Without targets `refs` holds every tracked path (stage None) of the workspace already.
    tracked = [(r.hash, r.is_dir) for r in refs if r.stage is None] if not targets else None
    roots, complete = clone_roots(ctx, tracked)
    holder = remote.record_roots(clone_id(ctx.project.state_dir), pushed, roots, complete)
    if holder is not None:
        raise RemoteError(
            f"remote {remote.name}: a gc is running on it (held by {holder}); push again after it"
        )
    rep = remote.push([(r.hash, r.is_dir) for r in refs])
    result = PushResult(remote=remote.name, objects=rep)
    absent = set(rep.missing) | set(rep.incomplete)
    broken_stages: set[str] = set()
    for r in refs:
        if r.hash in rep.missing:
            result.missing[r.path] = f"{r.path}: object {r.hash} is not in the local cache"
        elif r.hash in rep.incomplete:
            result.missing[r.path] = f"{r.path}: files of this directory are not in the local cache"
        if r.hash in absent and r.stage is not None:
            broken_stages.add(r.stage)
    if targets:
        # Stages named on the command line whose outputs are all uncached still have entries.
        named = [t for t in targets if t in ctx.pipeline.stages]
        candidates = [*(r.stage for r in refs if r.stage), *named]
    else:
        candidates = list(ctx.pipeline.stages)
    stages = [s for s in dict.fromkeys(candidates) if s and s not in broken_stages]
    up, skipped, _absent = remote.push_run_entries(run_keys(ctx, stages))
    result.runs_uploaded, result.runs_skipped = up, skipped
    return result


@dataclass
class FetchResult:
    remote: str
    objects: FetchReport
    missing: dict[str, str] = field(default_factory=dict)  # path -> message
    corrupt: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "fetched": self.objects.fetched,
            "bytes": self.objects.bytes,
            "skipped": self.objects.skipped,
            "missing": self.missing,
            "corrupt": self.corrupt,
        }


def _where(refs: Sequence[Ref], p: Problem) -> str:
    """The workspace path a problem object belongs to."""
    for r in refs:
        if p.dir is not None and r.hash == p.dir and r.is_dir:
            return f"{r.path}/{p.path}"
        if p.dir is None and r.hash == p.hash:
            return r.path
    return p.hash


def fetch(ctx: Context, remote: Remote, targets: Sequence[str] | None = None) -> FetchResult:
    refs = referenced(ctx, targets)
    rep = remote.fetch([(r.hash, r.is_dir) for r in refs])
    result = FetchResult(remote=remote.name, objects=rep)
    for p in rep.missing:
        where = _where(refs, p)
        result.missing[where] = f"remote {remote.name}: object {p.hash} ({where}) is missing"
    for p in rep.corrupt:
        where = _where(refs, p)
        result.corrupt[where] = (
            f"remote {remote.name}: object {p.hash} ({where}) is corrupt "
            "(its content does not match its name); not stored"
        )
    for bad in remote.bad_indexes():
        logger.warning("remote %s: ignoring %s", remote.name, bad)
    return result


def remote_has(
    ctx: Context, remote: Remote, targets: Sequence[str] | None = None
) -> Callable[[str], bool]:
    """For `verify --allow-missing`: one batched question to the remote about every referenced
    object absent from the local cache (a directory counts only with every file)."""
    refs = [
        r
        for r in referenced(ctx, targets)
        if not ctx.cache.contains(HashInfo(hash=r.hash, size=r.size, nfiles=1, is_dir=r.is_dir))
    ]
    unique = list({(r.hash, r.is_dir, None if r.is_dir else r.size): None for r in refs})
    answers = dict(zip((h for h, _d, _s in unique), remote.contains_many(unique), strict=True))
    return lambda h: answers.get(h, False)


def not_pushed(ctx: Context, remote: Remote, targets: Sequence[str] | None = None) -> list[str]:
    """Referenced outputs (paths) the remote lacks (a directory: any file), in one batch."""
    refs = referenced(ctx, targets)
    answers = remote.contains_many([(r.hash, r.is_dir, None if r.is_dir else r.size) for r in refs])
    return [r.path for r, there in zip(refs, answers, strict=True) if not there]


def pull_missing_tracked(ctx: Context, remote: Remote, stages: Sequence[str] | None) -> None:
    """For `repro --pull`, before the graph is checked: fetch and check out the tracked files
    (`.pvt`) absent from the workspace — all of them without STAGES, else those the stages
    (with their upstream) read — as `dvc repro --pull` does with its data sources. A fresh CI
    clone has git's files only, and a stage can be neither run nor restored while one of its
    inputs is missing. What cannot be pulled is a warning; the stage then reports it."""
    import os

    from pivot.engine.track import tracked_files
    from pivot.graph import normalize_path

    root = ctx.project.root
    missing = [t.path for t in tracked_files(ctx) if not os.path.lexists(root / t.path)]
    if stages:
        deps = {
            normalize_path(name, raw, "dependency")[0]
            for name in ctx.graph.order(stages)
            for raw in ctx.pipeline.stages[name].dep_paths
        }
        missing = [
            t
            for t in missing
            if any(d == t or d.startswith(t + "/") or t.startswith(d + "/") for d in deps)
        ]
    if not missing:
        return
    result = fetch(ctx, remote, missing)
    for msg in (*result.missing.values(), *result.corrupt.values()):
        logger.warning("%s", msg)
    checkout_mod.checkout(ctx, missing)


def pull_hook(remote: Remote) -> Callable[[Context, str, plan.StageState], None]:
    """For `repro --pull` (`RunOptions.pull`): before a stage runs, fetch the run-cache entry
    of its current inputs and the objects it names, so the run-cache lookup that follows can
    restore instead. A remote problem is a warning: the stage then simply runs."""
    from pivot.exceptions import PivotError

    def hook(ctx: Context, stage: str, state: plan.StageState) -> None:
        if any(o.kind == "incremental" for o in ctx.pipeline.stages[stage].outs):
            return
        try:
            if runcache.lookup(ctx.runs_dir, state.run_key) is None:
                remote.fetch_run_entries([state.run_key])
            outs = runcache.lookup(ctx.runs_dir, state.run_key)
            if not outs:
                return
            rep = remote.fetch([(e["hash"], e["is_dir"]) for e in outs.values() if e["cache"]])
            for p in rep.corrupt:
                logger.warning(
                    "remote %s: object %s of stage %s is corrupt; not used",
                    remote.name,
                    p.hash,
                    stage,
                )
        except (PivotError, OSError) as e:
            logger.warning("remote %s: could not pull %s: %s", remote.name, stage, e)

    return hook
