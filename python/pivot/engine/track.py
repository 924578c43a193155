"""`pivot track`: put a data file or directory under pivot with a `<path>.pvt` file.

The content goes into the cache and the record is written by `pivot.storage.pvt`
(docs/formats.md, "Tracked files"); `pivot checkout` restores it. Tracked paths are ordinary
files to the pipeline graph, so stages may depend on them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pivot import naming
from pivot.engine.execlock import CacheUse
from pivot.exceptions import PivotError, UnsafePathError
from pivot.storage import pvt

if TYPE_CHECKING:
    from pivot.engine.context import Context


def tracked_files(ctx: Context) -> list[pvt.Tracked]:
    """Every tracked path of the project, from its `.pvt` files (stage output directories are
    not searched: they hold no tracked files). StorageError naming a malformed `.pvt` file."""
    prune = [o.path for s in ctx.pipeline.stages.values() for o in s.outs if o.path.endswith("/")]
    return [pvt.read_pvt(ctx.root, p) for p in pvt.find_pvt_files(ctx.root, prune)]


def changed_tracked(ctx: Context) -> list[tuple[pvt.Tracked, str]]:
    """Tracked paths whose workspace content differs from their `.pvt` record, with
    `"missing"` or `"modified"` (hashed through the stat index, so an unchanged tree costs
    one lstat per file)."""
    tracked = tracked_files(ctx)
    present = [t for t in tracked if os.path.lexists(ctx.root / t.path)]
    infos = ctx.cache.hash_many([ctx.root / t.path for t in present]) if present else []
    now = {t.pvt: i for t, i in zip(present, infos, strict=True)}
    changed: list[tuple[pvt.Tracked, str]] = []
    for t in tracked:
        info = now.get(t.pvt)
        if info is None:
            changed.append((t, "missing"))
        elif info["hash"] != t.info["hash"] or info["is_dir"] != t.info["is_dir"]:
            changed.append((t, "modified"))
    return changed


def track(ctx: Context, paths: Sequence[Path | str]) -> list[Path]:
    """Cache each path and write `<path>.pvt` next to it; returns the `.pvt` paths."""
    outputs = {o.path.rstrip("/"): s.name for s in ctx.pipeline.stages.values() for o in s.outs}
    # Named by their `.pvt` files alone: a malformed record elsewhere does not block tracking.
    tracked = [p[: -len(pvt.PVT_SUFFIX)] for p in pvt.find_pvt_files(ctx.root, list(outputs))]
    # Held while objects go in and their .pvt files are written: a concurrent `pivot gc`
    # must not remove an object that only this .pvt is about to name.
    with CacheUse(ctx.locks_dir):
        return _track(ctx, paths, outputs, tracked)


def _track(
    ctx: Context, paths: Sequence[Path | str], outputs: dict[str, str], tracked: list[str]
) -> list[Path]:
    written: list[Path] = []
    rels: list[str] = []
    for p in paths:
        rel = ctx.project.relpath(p)
        problem = naming.path_problem(rel)
        if problem is not None:
            raise UnsafePathError(f"{rel or '.'}: cannot be tracked: it {problem}")
        if rel.endswith(pvt.PVT_SUFFIX):
            raise PivotError(f"{rel}: is a .pvt file; track the data path instead")
        for out, stage in outputs.items():
            if rel == out or rel.startswith(out + "/") or out.startswith(rel + "/"):
                raise PivotError(f"{rel}: overlaps output {out} of stage '{stage}'")
        # As DVC: one record per tree. A `.pvt` inside a tracked directory would be data of
        # that directory, and `.pvt` discovery skips tracked directories.
        for t in tracked:
            if rel.startswith(t + "/") or t.startswith(rel + "/"):
                raise PivotError(f"{rel}: overlaps tracked path {t} ({t}{pvt.PVT_SUFFIX})")
        path = ctx.root / rel
        if not os.path.lexists(path):
            raise PivotError(f"{rel}: no such file or directory")
        written.append(pvt.write_pvt(path, ctx.cache.insert(path)))
        rels.append(rel)
    from pivot.storage.gitignore import ignore_outputs

    # The data is ignored, its .pvt file is not: git keeps the pointer, pivot the content.
    ignore_outputs(ctx.project, rels)
    return written
