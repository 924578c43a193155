"""The run cache: (code, params, deps, output specs) -> output hashes, one JSON file per key.

Entries live at `<cache_dir>/runs/<key[:2]>/<key[2:]>` as `{"stage": ..., "outs": {path:
OutEntry}}`, written with the durable-write helper. An unreadable entry is ignored (a miss):
the run cache is an optimisation and never a source of truth on its own — a hit is used only
when every object it names is present in the cache.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from pivot import _native
from pivot.storage.files import clean_stale_temps, write_atomic
from pivot.types import OutEntry

logger = logging.getLogger(__name__)

_HEX = frozenset("0123456789abcdef")
_MAX_ENTRY_BYTES = 64 * 1024 * 1024


def run_key(
    code: Mapping[str, str],
    params: Mapping[str, Any],
    deps: Mapping[str, str],
    outs: Sequence[tuple[str, str, bool]],
) -> str:
    """blake3 of the canonical JSON of the stage's inputs and output specs."""
    doc = {
        "code": dict(code),
        "params": dict(params),
        "deps": dict(deps),
        "outs": [list(o) for o in sorted(outs)],
    }
    return _native.blake3_bytes(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))


def entry_path(runs_dir: Path, key: str) -> Path:
    return runs_dir / key[:2] / key[2:]


def _valid_entry(doc: Any) -> dict[str, OutEntry] | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("outs"), dict):
        return None
    outs: dict[str, OutEntry] = {}
    for path, e in doc["outs"].items():
        if not isinstance(path, str) or not isinstance(e, dict):
            return None
        h = e.get("hash")
        if not isinstance(h, str) or len(h) != 64 or not set(h) <= _HEX:
            return None
        try:
            outs[path] = OutEntry(
                hash=h,
                size=int(e["size"]),
                nfiles=int(e["nfiles"]),
                is_dir=bool(e["is_dir"]),
                cache=bool(e["cache"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
    return outs


def lookup(runs_dir: Path, key: str) -> dict[str, OutEntry] | None:
    """The outputs recorded for `key`, or None (absent or unreadable)."""
    path = entry_path(runs_dir, key)
    try:
        if path.stat().st_size > _MAX_ENTRY_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        logger.debug("ignoring unreadable run-cache entry %s", path)
        return None
    return _valid_entry(doc)


def entries(runs_dir: Path) -> Iterator[tuple[str, Path, float]]:
    """(key, path, mtime) of every entry (temps and stray names skipped)."""
    try:
        shards = [e for e in os.scandir(runs_dir) if len(e.name) == 2 and e.is_dir()]
    except FileNotFoundError:
        return
    for shard in sorted(shards, key=lambda e: e.name):
        for e in sorted(os.scandir(shard.path), key=lambda e: e.name):
            key = shard.name + e.name
            if len(key) != 64 or not set(key) <= _HEX:
                continue
            try:
                mtime = e.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            yield key, Path(e.path), mtime


def remove(path: Path) -> None:
    """Remove one entry (`pivot gc`); kill point `gc_run` after it. Gone already: fine."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    _native.kill_point("gc_run")


def write(runs_dir: Path, key: str, stage: str, outs: Mapping[str, OutEntry]) -> None:
    """Record `outs` under `key` (durably; kill point `runcache_write`)."""
    path = entry_path(runs_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"stage": stage, "outs": {p: dict(e) for p, e in outs.items()}}
    data = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    write_atomic(path, data, "runcache_write")
    clean_stale_temps(path.parent)  # an earlier crash's temp in this shard
