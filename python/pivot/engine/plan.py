"""The one decision function for repro, run, status, dry-run, explain and verify
(docs/architecture.md, "Deciding what runs").

Precedence per stage (the first that applies is the reason):
  `--force` -> "Forced";
  no (readable) lock -> "No previous run";
  a direct upstream stage in this plan will run -> "Upstream stale (<stage>)";
  then the stage's own inputs: code -> params -> deps -> output paths -> outputs.
A missing lock beats an upstream reason because it is the more useful one to show: the stage
would run even if its upstream did not. An upstream stage that only needs its outputs restored
from the cache does not make its dependents stale (they see the restored, recorded bytes).

Nothing here starts a process or writes durable state; the runner re-decides a stage just
before running it, once its upstream has finished, so decisions always see real files.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivot.exceptions import LockFileError, SchemaVersionError
from pivot.storage import runcache
from pivot.types import HashInfo, LockData, OutEntry

if TYPE_CHECKING:
    from pivot.engine.context import Context
    from pivot.pipeline import StageInfo

logger = logging.getLogger(__name__)

NO_PREVIOUS_RUN = "No previous run"
CODE_CHANGED = "Code changed"
PARAMS_CHANGED = "Params changed"
DEPS_CHANGED = "Input dependencies changed"
OUT_PATHS_CHANGED = "Output paths changed"
OUTS_CHANGED = "Outputs missing or modified"
UNCHANGED = "unchanged"
FORCED = "Forced"


def upstream_stale(stage: str) -> str:
    return f"Upstream stale ({stage})"


@dataclass
class StageState:
    """The stage's current inputs, computed once."""

    code: dict[str, str]
    params: dict[str, Any]
    deps: dict[str, str]  # only deps that exist (or are known from a lock, see allow_missing)
    run_key: str  # run-cache key over (code, params, deps, output specs)
    missing_deps: list[str] = field(default_factory=list)


@dataclass
class Decision:
    stage: str
    will_run: bool
    reason: str
    details: list[str]
    restore: bool  # outputs missing/modified but cached: restore instead of run
    state: StageState | None  # None when it cannot be known yet (upstream will run)
    lock: LockData | None
    restore_paths: list[str] = field(default_factory=list)  # outs to restore when `restore`

    @property
    def stale(self) -> bool:
        return self.will_run or self.restore


def out_key(path: str) -> str:
    """Lock/run-cache key of an output path (a directory output's trailing '/' dropped)."""
    return path.rstrip("/")


def out_specs(stage: StageInfo) -> list[tuple[str, str, bool]]:
    """(path, kind, cache) of every output, as recorded in the run-cache key."""
    return [(out_key(o.path), o.kind, o.cache) for o in stage.outs]


def effective_params(stage: StageInfo) -> dict[str, Any]:
    return stage.params.model_dump(mode="json") if stage.params is not None else {}


def out_entry(info: HashInfo, cache: bool) -> OutEntry:
    return OutEntry(
        hash=info["hash"],
        size=info["size"],
        nfiles=info["nfiles"],
        is_dir=info["is_dir"],
        cache=cache,
    )


def incremental_previous(
    ctx: Context, stage: Any, d: Decision
) -> list[tuple[str, HashInfo | None]]:
    """(output key, the version a run starts from) of each `IncrementalOut` of `stage`: the
    locked version when the cache has it, else None (the stage starts from an empty output)."""
    found: list[tuple[str, HashInfo | None]] = []
    for o in stage.outs:
        if o.kind != "incremental":
            continue
        key = out_key(o.path)
        entry = d.lock["outs"].get(key) if d.lock is not None else None
        previous = entry_info(entry) if entry is not None and entry["cache"] else None
        if previous is not None and not ctx.cache.contains(previous):
            previous = None
        found.append((key, previous))
    return found


def entry_info(entry: OutEntry) -> HashInfo:
    return HashInfo(
        hash=entry["hash"], size=entry["size"], nfiles=entry["nfiles"], is_dir=entry["is_dir"]
    )


def read_stage_lock(ctx: Context, stage: str) -> tuple[LockData | None, str | None]:
    """(lock, problem): a corrupt lock is a warning naming the file and counts as absent.

    A lock from a newer pivot is an error (SchemaVersionError: "upgrade pivot").
    """
    from pivot.storage.lock import lock_path, read_lock

    path = lock_path(ctx.project.stages_dir, stage)
    try:
        return read_lock(path), None
    except SchemaVersionError:
        raise
    except LockFileError as e:
        logger.warning("%s (treating %s as never run)", e, stage)
        return None, str(e)


def _fmt(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _dict_diff(kind: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for k in sorted(old.keys() | new.keys()):
        if k not in old:
            out.append(f"{kind} added: {k}")
        elif k not in new:
            out.append(f"{kind} removed: {k}")
        elif old[k] != new[k]:
            out.append(f"{kind} changed: {k}")
    return out


def _params_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for k in sorted(old.keys() | new.keys()):
        if k not in old:
            out.append(f"param added: {k} = {_fmt(new[k])}")
        elif k not in new:
            out.append(f"param removed: {k}")
        elif old[k] != new[k]:
            out.append(f"param {k}: {_fmt(old[k])} -> {_fmt(new[k])}")
    return out


_LOADER_PREFIXES = ("loader:dep:", "loader:out:")


def _code_view(code: dict[str, str], kept_paths: set[str]) -> dict[str, str]:
    """The code manifest without loader entries of paths that were added or removed.

    Loader entries are keyed by path (`loader:out:<path>`), so renaming an output would
    otherwise read as a code change; it is reported as a dep or output-path change instead.
    """
    view = {}
    for k, v in code.items():
        if k.startswith(_LOADER_PREFIXES):
            path = k.split(":", 2)[2].split("#", 1)[0].rstrip("/")
            if path not in kept_paths:
                continue
        view[k] = v
    return view


class Planner:
    """Decisions over one snapshot of the workspace; hashes each path at most once."""

    def __init__(
        self,
        ctx: Context,
        *,
        allow_missing: bool = False,
        assume_restores: bool = True,
        check_restorable: bool = True,
    ) -> None:
        self.ctx = ctx
        self.allow_missing = allow_missing
        # False (commit): a stage with changed outputs is stale either way, so do not ask the
        # cache whether the recorded objects could be restored (for a directory that reads its
        # manifest and stats every file). Such a decision is "run", never "restore".
        self.check_restorable = check_restorable
        # Whether later stages see a restorable stage's outputs as restored (a plan), or see
        # the workspace as it is (commit).
        self.assume_restores = assume_restores
        self._hashes: dict[str, HashInfo | None] = {}
        # output path -> recorded entry, for outputs that the plan will restore from the cache
        self._pending_restore: dict[str, HashInfo] = {}

    # --- hashing ---------------------------------------------------------------------------
    def hashes(self, paths: Iterable[str]) -> dict[str, HashInfo | None]:
        """Current hash of each project-relative path (None: absent), via the stat index."""
        todo: list[str] = []
        for p in paths:
            if p in self._hashes or p in todo:
                continue
            if p in self._pending_restore:
                self._hashes[p] = self._pending_restore[p]
            elif os.path.lexists(self.ctx.abspath(p)):
                todo.append(p)
            else:
                self._hashes[p] = None
        if todo:
            infos = self.ctx.cache.hash_many([self.ctx.abspath(p) for p in todo])
            self._hashes.update(zip(todo, infos, strict=True))
        return {p: self._hashes[p] for p in paths}

    def _inside_pending_restore(self, path: str) -> bool:
        return any(path == k or path.startswith(k + "/") for k in self._pending_restore)

    # --- state -----------------------------------------------------------------------------
    def state(self, stage: StageInfo, lock: LockData | None) -> StageState:
        from pivot.fingerprint import stage_fingerprint

        code = stage_fingerprint(stage, self.ctx.fingerprints)
        params = effective_params(stage)
        dep_paths = list(dict.fromkeys(stage.dep_paths))
        current = self.hashes(dep_paths)
        deps: dict[str, str] = {}
        missing: list[str] = []
        locked = lock["deps"] if lock is not None else {}
        for p in dep_paths:
            info = current[p]
            if info is not None:
                deps[p] = info["hash"]
            elif p in locked and (self.allow_missing or self._inside_pending_restore(p)):
                deps[p] = locked[p]  # will be there: restored by the plan / present remotely
            else:
                missing.append(p)
        key = runcache.run_key(code, params, deps, out_specs(stage))
        return StageState(code=code, params=params, deps=deps, run_key=key, missing_deps=missing)

    # --- decisions -------------------------------------------------------------------------
    def decide_stage(
        self,
        name: str,
        *,
        force: bool = False,
        upstream_running: str | None = None,
    ) -> Decision:
        stage = self.ctx.pipeline.stages[name]
        lock, problem = read_stage_lock(self.ctx, name)

        def make(reason: str, details: list[str], state: StageState | None) -> Decision:
            return Decision(name, True, reason, details, False, state, lock)

        if force:
            state = None if upstream_running else self.state(stage, lock)
            return make(FORCED, ["--force"], state)
        if lock is None:
            state = None if upstream_running else self.state(stage, lock)
            why = f"unreadable lock: {problem}" if problem else "no lock file"
            return make(NO_PREVIOUS_RUN, [why], state)
        if upstream_running:
            return make(
                upstream_stale(upstream_running),
                [f"upstream stage will run: {upstream_running}"],
                None,
            )

        state = self.state(stage, lock)
        spec = {k: cache for k, _kind, cache in out_specs(stage)}
        both = (set(lock["deps"]) & set(state.deps)) | (set(lock["outs"]) & set(spec))
        code = _dict_diff("code", _code_view(lock["code"], both), _code_view(state.code, both))
        params = _params_diff(lock["params"], state.params)
        deps = _dict_diff("dep", lock["deps"], state.deps)
        deps = [d for d in deps if not any(d == f"dep removed: {m}" for m in state.missing_deps)]
        deps += [f"dep missing: {m}" for m in state.missing_deps]
        locked_outs = lock["outs"]
        paths = [f"out added: {k}" for k in sorted(spec.keys() - locked_outs.keys())]
        paths += [f"out removed: {k}" for k in sorted(locked_outs.keys() - spec.keys())]
        paths += [
            f"out cache flag changed: {k}"
            for k in sorted(spec.keys() & locked_outs.keys())
            if bool(locked_outs[k]["cache"]) != spec[k]
        ]
        for reason, details in (
            (CODE_CHANGED, code),
            (PARAMS_CHANGED, params),
            (DEPS_CHANGED, deps),
            (OUT_PATHS_CHANGED, paths),
        ):
            if details:
                rest = [d for d in (*code, *params, *deps, *paths) if d not in details]
                return make(reason, details + rest, state)

        # Outputs: current bytes vs the lock.
        current = self.hashes(list(spec))
        changed: list[str] = []
        out_details: list[str] = []
        for k in spec:
            info = current[k]
            if info is None:
                if self.allow_missing:
                    continue
                changed.append(k)
                out_details.append(f"out missing: {k}")
            elif info["hash"] != locked_outs[k]["hash"]:
                changed.append(k)
                out_details.append(f"out modified: {k}")
        if not changed:
            return Decision(name, False, UNCHANGED, [], False, state, lock)
        if not self.check_restorable:
            return make(OUTS_CHANGED, out_details, state)

        restorable = all(
            locked_outs[k]["cache"] and self.ctx.cache.contains(entry_info(locked_outs[k]))
            for k in changed
        )
        if not restorable:
            out_details.append("not all changed outputs are in the cache: the stage must run")
            return make(OUTS_CHANGED, out_details, state)
        if self.assume_restores:
            for k in spec:
                self._pending_restore[k] = entry_info(locked_outs[k])
                self._hashes.pop(k, None)
        out_details.append("cached: outputs will be restored")
        return Decision(name, True, OUTS_CHANGED, out_details, True, state, lock, changed)


def decide(
    ctx: Context, order: Sequence[str], *, force: bool = False, allow_missing: bool = False
) -> dict[str, Decision]:
    """Decide every stage of `order`; no process is started, nothing is written."""
    planner = Planner(ctx, allow_missing=allow_missing)
    decisions: dict[str, Decision] = {}
    for name in order:
        running = None
        for up in ctx.graph.upstream(name):
            d = decisions.get(up)
            if d is not None and d.will_run and not d.restore:
                running = up
                break
        decisions[name] = planner.decide_stage(name, force=force, upstream_running=running)
    ctx.save()
    return decisions
