"""Recording a stage's results in the main process: cache objects, then lock, then run cache.

The order matters (docs/reliability.md): a lock must never name an object the cache does not hold, and a
run-cache entry is only an optimisation over a lock that already exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pivot.engine.plan import StageState, entry_info, out_entry, out_key
from pivot.exceptions import LockFileError, OutputMissingError, SchemaVersionError
from pivot.storage import runcache
from pivot.types import LockData, OutEntry

if TYPE_CHECKING:
    from pivot.engine.context import Context

LOCK_SCHEMA_VERSION = 1


def collect_outputs(ctx: Context, stage_name: str, *, insert: bool) -> dict[str, OutEntry]:
    """Hash every declared output; with `insert`, cached outputs also go into the cache."""
    stage = ctx.pipeline.stages[stage_name]
    outs: dict[str, OutEntry] = {}
    for o in stage.outs:
        key = out_key(o.path)
        path = ctx.abspath(key)
        if not os.path.lexists(path):
            raise OutputMissingError(f"stage '{stage_name}' did not produce output {key}")
        info = ctx.cache.insert(path) if (insert and o.cache) else ctx.cache.hash(path)
        outs[key] = out_entry(info, o.cache)
    return outs


def make_lock(stage_name: str, state: StageState, outs: Mapping[str, OutEntry]) -> LockData:
    return LockData(
        schema_version=LOCK_SCHEMA_VERSION,
        stage=stage_name,
        code=dict(state.code),
        params=dict(state.params),
        deps=dict(sorted(state.deps.items())),
        outs=dict(sorted(outs.items())),
    )


def write_records(
    ctx: Context, stage_name: str, state: StageState, outs: Mapping[str, OutEntry]
) -> LockData:
    """Lock, then run-cache entry (objects must already be in the cache)."""
    from pivot.storage.lock import lock_path, write_lock

    lock = make_lock(stage_name, state, outs)
    ctx.project.stages_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(ctx.project.stages_dir, stage_name)
    refuse_newer_lock(path)
    write_lock(path, lock)
    _ignore_cached(ctx, outs)
    if not has_incremental(ctx, stage_name):
        runcache.write(ctx.runs_dir, state.run_key, stage_name, outs)
    return lock


def refuse_newer_lock(path: Path) -> None:
    """SchemaVersionError ("upgrade pivot") when the lock at `path` was written by a newer
    pivot: overwriting it would silently drop what that pivot recorded. A corrupt lock may be
    overwritten (that is how it gets repaired)."""
    from pivot.storage.lock import read_lock

    try:
        read_lock(path)
    except SchemaVersionError:
        raise
    except LockFileError:
        pass


def _ignore_cached(ctx: Context, outs: Mapping[str, OutEntry]) -> None:
    """Cached outputs go into `.gitignore` (metrics, uncached, stay in git)."""
    from pivot.storage.gitignore import ignore_outputs

    ignore_outputs(ctx.project, [key for key, entry in outs.items() if entry["cache"]])


def has_incremental(ctx: Context, stage_name: str) -> bool:
    """An IncrementalOut's previous content is an input the run-cache key does not cover, so
    such stages neither use nor feed the run cache."""
    return any(o.kind == "incremental" for o in ctx.pipeline.stages[stage_name].outs)


def usable_run_cache_hit(
    ctx: Context, stage_name: str, state: StageState
) -> dict[str, OutEntry] | None:
    """The run-cache entry for the stage's inputs, if every object is present and metrics match.

    Uncached outputs (metrics) cannot be restored, so the entry is usable only when the file on
    disk already has the recorded hash.
    """
    stage = ctx.pipeline.stages[stage_name]
    if has_incremental(ctx, stage_name):
        return None
    hit = runcache.lookup(ctx.runs_dir, state.run_key)
    if hit is None:
        return None
    spec = {out_key(o.path): o.cache for o in stage.outs}
    if set(hit) != set(spec):
        return None
    for key, entry in hit.items():
        if bool(entry["cache"]) != spec[key]:
            return None
        if entry["cache"]:
            if not ctx.cache.contains(entry_info(entry)):
                return None
        else:
            path = ctx.abspath(key)
            if not os.path.lexists(path) or ctx.cache.hash(path)["hash"] != entry["hash"]:
                return None
    return hit


def restore_outputs(ctx: Context, outs: Mapping[str, OutEntry]) -> None:
    """Materialise cached outputs from the cache (atomically per output)."""
    for key, entry in outs.items():
        if entry["cache"]:
            dest = ctx.abspath(key)
            dest.parent.mkdir(parents=True, exist_ok=True)
            ctx.cache.restore(entry_info(entry), dest)
