"""Metric values of a revision: the stages' `Metric` outputs, read as JSON and flattened.

Metric files are not cached: they are committed to git, so a commit's values come from its
tree and the workspace's from disk. Which paths are metrics: the current pipeline's `Metric`
outputs (locks do not record an output's kind), plus, at a commit, any uncached output its
locks record that the current pipeline does not declare (a metric renamed or removed since).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from pivot.exceptions import PivotError
from pivot.results.revs import Rev, Revisions, under
from pivot.results.table import flatten

if TYPE_CHECKING:
    from pivot.pipeline import Pipeline

logger = logging.getLogger(__name__)

Values = dict[str, dict[str, Any] | None]  # metric path -> flattened values (None: absent)


def metric_paths(pipeline: Pipeline, revs: Revisions, rev: Rev) -> dict[str, str]:
    """Metric file path -> producing stage, as known at `rev`."""
    declared: dict[str, tuple[str, str]] = {}
    for stage in pipeline.stages.values():
        for out in stage.outs:
            declared[out.path.rstrip("/")] = (stage.name, out.kind)
    paths = {p: st for p, (st, kind) in declared.items() if kind == "metric"}
    if not rev.is_workspace:
        for stage_name, lock in revs.locks(rev).items():
            for path, entry in lock["outs"].items():
                if not entry["cache"] and path.rstrip("/") not in declared:
                    paths.setdefault(path.rstrip("/"), stage_name)
    return dict(sorted(paths.items()))


def select(paths: dict[str, str], targets: Sequence[str], stages: set[str]) -> dict[str, str]:
    """Paths of `paths` matching any target (a stage name or a path/directory); all if none."""
    if not targets:
        return paths
    chosen = {}
    for target in targets:
        hits = {
            p: st
            for p, st in paths.items()
            if (target in stages and st == target) or under(p, target)
        }
        if not hits:
            raise PivotError(f"{target}: not a metric file, or a stage or directory with metrics")
        chosen.update(hits)
    return dict(sorted(chosen.items()))


def parse(data: bytes, where: str) -> dict[str, Any] | None:
    """Flattened values of one metric file; a file that is not JSON is a warning, no values."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        logger.warning("%s: not valid JSON, skipped (%s)", where, e)
        return None
    return flatten(doc)


def read_values(revs: Revisions, rev: Rev, paths: Sequence[str]) -> Values:
    """Each path's values at `rev`; None for a file the revision does not have."""
    out: Values = {}
    for path in paths:
        data = revs.read(rev, path)
        out[path] = None if data is None else parse(data, f"{rev.label}:{path}")
    return out
