"""`pivot get`: write an output, tracked path or committed file as it was at a revision.

What PATH names at the revision, in order: a stage output or tracked path its locks / `.pvt`
files record (cached: from the cache, as a writable copy; uncached, e.g. a metric: from git),
a file or subdirectory inside such a directory output (via its manifest), or any file
committed to git at that revision.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from pivot.exceptions import PivotError, RevisionError
from pivot.results import fetch
from pivot.results.revs import RecordedOut, Rev, Revisions, under

if TYPE_CHECKING:
    from pivot.project import Project
    from pivot.storage.cache import Cache
    from pivot.types import ManifestEntry

COPY = ("copy",)  # a private, writable copy the user owns: never a link into the cache


def _owner(revs: Revisions, rev: Rev, rel: str) -> RecordedOut | None:
    for path, rec in revs.recorded(rev).items():
        if under(rel, path):
            return rec
    return None


def _check_dest(dest: Path, force: bool) -> None:
    if (dest.exists() or dest.is_symlink()) and not force:
        raise PivotError(f"{dest}: already exists; use --force to overwrite")


def get(
    project: Project, revs: Revisions, rev: Rev, rel: str, dest: Path, *, force: bool = False
) -> str:
    """Materialise `rel` (project-relative) at `rev` into `dest`; returns what was written
    ("file", "directory"). RevisionError names the revision and the path or hash."""
    from pivot.storage.cache import Cache
    from pivot.storage.files import write_atomic

    _check_dest(dest, force)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cache = Cache(project.cache_dir, project.state_dir, project.config.link_modes)
    rec = _owner(revs, rev, rel)
    if rec is not None and rec.cache:
        if rec.path == rel:
            fetch.ensure_local(project, rev, rec)
            _replace_dir_guard(dest, rec.is_dir)
            cache.restore(fetch.info_of(rec), dest, COPY)
            return "directory" if rec.is_dir else "file"
        fetch.ensure_manifest(project, rev, rec)
        return _from_manifest(project, cache, rev, rec, rel, dest)
    data = revs.read(rev, rel)  # an uncached output (metric) or any committed file
    if data is None:
        if rec is not None:
            raise RevisionError(f"{rev.label}:{rel}: uncached output not committed to git")
        raise RevisionError(
            f"{rev.label}: {rel} is not an output, a tracked path or a committed file"
        )
    _replace_dir_guard(dest, False)
    write_atomic(dest, data)
    return "file"


def _replace_dir_guard(dest: Path, is_dir: bool) -> None:
    """`--force` over an existing path of the other kind: a directory is not replaced by a file
    rename (nor a file by a directory), so remove it first."""
    if dest.is_symlink() or (dest.exists() and dest.is_dir() != is_dir):
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        else:
            dest.unlink()


def _from_manifest(
    project: Project, cache: Cache, rev: Rev, rec: RecordedOut, rel: str, dest: Path
) -> str:
    from pivot.types import HashInfo

    inner = rel[len(rec.path) + 1 :]
    entries = cache.manifest(rec.hash)
    hits = [e for e in entries if under(e["path"], inner)]
    if not hits:
        raise RevisionError(f"{rev.label}:{rel}: not in the directory output {rec.path}")

    def restore(e: ManifestEntry, to: Path) -> None:
        if e["link"] is not None:
            to.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(e["link"], to)
            return
        info = HashInfo(hash=e["hash"], size=e["size"], nfiles=1, is_dir=False)
        fetch.ensure_file(project, rev, f"{rec.path}/{e['path']}", info)
        cache.restore(info, to, COPY)
        if e["exec"]:
            os.chmod(to, 0o755)

    if len(hits) == 1 and hits[0]["path"] == inner:
        _replace_dir_guard(dest, False)
        restore(hits[0], dest)
        return "file"
    # A subdirectory: built beside the destination, then renamed into place.
    staging = dest.parent / f".pvtmp-get-{uuid.uuid4().hex[:12]}"
    try:
        for e in hits:
            restore(e, staging / e["path"][len(inner) + 1 :])
        _replace_dir_guard(dest, True)
        if dest.exists():
            shutil.rmtree(dest)
        os.rename(staging, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return "directory"
