"""Plain data shapes shared by the Rust core, storage, engine and CLI."""

from __future__ import annotations

from typing import Any, TypedDict


class HashInfo(TypedDict):
    hash: str  # 64 lowercase hex (blake3)
    size: int  # bytes; for a directory the sum of its files
    nfiles: int  # 1 for a file
    is_dir: bool


class ManifestEntry(TypedDict):
    path: str  # relative POSIX path inside the directory
    hash: str  # file content hash, or for a link: blake3 of the link target text
    size: int
    exec: bool
    link: str | None  # target of an in-tree symlink, else None


class GcReport(TypedDict):
    removed: list[tuple[str, int]]  # (hash, size) of each removed object, by hash
    bytes: int
    kept: int  # objects a root needs
    young: int  # unreferenced objects spared by the grace period


class VerifyReport(TypedDict):
    checked: int
    corrupt: list[str]  # object hashes whose bytes do not match their name
    missing: list[str]  # object hashes reachable but absent


class PartialRestore(TypedDict):
    restored: list[str]  # entries written, relative to the directory
    unchanged: int  # selected entries already as recorded
    refused: list[tuple[str, str]]  # (entry, why) left alone: modified and not in the cache
    not_found: list[str]  # requested sub-paths that name no entry


class OutEntry(TypedDict):
    hash: str
    size: int
    nfiles: int
    is_dir: bool
    cache: bool


class LockData(TypedDict):
    schema_version: int
    stage: str
    code: dict[str, str]  # fingerprint manifest: entry name -> hex digest
    params: dict[str, Any]  # effective params, JSON values
    deps: dict[str, str]  # project-relative POSIX path -> hash
    outs: dict[str, OutEntry]  # project-relative POSIX path -> entry
