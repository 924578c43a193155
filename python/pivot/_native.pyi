"""Typed stub of the Rust core (`rust/lib.rs`). Kept in step by `python -m mypy.stubtest pivot._native`."""

from collections.abc import Sequence
from typing import Any

from pivot.types import GcReport, HashInfo, ManifestEntry, PartialRestore, VerifyReport

__all__ = [
    "Remote",
    "blake3_bytes",
    "cache_contains",
    "cache_gc",
    "cache_insert",
    "cache_restore",
    "cache_restore_entries",
    "cache_verify",
    "clean_stale_temps",
    "hash_file",
    "hash_files",
    "hash_path",
    "hash_paths",
    "insert_progress",
    "kill_point",
    "lock_decode",
    "lock_encode",
    "lock_read",
    "lock_write",
    "manifest_diff",
    "read_manifest",
    "remote_progress",
    "remove_tree",
    "write_atomic",
]

def blake3_bytes(data: bytes) -> str: ...
def hash_file(path: str) -> str: ...
def hash_files(paths: Sequence[str]) -> list[str]: ...
def hash_path(path: str, state_dir: str | None = None) -> HashInfo: ...
def hash_paths(paths: Sequence[str], state_dir: str | None = None) -> list[HashInfo]: ...
def read_manifest(cache_dir: str, dir_hash: str) -> list[ManifestEntry]: ...
def cache_insert(
    path: str, cache_dir: str, state_dir: str | None, link_modes: Sequence[str]
) -> HashInfo: ...
def cache_restore(
    dir_or_file_hash: str,
    is_dir: bool,
    dest: str,
    cache_dir: str,
    link_modes: Sequence[str],
    state_dir: str | None = None,
) -> str: ...
def cache_restore_entries(
    dir_hash: str,
    dest: str,
    cache_dir: str,
    link_modes: Sequence[str],
    state_dir: str | None = None,
    paths: Sequence[str] | None = None,
    force: bool = False,
) -> PartialRestore: ...
def cache_contains(cache_dir: str, hash: str, is_dir: bool) -> bool: ...
def cache_verify(cache_dir: str, hashes: Sequence[str] | None = None) -> VerifyReport: ...
def cache_gc(
    cache_dir: str, roots: Sequence[tuple[str, bool]], grace_s: float, dry_run: bool
) -> GcReport: ...
def insert_progress() -> tuple[int, int]: ...
def remove_tree(path: str) -> None: ...
def clean_stale_temps(dir: str) -> None: ...
def lock_encode(json_text: str) -> bytes: ...
def lock_decode(data: bytes, path: str) -> str: ...
def lock_read(path: str) -> str | None: ...
def lock_write(path: str, json_text: str) -> None: ...
def manifest_diff(
    cache_dir: str,
    old_hash: str | None,
    new_hash: str | None,
    new_dir: str | None = None,
    state_dir: str | None = None,
) -> dict[str, list[str]]: ...
def write_atomic(path: str, data: bytes, kill_point: str | None = None) -> None: ...
def kill_point(name: str) -> None: ...
def index_defer_saves(on: bool) -> None: ...
def _debug_stats() -> dict[
    str, int
]: ...  # test counters: files_read, bytes_read, index_hits, index_rebuilt

class Remote:
    """A configured remote (docs/remote.md); one per command."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        jobs: int = 4,
        cred_desc: str = ...,
        state_dir: str | None = None,
        max_retries: int | None = None,
        timeout_s: int | None = None,
    ) -> None: ...
    def push(self, cache_dir: str, items: Sequence[tuple[str, bool]]) -> dict[str, Any]: ...
    def fetch(
        self, cache_dir: str, items: Sequence[tuple[str, bool]], state_dir: str | None = None
    ) -> dict[str, Any]: ...
    def contains(
        self, cache_dir: str, items: Sequence[tuple[str, bool, int | None]]
    ) -> list[bool]: ...
    def push_runs(self, runs_dir: str, keys: Sequence[str]) -> tuple[int, int, list[str]]: ...
    def fetch_runs(self, runs_dir: str, keys: Sequence[str]) -> list[bool]: ...
    def bad_indexes(self) -> list[str]: ...
    def record_roots(
        self,
        clone: str,
        pushed: Sequence[tuple[str, bool]],
        roots: Sequence[tuple[str, bool]],
        complete: bool,
    ) -> str | None: ...
    def gc(
        self,
        cache_dir: str,
        roots: Sequence[tuple[str, bool]],
        *,
        grace_s: int,
        runs_s: int,
        records_s: int,
        repack_ratio: float,
        dry_run: bool,
        holder: str,
        lease_s: int,
        break_lock: bool,
    ) -> dict[str, Any]: ...

def remote_progress() -> tuple[int, int, int, int]: ...
