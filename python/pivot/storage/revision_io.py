"""Storage reads for comparing revisions: cache objects by hash and the directory manifest
diff. Thin over `pivot._native` (docs/formats.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

from pivot import _native
from pivot.exceptions import CacheCorruptError, CacheMissingError


class ManifestDiff(TypedDict):
    added: list[str]  # paths relative to the directory, sorted bytewise
    modified: list[str]
    deleted: list[str]


def object_path(cache_dir: Path, digest: str) -> Path:
    """`<cache_dir>/files/<2 hex>/<62 hex>`."""
    return Path(cache_dir) / "files" / digest[:2] / digest[2:]


def read_object(cache_dir: Path, digest: str) -> bytes:
    """The bytes of the file object `digest`, checked against its name.

    CacheMissingError when absent, CacheCorruptError when the bytes do not hash to the name.
    """
    path = object_path(cache_dir, digest)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CacheMissingError(f"{path}: cache object {digest} is missing") from None
    if _native.blake3_bytes(data) != digest:
        raise CacheCorruptError(f"{path}: cache object {digest} is corrupt")
    return data


def diff_manifests(
    cache_dir: Path,
    old_hash: str | None,
    new_hash: str | None,
    *,
    new_dir: Path | None = None,
    state_dir: Path | None = None,
) -> ManifestDiff:
    """Files added/modified/deleted from directory object `old_hash` to `new_hash` (or to the
    workspace directory `new_dir`, hashed through the stat index of `state_dir`). None = no
    directory. CacheMissingError / CacheCorruptError name an absent or damaged manifest."""
    d = _native.manifest_diff(
        str(cache_dir),
        old_hash,
        new_hash,
        str(new_dir) if new_dir is not None else None,
        str(state_dir) if state_dir is not None else None,
    )
    return ManifestDiff(added=d["added"], modified=d["modified"], deleted=d["deleted"])
