"""The stat index (docs/formats.md, "Stat index"): Rust keeps it; this is its save policy."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from pivot import _native
from pivot.exceptions import PivotError

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def deferred_saves() -> Iterator[None]:
    """Within the block, each stat index is written once, at the end, instead of after every
    hashing call. The final write is best effort: the index only saves time, so failing to
    save it is logged (debug) and never fails the command."""
    _native.index_defer_saves(True)
    try:
        yield
    finally:
        try:
            _native.index_defer_saves(False)
        except (OSError, PivotError) as exc:
            logger.debug("could not save the stat index: %s", exc)
