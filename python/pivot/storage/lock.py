"""Per-stage lock files (`.pivot/stages/<stage>.lock`): thin policy over `pivot._native`.

Encoding, validation and the durable write live in Rust (`rust/lock.rs`, docs/formats.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import orjson

from pivot import _native, naming
from pivot.exceptions import UnsafePathError
from pivot.types import LockData


def lock_path(stages_dir: Path, stage: str) -> Path:
    """`<stages_dir>/<stage>.lock` (also the name of a stage's execution lock under
    `.pivot/tmp/locks/`); UnsafePathError if `stage` is not a valid stage name."""
    return stages_dir / f"{naming.check_stage_name(stage, UnsafePathError)}.lock"


def read_lock(path: Path) -> LockData | None:
    """The lock at `path`; None if absent. LockFileError (naming file and field) if malformed."""
    text = _native.lock_read(str(path))
    if text is None:
        return None
    return cast(LockData, orjson.loads(text))


def write_lock(path: Path, data: LockData) -> None:
    """Validate, encode canonically and write `data` durably to `path`."""
    _native.lock_write(str(path), orjson.dumps(data).decode())


def decode_lock(data: bytes, label: str) -> LockData:
    """Validate lock bytes (e.g. read from git) exactly as `read_lock` does; errors name
    `label` (`<rev>:.pivot/stages/<stage>.lock`) and the field."""
    return cast(LockData, orjson.loads(_native.lock_decode(data, label)))
