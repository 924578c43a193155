"""The content-addressed cache: a thin policy layer over `pivot._native` (see docs/formats.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from pivot import _native
from pivot.storage.links import DEFAULT_LINK_MODES, LinkMode, native_names
from pivot.types import GcReport, HashInfo, ManifestEntry, PartialRestore, VerifyReport


def insert_progress() -> tuple[int, int]:
    """(files, bytes) inserted into any cache by this process so far (for progress displays)."""
    return _native.insert_progress()


def hash_progress() -> tuple[int, int, int]:
    """(files checked through the stat index, files read, bytes read) to hash them, by this
    process so far (for progress displays)."""
    stats = _native._debug_stats()
    return stats["index_hits"] + stats["files_read"], stats["files_read"], stats["bytes_read"]


class Cache:
    """Objects under `cache_dir/files/`, linked into the workspace per `link_modes`."""

    def __init__(
        self,
        cache_dir: Path,
        state_dir: Path | None = None,
        link_modes: Sequence[LinkMode | str] = DEFAULT_LINK_MODES,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.link_modes: tuple[LinkMode, ...] = tuple(LinkMode(m) for m in link_modes)

    def _state(self) -> str | None:
        return str(self.state_dir) if self.state_dir is not None else None

    def hash(self, path: Path) -> HashInfo:
        """Hash a file or directory without inserting it (uses the stat index)."""
        return _native.hash_path(str(path), self._state())

    def hash_many(self, paths: Sequence[Path]) -> list[HashInfo]:
        """Hash many paths in parallel."""
        return _native.hash_paths([str(p) for p in paths], self._state())

    def insert(self, path: Path) -> HashInfo:
        """Put a file or directory into the cache and relink the workspace path to it."""
        modes = native_names(self.link_modes)
        return _native.cache_insert(str(path), str(self.cache_dir), self._state(), modes)

    def restore(
        self, info: HashInfo, dest: Path, link_modes: Sequence[LinkMode | str] | None = None
    ) -> LinkMode:
        """Materialise `info` at `dest` atomically; returns the link mode used."""
        modes = native_names(self.link_modes if link_modes is None else link_modes)
        used = _native.cache_restore(
            info["hash"], info["is_dir"], str(dest), str(self.cache_dir), modes, self._state()
        )
        return LinkMode(used)

    def restore_entries(
        self,
        info: HashInfo,
        dest: Path,
        paths: Sequence[str] | None = None,
        *,
        force: bool = False,
        link_modes: Sequence[LinkMode | str] | None = None,
    ) -> PartialRestore:
        """Restore entries of directory `info` into the existing directory `dest`, each
        atomically, leaving the others untouched: those at or below `paths` (relative to
        `dest`), or with `paths=None` every missing one. Modified entries are refused unless
        `force` or their content is in the cache."""
        modes = native_names(self.link_modes if link_modes is None else link_modes)
        return _native.cache_restore_entries(
            info["hash"],
            str(dest),
            str(self.cache_dir),
            modes,
            self._state(),
            None if paths is None else list(paths),
            force,
        )

    def contains(self, info: HashInfo) -> bool:
        """Whether the object (for a directory: its manifest and every file) is present."""
        return _native.cache_contains(str(self.cache_dir), info["hash"], info["is_dir"])

    def verify(self, hashes: Iterable[str] | None = None) -> VerifyReport:
        """Re-hash objects (the given ones, directories expanded, or all) and report problems."""
        wanted = None if hashes is None else list(hashes)
        return _native.cache_verify(str(self.cache_dir), wanted)

    def gc(
        self, roots: Iterable[tuple[str, bool]], *, grace_s: float, dry_run: bool = False
    ) -> GcReport:
        """Remove every object the (hash, is_dir) `roots` do not need and whose mtime and
        ctime are older than `grace_s` seconds (docs/formats.md, "Garbage collection");
        `dry_run`: report only. CacheCorruptError when a root's manifest is unreadable."""
        return _native.cache_gc(str(self.cache_dir), list(roots), grace_s, dry_run)

    def manifest(self, dir_hash: str) -> list[ManifestEntry]:
        """The entries of a cached directory."""
        return _native.read_manifest(str(self.cache_dir), dir_hash)
