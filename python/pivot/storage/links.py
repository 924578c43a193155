"""Link modes: how a cache object becomes a workspace path (docs/formats.md, "Cache objects
and link modes"). An ordered list is tried per operation; the first mode that works is used
for the whole operation."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class LinkMode(StrEnum):
    """A str enum: members compare equal to, and format as, the names the Rust core takes."""

    REFLINK = "reflink"
    HARDLINK = "hardlink"
    COPY = "copy"


DEFAULT_LINK_MODES: tuple[LinkMode, ...] = (LinkMode.REFLINK, LinkMode.HARDLINK, LinkMode.COPY)


def parse_link_modes(names: Iterable[object]) -> tuple[LinkMode, ...]:
    """An ordered, non-empty list of mode names; ValueError naming an unknown or repeated one."""
    modes: list[LinkMode] = []
    known = [m.value for m in LinkMode]
    for name in names:
        if not isinstance(name, str) or name not in known:
            raise ValueError(f"{name!r} is not one of {', '.join(known)}")
        mode = LinkMode(name)
        if mode in modes:
            raise ValueError(f"{mode.value!r} is listed twice")
        modes.append(mode)
    if not modes:
        raise ValueError("no link mode given")
    return tuple(modes)


def native_names(modes: Iterable[LinkMode | str]) -> list[str]:
    """The plain strings the Rust core takes (a str passes only if it names a mode)."""
    return [LinkMode(m).value for m in modes]
