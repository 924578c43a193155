"""`pivot checkout`: restore stage outputs (from their locks) and tracked files from the cache.

Safety rule: an existing file or directory is replaced only when its current content is
recorded (same hash as the lock) or recoverable (its object is in the cache); anything else is
user data and is refused unless `force` (a message naming the path).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pivot.config import resolve_jobs
from pivot.engine import partial, plan
from pivot.engine.execlock import StageLock
from pivot.engine.track import tracked_files
from pivot.exceptions import PivotError, UnknownStageError
from pivot.storage import pvt
from pivot.types import HashInfo

if TYPE_CHECKING:
    from pivot.engine.context import Context
    from pivot.storage.links import LinkMode

logger = logging.getLogger(__name__)


@dataclass
class CheckoutResult:
    restored: list[str] = field(default_factory=list)
    skipped: list[str] = field(
        default_factory=list
    )  # already up to date (or present, --only-missing)
    refused: dict[str, str] = field(default_factory=dict)  # path -> why it was not overwritten
    missing: dict[str, str] = field(default_factory=dict)  # path -> missing/corrupt object cause

    @property
    def ok(self) -> bool:
        return not self.refused and not self.missing


@dataclass(frozen=True)
class _Item:
    path: str  # project-relative
    info: HashInfo
    stage: str | None  # producing stage (its execution lock is held while restoring)
    sub: str | None = None  # a path inside a directory output: restore only those entries


def _stage_items(ctx: Context, name: str, keys: set[str] | None = None) -> list[_Item]:
    lock, _problem = plan.read_stage_lock(ctx, name)
    if lock is None:
        return []
    return [
        _Item(k, plan.entry_info(e), name)
        for k, e in sorted(lock["outs"].items())
        if e["cache"] and (keys is None or k in keys)
    ]


def _resolve(ctx: Context, targets: Sequence[str] | None) -> list[_Item]:
    stages = ctx.pipeline.stages
    if not targets:
        everything = [i for name in ctx.graph.order(None) for i in _stage_items(ctx, name)]
        return everything + [_Item(t.path, t.info, None) for t in tracked_files(ctx)]
    out_owner = {plan.out_key(o.path): s.name for s in stages.values() for o in s.outs}
    items: list[_Item] = []
    tracked: list[pvt.Tracked] | None = None
    for target in targets:
        if target in stages:
            items += _stage_items(ctx, target)
            continue
        group = _stage_group(target, list(stages))
        if group:
            items += [i for name in group for i in _stage_items(ctx, name)]
            continue
        rel = ctx.project.relpath(ctx.cwd / target).rstrip("/")  # relative to where we run
        if rel.endswith(pvt.PVT_SUFFIX):
            rel = rel[: -len(pvt.PVT_SUFFIX)]
        owners = {
            owner
            for key, owner in out_owner.items()
            if key == rel or key.startswith(rel + "/") or rel.startswith(key + "/")
        }
        found = False
        for owner in sorted(owners):
            keys = {
                k
                for k, o in out_owner.items()
                if o == owner and (k == rel or k.startswith(rel + "/") or rel.startswith(k + "/"))
            }
            items += [_narrow(i, rel) for i in _stage_items(ctx, owner, keys)]
            found = True
        if tracked is None:
            tracked = tracked_files(ctx)
        for t in tracked:
            if t.path == rel or t.path.startswith(rel + "/") or rel.startswith(t.path + "/"):
                items.append(_narrow(_Item(t.path, t.info, None), rel))
                found = True
        if not found:
            raise UnknownStageError(
                f"unknown target '{target}': not a stage, a stage output or a tracked path"
            )
    unique: dict[tuple[str, str | None], _Item] = {}
    for i in items:
        unique.setdefault((i.path, i.sub), i)
    # A whole directory output asked for as well as a path inside it: the whole one covers it.
    whole = {path for path, sub in unique if sub is None}
    return [i for (path, sub), i in unique.items() if sub is None or path not in whole]


def _stage_group(target: str, known: list[str]) -> list[str]:
    """Matrix variants of `target` or stages matching it as a pattern (docs/cli.md, "Selecting
    stages"); [] when it selects no stage, so that it is taken as a path."""
    from pivot.selection import expand_stages

    try:
        return expand_stages([target], known)
    except UnknownStageError:
        return []


def _narrow(item: _Item, rel: str) -> _Item:
    """`item` restricted to `rel` when `rel` lies inside it (a directory output)."""
    if item.info["is_dir"] and rel.startswith(item.path + "/"):
        return _Item(item.path, item.info, item.stage, rel[len(item.path) + 1 :])
    return item


def checkout(
    ctx: Context,
    targets: Sequence[str] | None = None,
    *,
    force: bool = False,
    only_missing: bool = False,
    link_modes: Sequence[LinkMode] | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CheckoutResult:
    """Restore outputs and tracked files; see the module docstring for the safety rule.
    Stages are restored `jobs` at a time (default: `resolve_jobs`).

    `progress(done, total)` is called (from worker threads) after each path.
    """
    items = _resolve(ctx, targets)
    return _checkout_items(
        ctx,
        items,
        force=force,
        only_missing=only_missing,
        link_modes=link_modes,
        jobs=jobs,
        progress=progress,
    )


def _checkout_items(
    ctx: Context,
    items: list[_Item],
    *,
    force: bool,
    only_missing: bool,
    link_modes: Sequence[LinkMode] | None,
    jobs: int | None,
    progress: Callable[[int, int], None] | None = None,
) -> CheckoutResult:
    result = CheckoutResult()
    done = [0]
    done_lock = threading.Lock()

    def counted(item: _Item) -> list[tuple[str, str, str]]:
        outcome = one(item)
        if progress is not None:
            with done_lock:
                done[0] += 1
                n = done[0]
            progress(n, len(items))
        return outcome

    by_stage: dict[str | None, list[_Item]] = {}
    for i in items:
        by_stage.setdefault(i.stage, []).append(i)

    def entries(item: _Item, sub: str | None) -> list[tuple[str, str, str]]:
        """Entries of a directory output, each on its own (partial.restore_entries)."""
        return partial.restore_entries(ctx, item.path, item.info, sub, force, link_modes)

    def one(item: _Item) -> list[tuple[str, str, str]]:
        """[(path, outcome, message)] with outcome restored/skipped/refused/missing."""
        path = ctx.abspath(item.path)
        if item.sub is not None:
            return entries(item, item.sub)
        is_tree = item.info["is_dir"] and path.is_dir() and not path.is_symlink()
        early: list[tuple[str, str, str]] = []
        if os.path.lexists(path):
            if only_missing:
                return entries(item, None) if is_tree else [(item.path, "skipped", "")]
            try:
                current: HashInfo | None = ctx.cache.hash(path)
            except (PivotError, OSError):
                current = None  # unhashable content is certainly not what was recorded
            if current is not None and current["hash"] == item.info["hash"]:
                return [(item.path, "skipped", "")]
            if is_tree:
                # Files missing from a directory are put back one by one, without touching the
                # others; if that was the only difference the tree is now as recorded.
                # Entries it cannot put back (a symlinked parent...) are left to the rule below.
                early = [e for e in entries(item, None) if e[1] == "restored"]
                if early:
                    try:
                        current = ctx.cache.hash(path)
                    except (PivotError, OSError):
                        current = None
                    if current is not None and current["hash"] == item.info["hash"]:
                        return early
            recoverable = current is not None and ctx.cache.contains(current)
            if not force and not recoverable:
                msg = f"{item.path}: modified and not in the cache; use --force to overwrite"
                return [*early, (item.path, "refused", msg)]
        # No presence pre-check: the restore reads and validates everything before touching
        # the destination and names the missing or corrupt object (a directory's file too).
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            ctx.cache.restore(item.info, path, link_modes)
        except (PivotError, OSError) as e:
            return [*early, (item.path, "missing", f"{item.path}: {e}")]
        return [*early, (item.path, "restored", "")]

    def group(stage: str | None, group_items: list[_Item]) -> list[tuple[str, str, str]]:
        if stage is None:
            return [o for i in group_items for o in counted(i)]
        with StageLock(ctx.locks_dir, stage):  # never restore under a running stage
            return [o for i in group_items for o in counted(i)]

    workers = max(1, min(len(by_stage), resolve_jobs(jobs, ctx.config)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pivot-checkout") as pool:
        futures = [pool.submit(group, s, g) for s, g in by_stage.items()]
        outcomes = [o for f in futures for o in f.result()]
    for path, outcome, msg in sorted(outcomes):
        if outcome == "restored":
            result.restored.append(path)
        elif outcome == "skipped":
            result.skipped.append(path)
        elif outcome == "refused":
            result.refused[path] = msg
        else:
            result.missing[path] = msg
    return result


def restore_missing_tracked(ctx: Context, jobs: int | None = None) -> CheckoutResult:
    """`--checkout-missing`: restore absent tracked files before a run (problems are warnings)."""
    items = [_Item(t.path, t.info, None) for t in tracked_files(ctx)]
    result = _checkout_items(ctx, items, force=False, only_missing=True, link_modes=None, jobs=jobs)
    for msg in result.missing.values():
        logger.warning("%s", msg)
    return result
