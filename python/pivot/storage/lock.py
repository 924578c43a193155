"""Per-stage lock files (`.pivot/stages/<stage>.lock`): thin policy over `pivot._native`.

Encoding, validation and the durable write live in Rust (`rust/lock.rs`, docs/formats.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import orjson

from pivot import _native
from pivot.exceptions import UnsafePathError
from pivot.types import LockData


def lock_path(stages_dir: Path, stage: str) -> Path:
    """The lock file of `stage` inside `stages_dir`."""
    if not stage or stage in (".", "..") or "/" in stage or "\0" in stage:
        raise UnsafePathError(f"{stages_dir}: invalid stage name for a lock file: {stage!r}")
    return stages_dir / f"{stage}.lock"


def read_lock(path: Path) -> LockData | None:
    """The lock at `path`; None if absent. LockFileError (naming file and field) if malformed."""
    text = _native.lock_read(str(path))
    if text is None:
        return None
    return cast(LockData, orjson.loads(text))


def write_lock(path: Path, data: LockData) -> None:
    """Validate, encode canonically and write `data` durably to `path`."""
    _native.lock_write(str(path), orjson.dumps(data).decode())
