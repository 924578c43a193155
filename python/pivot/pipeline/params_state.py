"""The parsed `params.yaml`, kept in `.pivot/state/params.json` under the file's stat.

Disposable state like the fingerprint cache: a missing, corrupt or stale file means "parse the
YAML". An entry is written only when the file's mtime and ctime are more than `RACY_NS` older
than the moment it was stat'ed (a write in the same timestamp tick could otherwise keep the
stat), and only for data that JSON gives back unchanged (no dates, sets, binary, non-string
keys or non-finite floats).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

FILE_NAME = "params.json"
RACY_NS = 2_000_000_000
_VERSION = 1


def load(state_dir: Path, key: tuple[int, ...]) -> dict[str, Any] | None:
    """The cached data for a params.yaml with stat `key`, or None."""
    try:
        rec = json.loads((state_dir / FILE_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("version") != _VERSION:
        return None
    if rec.get("stat") != list(key) or not isinstance(rec.get("data"), dict):
        return None
    data: dict[str, Any] = rec["data"]
    return data


def save(state_dir: Path, key: tuple[int, ...], data: dict[str, Any]) -> None:
    """Remember `data` for stat `key` (best effort: never raises)."""
    if not _plain(data) or not state_dir.parent.is_dir():
        return  # not JSON-exact, or not a pivot project (no `.pivot/`): nothing to create
    text = json.dumps({"version": _VERSION, "stat": list(key), "data": data})
    # Imported only when params changed: a no-op never writes.
    from pivot.storage.files import write_atomic

    try:
        state_dir.mkdir(exist_ok=True)
        write_atomic(state_dir / FILE_NAME, text.encode())
    except OSError:
        pass


def _plain(value: Any) -> bool:
    """Whether JSON round-trips `value` to an equal value of the same types."""
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False
