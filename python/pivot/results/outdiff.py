"""`pivot diff`: outputs and tracked paths added, modified or deleted between two revisions.

A commit's outputs are what its locks and `.pvt` files record; the workspace's are the current
pipeline's outputs and tracked paths as they are on disk (hashed through the stat index).
Files compare by hash; a directory that changed is listed itself (`dir/`) and, from a Rust
merge pass over the two manifests, every file inside that was added, modified or deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pivot.exceptions import PivotError
from pivot.results.revs import RecordedOut, Rev, Revisions, under

if TYPE_CHECKING:
    from pivot.pipeline import Pipeline
    from pivot.project import Project

Kind = Literal["added", "modified", "deleted"]
KINDS: tuple[Kind, ...] = ("added", "modified", "deleted")


@dataclass(frozen=True)
class Change:
    path: str  # project-relative; a directory output ends with "/"
    kind: Kind
    output: str  # the output (or tracked path) it belongs to


def workspace_outputs(
    project: Project, revs: Revisions, rev: Rev, pipeline: Pipeline
) -> dict[str, RecordedOut]:
    """The pipeline's outputs and the tracked paths that exist on disk, hashed."""
    from pivot.storage.cache import Cache

    wanted: dict[str, tuple[str, bool]] = {}  # path -> (owner, cache)
    for stage in pipeline.stages.values():
        for out in stage.outs:
            wanted[out.path.rstrip("/")] = (stage.name, out.cache)
    for path, rec in revs.tracked(rev).items():
        wanted[path] = (rec.owner, True)
    present = [p for p in sorted(wanted) if (project.root / p).exists()]
    cache = Cache(project.cache_dir, project.state_dir, project.config.link_modes)
    infos = cache.hash_many([project.root / p for p in present])
    return {
        p: RecordedOut(
            p, wanted[p][0], i["hash"], i["is_dir"], wanted[p][1], i["size"], i["nfiles"]
        )
        for p, i in zip(present, infos, strict=True)
    }


def _dir_changes(
    project: Project, old_rev: Rev, new_rev: Rev, old: RecordedOut | None, new: RecordedOut | None
) -> list[Change]:
    from pivot.results import fetch
    from pivot.storage.revision_io import diff_manifests

    old_hash = old.hash if old is not None and old.is_dir else None
    new_hash = new.hash if new is not None and new.is_dir else None
    if old is not None and old_hash is not None:
        fetch.ensure_manifest(project, old_rev, old)
    new_dir = None
    if new is not None and new_hash is not None:
        if new_rev.is_workspace:
            new_dir = project.root / new.path
        else:
            fetch.ensure_manifest(project, new_rev, new)
    d = diff_manifests(
        project.cache_dir,
        old_hash,
        None if new_dir is not None else new_hash,
        new_dir=new_dir,
        state_dir=project.state_dir if new_dir is not None else None,
    )
    out_path = (new or old).path  # type: ignore[union-attr]
    return [Change(f"{out_path}/{p}", kind, out_path) for kind in KINDS for p in d[kind]]


def diff_outputs(
    project: Project,
    revs: Revisions,
    old_rev: Rev,
    new_rev: Rev,
    targets: Sequence[str] = (),
    pipeline: Pipeline | None = None,
) -> list[Change]:
    """Every change from `old_rev` to `new_rev`, sorted by path (a directory before its
    files). `pipeline` is needed when one side is the workspace."""

    def outputs(rev: Rev) -> dict[str, RecordedOut]:
        if rev.is_workspace:
            assert pipeline is not None, "the workspace side needs the pipeline"
            return workspace_outputs(project, revs, rev, pipeline)
        return revs.recorded(rev)

    a, b = outputs(old_rev), outputs(new_rev)
    if targets:
        owners = {r.owner for r in (*a.values(), *b.values())}
        for t in targets:
            if t not in owners and not any(under(p, t) or under(t, p) for p in (*a, *b)):
                raise PivotError(
                    f"{t}: not an output, tracked path or stage at {old_rev.label} "
                    f"or {new_rev.label}"
                )

    def wanted(out: str, owner: str) -> bool:
        return not targets or any(t == owner or under(out, t) or under(t, out) for t in targets)

    changes: list[Change] = []
    for path in sorted(set(a) | set(b)):
        old, new = a.get(path), b.get(path)
        owner = (new or old).owner  # type: ignore[union-attr]
        if not wanted(path, owner):
            continue
        if old is not None and new is not None and (old.hash, old.is_dir) == (new.hash, new.is_dir):
            continue
        kind: Kind = "added" if old is None else "deleted" if new is None else "modified"
        is_dir = (new or old).is_dir  # type: ignore[union-attr]
        inner_only = bool(targets) and not any(t == owner or under(path, t) for t in targets)
        if not inner_only:
            changes.append(Change(path + "/" if is_dir else path, kind, path))
        if (old is not None and old.is_dir) or (new is not None and new.is_dir):
            inner = _dir_changes(project, old_rev, new_rev, old, new)
            if inner_only:
                inner = [c for c in inner if any(under(c.path, t) for t in targets)]
            changes += inner
    return changes


def summary(changes: Sequence[Change]) -> dict[Kind, int]:
    return {k: sum(1 for c in changes if c.kind == k) for k in KINDS}


def document(changes: Sequence[Change], old: Rev, new: Rev) -> dict[str, object]:
    """The `--json` document."""
    doc: dict[str, object] = {"old": old.label, "new": new.label}
    for kind in KINDS:
        doc[kind] = [{"path": c.path} for c in changes if c.kind == kind]
    return doc
