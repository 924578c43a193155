"""`pivot commit`: record the workspace as it is, without running (docs/cli.md, "pivot commit").

No stage names: every stage whose lock differs from the workspace (code, params, deps, output
paths or bytes). Named stages: unconditionally. Per stage, all or nothing: fingerprint, params
and dependency hashes, then (holding the stage's execution lock) output hashes + cache insert,
lock, run-cache entry. A missing output or dependency fails that stage only. Objects inserted
before a failure are harmless (content-addressed, collected by gc). Stages are recorded in
parallel threads: the Rust calls release the GIL, fingerprinting (Python) is done up front.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivot.config import resolve_jobs
from pivot.engine import plan, record
from pivot.engine.events import Progress, ProgressSink
from pivot.engine.execlock import StageLock
from pivot.exceptions import DependencyMissingError, OutputMissingError, PivotError
from pivot.storage import runcache
from pivot.storage.cache import insert_progress
from pivot.types import OutEntry

if TYPE_CHECKING:
    from pivot.engine.context import Context

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.2


@dataclass
class CommitResult:
    committed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # stage -> one-line cause


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def commit(
    ctx: Context,
    stages: Sequence[str] | None,
    *,
    progress: ProgressSink | None = None,
    jobs: int | None = None,
) -> CommitResult:
    """Record `stages` (None: every stage whose lock differs from the workspace), `jobs` stages
    at a time (default: `resolve_jobs`), reporting to `progress` if given."""
    names = ctx.graph.order(None) if stages is None else list(dict.fromkeys(stages))
    result = CommitResult()
    # Only `stale` and `state` are used here: skip the restorable check (a cache lookup).
    planner = plan.Planner(ctx, assume_restores=False, check_restorable=False)
    todo: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    for name in names:
        stage = ctx.pipeline.get(name)
        try:
            if stages is None:
                d = planner.decide_stage(name)
                if not d.stale:
                    continue
                state = d.state
            else:
                plan.read_stage_lock(ctx, name)  # a newer pivot's lock: SchemaVersionError
                state = planner.state(stage, None)
            assert state is not None
            if state.missing_deps:
                raise DependencyMissingError(f"dependency missing: {', '.join(state.missing_deps)}")
            missing = [
                plan.out_key(o.path)
                for o in stage.outs
                if not os.path.lexists(ctx.abspath(plan.out_key(o.path)))
            ]
            if missing:
                raise OutputMissingError(f"output missing: {', '.join(missing)}")
        except (PivotError, OSError) as e:
            result.failed[name] = _one_line(e)
            continue
        todo.append((name, state.code, state.params))
    ctx.save()
    if not todo:
        return result

    workers = max(1, min(len(todo), resolve_jobs(jobs, ctx.config)))
    inserted_before = insert_progress()  # before any stage starts: small ones finish at once
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pivot-commit") as pool:
        futs = {
            name: pool.submit(_commit_one, ctx, name, code, params) for name, code, params in todo
        }
        _wait_reporting(list(futs.values()), progress, inserted_before)
    for name, fut in futs.items():
        try:
            fut.result()
        except (PivotError, OSError) as e:
            result.failed[name] = _one_line(e)
        else:
            result.committed.append(name)
    return result


def _wait_reporting(
    futs: list[Future[None]], sink: ProgressSink | None, inserted_before: tuple[int, int]
) -> None:
    """Wait for every stage; meanwhile report progress to `sink` (on this thread) every
    PROGRESS_INTERVAL_S, counting files and bytes as the cache inserts them (from
    `inserted_before`), so that one huge directory shows movement too."""
    if sink is None:
        wait(futs)
        return
    base_files, base_bytes = inserted_before
    pending = set(futs)
    while True:
        files, size = insert_progress()
        sink.progress(
            Progress(len(futs) - len(pending), len(futs), files - base_files, size - base_bytes)
        )
        if not pending:
            return
        _done, pending = wait(pending, timeout=PROGRESS_INTERVAL_S, return_when=FIRST_COMPLETED)


def _commit_one(
    ctx: Context,
    name: str,
    code: dict[str, str],
    params: dict[str, Any],
) -> None:
    stage = ctx.pipeline.stages[name]
    with StageLock(ctx.locks_dir, name):
        # Dependencies are hashed again under the lock: a concurrent run may have changed them.
        dep_paths = list(dict.fromkeys(stage.dep_paths))
        missing = [p for p in dep_paths if not os.path.lexists(ctx.abspath(p))]
        if missing:
            raise DependencyMissingError(f"dependency missing: {', '.join(missing)}")
        infos = ctx.cache.hash_many([ctx.abspath(p) for p in dep_paths]) if dep_paths else []
        deps = {p: i["hash"] for p, i in zip(dep_paths, infos, strict=True)}
        key = runcache.run_key(code, params, deps, plan.out_specs(stage))
        state = plan.StageState(code=code, params=params, deps=deps, run_key=key)
        outs: dict[str, OutEntry] = {}
        for o in stage.outs:
            k = plan.out_key(o.path)
            path = ctx.abspath(k)
            if not os.path.lexists(path):
                raise OutputMissingError(f"output missing: {k}")
            info = ctx.cache.insert(path) if o.cache else ctx.cache.hash(path)
            outs[k] = plan.out_entry(info, o.cache)
        record.write_records(ctx, name, state, outs)
