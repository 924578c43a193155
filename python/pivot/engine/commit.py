"""`pivot commit`: record the workspace as it is, without running (seed 004, spec §6).

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
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivot.engine import plan, record, runcache
from pivot.engine.execlock import StageLock
from pivot.exceptions import DependencyMissingError, OutputMissingError, PivotError
from pivot.types import OutEntry

if TYPE_CHECKING:
    from pivot.engine.context import Context

logger = logging.getLogger(__name__)


@dataclass
class CommitResult:
    committed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # stage -> one-line cause


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def commit(ctx: Context, stages: Sequence[str] | None, progress: bool = False) -> CommitResult:
    """Record `stages` (None: every stage whose lock differs from the workspace)."""
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

    meter = _Meter(ctx, len(todo)) if progress else None
    workers = max(1, min(len(todo), os.cpu_count() or 1, 8))
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pivot-commit") as pool:
            futs = {
                name: pool.submit(_commit_one, ctx, name, code, params, meter)
                for name, code, params in todo
            }
            for name, fut in futs.items():
                try:
                    fut.result()
                except (PivotError, OSError) as e:
                    result.failed[name] = _one_line(e)
                else:
                    result.committed.append(name)
    finally:
        if meter is not None:
            meter.close()
    return result


def _commit_one(
    ctx: Context,
    name: str,
    code: dict[str, str],
    params: dict[str, Any],
    meter: _Meter | None,
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
            if meter is not None:
                meter.output_done(info["nfiles"], info["size"])
        record.write_records(ctx, name, state, outs)
    if meter is not None:
        meter.stage_done()


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class _Meter:
    """Progress on stderr: stages, files and bytes inserted (engine/progress.py: a live line
    on a terminal, a plain line every few seconds elsewhere).

    Uses `_native.insert_progress()` (files, bytes inserted so far in this process) when the
    core provides it, so a single huge directory shows movement; otherwise counts per output.
    """

    def __init__(self, ctx: Context, total: int) -> None:
        from pivot import _native
        from pivot.engine.progress import LiveLine

        self._native_progress = getattr(_native, "insert_progress", None)
        self._base = self._native_progress() if self._native_progress else (0, 0)
        self._lock = threading.Lock()
        self.total = total
        self.stages = 0
        self.files = 0
        self.bytes = 0
        self._line = LiveLine(self._text)

    def _text(self) -> str:
        files, size = self.files, self.bytes
        if self._native_progress is not None:
            f, b = self._native_progress()
            files, size = f - self._base[0], b - self._base[1]
        return (
            f"Committing: {self.stages}/{self.total} stage(s), "
            f"{files} file(s), {_human(size)} inserted"
        )

    def output_done(self, nfiles: int, size: int) -> None:
        with self._lock:
            self.files += nfiles
            self.bytes += size

    def stage_done(self) -> None:
        with self._lock:
            self.stages += 1
        self._line.poke()

    def close(self) -> None:
        self._line.close()
