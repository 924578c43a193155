"""Stage parameters of a revision: a commit's are the `params` its locks recorded (the
effective values the stage ran with); the workspace's are the loaded pipeline's effective
params (defaults, `pivot.yaml`, `params.yaml`), i.e. what the next run would use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pivot.exceptions import UnknownStageError
from pivot.results.revs import Rev, Revisions
from pivot.results.table import flatten

if TYPE_CHECKING:
    from pivot.pipeline import Pipeline

Values = dict[str, dict[str, Any] | None]  # stage -> flattened params (None: no lock there)


def read_params(
    pipeline: Pipeline, revs: Revisions, rev: Rev, targets: Sequence[str] = ()
) -> Values:
    """Flattened params per stage at `rev`. With `targets`, only those stages, and a commit
    without a lock for one of them is a RevisionError naming the revision and the lock."""
    if rev.is_workspace:
        every: Values = {}
        for name, stage in pipeline.stages.items():
            if stage.params is not None:
                every[name] = flatten(stage.params.model_dump(mode="json"))
        if targets:
            missing = [t for t in targets if t not in pipeline.stages]
            if missing:
                raise UnknownStageError(f"unknown stage '{missing[0]}' in the workspace pipeline")
            return {t: every.get(t, {}) for t in targets}
        return every
    locks = revs.locks(rev)
    if targets:
        return {t: flatten(revs.lock(rev, t)["params"]) for t in targets}
    return {name: flatten(lock["params"]) for name, lock in locks.items() if lock["params"]}
