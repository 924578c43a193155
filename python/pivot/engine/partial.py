"""Restoring part of a directory output (`pivot checkout dir/file`, `checkout --only-missing`).

The entries are restored one by one from the output's manifest (`Cache.restore_entries`, in
Rust: `rust/cache/restore/partial.rs`); the other files of the directory keep their inode and mtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pivot.exceptions import PivotError
from pivot.types import HashInfo

if TYPE_CHECKING:
    from pivot.engine.context import Context
    from pivot.storage.links import LinkMode


def restore_entries(
    ctx: Context,
    rel: str,
    info: HashInfo,
    sub: str | None,
    force: bool,
    link_modes: Sequence[LinkMode] | None,
) -> list[tuple[str, str, str]]:
    """[(project path, outcome, message)] for the entries of directory output `rel` at or below
    `sub` (None: every missing entry); outcome restored/skipped/refused/missing."""
    shown = rel if sub is None else f"{rel}/{sub}"
    try:
        r = ctx.cache.restore_entries(
            info,
            ctx.abspath(rel),
            None if sub is None else [sub],
            force=force,
            link_modes=link_modes,
        )
    except (PivotError, OSError) as e:
        return [(shown, "missing", f"{shown}: {e}")]
    out = [(f"{rel}/{e}", "restored", "") for e in r["restored"]]
    for entry, why in r["refused"]:
        path = f"{rel}/{entry}"
        out.append((path, "refused", f"{path}: {why}"))
    for missing in r["not_found"]:
        path = f"{rel}/{missing}"
        out.append((path, "missing", f"{path}: not in the recorded version of {rel}"))
    if not out:
        out.append((shown, "skipped", ""))
    return out
