"""Where the bytes of a revision's cached output come from.

The local cache first; an object absent from it is fetched from the default remote when one
is configured (`core.remote`, or the only remote; docs/remote.md), verified like every fetch,
before giving up. This module is the one place that decides whether an object is available,
so `get`, `plots` and `diff` share the remote fallback.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pivot.exceptions import CacheCorruptError, CacheMissingError, RevisionError

if TYPE_CHECKING:
    from pivot.project import Project
    from pivot.results.revs import RecordedOut, Rev
    from pivot.storage.remote import Remote
    from pivot.types import HashInfo

# One remote handle per cache for the command (its index set is read once), or None: no
# remote configured.
_REMOTES: dict[Path, Remote | None] = {}


def missing(
    rev: Rev, path: str, digest: str, what: str = "object", remote: str | None = None
) -> RevisionError:
    """`remote`: what the default remote said (`_from_remote`), when one was asked."""
    where = "the local cache" + (f" ({remote})" if remote is not None else "")
    return RevisionError(f"{rev.label}:{path}: {what} {digest} is not in {where}")


def info_of(rec: RecordedOut) -> HashInfo:
    from pivot.types import HashInfo

    return HashInfo(hash=rec.hash, size=rec.size, nfiles=rec.nfiles, is_dir=rec.is_dir)


def _default_remote(project: Project) -> Remote | None:
    if project.cache_dir not in _REMOTES:
        from pivot.exceptions import RemoteNotFoundError
        from pivot.storage.remote import open_remote

        try:
            _REMOTES[project.cache_dir] = open_remote(project)
        except RemoteNotFoundError:
            _REMOTES[project.cache_dir] = None
    return _REMOTES[project.cache_dir]


def _from_remote(project: Project, items: Sequence[tuple[str, bool]]) -> str | None:
    """Fetch `items` (hash, is_dir) from the default remote into the cache. None when no
    remote is configured, else what the remote said, for the error should the object still be
    absent (what the remote lacks or holds corrupt is never stored; the caller checks the
    cache again)."""
    remote = _default_remote(project)
    if remote is None:
        return None
    rep = remote.fetch(items)
    if rep.corrupt:
        return f"corrupt on remote {remote.name}: not stored"
    return f"nor on remote {remote.name}"


def ensure_local(project: Project, rev: Rev, rec: RecordedOut) -> None:
    """Make sure the object of `rec` (a directory: its manifest and every file) is in the local
    cache; RevisionError naming the revision, path and hash otherwise."""
    from pivot.storage.cache import Cache

    cache = Cache(project.cache_dir, None)
    info = info_of(rec)
    if cache.contains(info):
        return
    remote = _from_remote(project, [(rec.hash, rec.is_dir)])
    if remote is None or not cache.contains(info):
        what = "directory" if rec.is_dir else "object"
        raise missing(rev, rec.path, rec.hash, what, remote)


def ensure_file(project: Project, rev: Rev, path: str, info: HashInfo) -> None:
    """The file object `info` (the file `path` at `rev`) is in the local cache."""
    from pivot.storage.cache import Cache

    cache = Cache(project.cache_dir, None)
    if cache.contains(info):
        return
    remote = _from_remote(project, [(info["hash"], False)])
    if remote is None or not cache.contains(info):
        raise missing(rev, path, info["hash"], remote=remote)


def file_bytes(project: Project, rev: Rev, path: str, digest: str) -> bytes:
    """The bytes of the cached file `digest` (the output `path` at `rev`), verified."""
    from pivot.storage.revision_io import read_object

    remote = None
    for attempt in range(2):
        try:
            return read_object(project.cache_dir, digest)
        except CacheMissingError:
            if attempt == 0:
                remote = _from_remote(project, [(digest, False)])
            if remote is None:
                break
        except CacheCorruptError as e:
            raise RevisionError(f"{rev.label}:{path}: {e}") from None
    raise missing(rev, path, digest, remote=remote)


def ensure_manifest(project: Project, rev: Rev, rec: RecordedOut) -> None:
    """The directory object (manifest) of `rec` is in the local cache (its files need not be:
    listing a directory's changes reads only manifests, so only the manifest is fetched)."""
    from pivot.storage.revision_io import object_path

    if object_path(project.cache_dir, rec.hash).is_file():
        return
    # A manifest is an object like any other: fetched alone, as a file item.
    remote = _from_remote(project, [(rec.hash, False)])
    if remote is None or not object_path(project.cache_dir, rec.hash).is_file():
        raise missing(rev, rec.path, rec.hash, "directory manifest", remote)
