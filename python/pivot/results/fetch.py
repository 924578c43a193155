"""Where the bytes of a revision's cached output come from.

Today: the local cache only. Remotes (issue 13) will extend `ensure_local` — the one place
that decides whether an object is available — to fetch an absent object before giving up, so
`get`, `plots` and `diff` gain the remote fallback without changing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pivot.exceptions import CacheCorruptError, CacheMissingError, RevisionError

if TYPE_CHECKING:
    from pivot.project import Project
    from pivot.results.revs import RecordedOut, Rev
    from pivot.types import HashInfo


def missing(rev: Rev, path: str, digest: str, what: str = "object") -> RevisionError:
    return RevisionError(f"{rev.label}:{path}: {what} {digest} is not in the local cache")


def info_of(rec: RecordedOut) -> HashInfo:
    from pivot.types import HashInfo

    return HashInfo(hash=rec.hash, size=rec.size, nfiles=rec.nfiles, is_dir=rec.is_dir)


def ensure_local(project: Project, rev: Rev, rec: RecordedOut) -> None:
    """Make sure the object of `rec` (a directory: its manifest and every file) is in the local
    cache; RevisionError naming the revision, path and hash otherwise."""
    from pivot.storage.cache import Cache

    cache = Cache(project.cache_dir, None)
    if not cache.contains(info_of(rec)):
        raise missing(rev, rec.path, rec.hash, "directory" if rec.is_dir else "object")


def file_bytes(project: Project, rev: Rev, path: str, digest: str) -> bytes:
    """The bytes of the cached file `digest` (the output `path` at `rev`), verified."""
    from pivot.storage.revision_io import read_object

    try:
        return read_object(project.cache_dir, digest)
    except CacheMissingError:
        raise missing(rev, path, digest) from None
    except CacheCorruptError as e:
        raise RevisionError(f"{rev.label}:{path}: {e}") from None


def ensure_manifest(project: Project, rev: Rev, rec: RecordedOut) -> None:
    """The directory object (manifest) of `rec` is in the local cache (its files need not be:
    listing a directory's changes reads only manifests)."""
    from pivot.storage.revision_io import object_path

    if not object_path(project.cache_dir, rec.hash).is_file():
        raise missing(rev, rec.path, rec.hash, "directory manifest")
