"""Stage selection on the command line: names, matrix groups and shell-style patterns.

One expansion for `repro`, `run`, `status`, `list` (and `commit`, `verify`), so a name means the
same stages everywhere (docs/cli.md, "Selecting stages").
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from pivot.exceptions import UnknownStageError

_GLOB_CHARS = frozenset("*?[")


def is_pattern(name: str) -> bool:
    return any(c in _GLOB_CHARS for c in name)


def expand_stages(requested: Iterable[str], known: Sequence[str]) -> list[str]:
    """The stages `requested` names, in the order asked, without repeats.

    - a stage name is itself (a stage literally named `train` wins over `train@…` variants);
    - a matrix base `train` that is not a stage expands to every `train@…` variant;
    - a pattern (`train@*`, `*@small`, `eval?`) expands to every stage it matches
      (`fnmatch`, case-sensitive);
    variants and matches come in registration order. A name or pattern matching nothing is an
    UnknownStageError listing close matches.
    """
    from pivot.graph import check_stage_names, suggest_stages

    known_set = set(known)
    selected: list[str] = []
    unknown: list[str] = []
    unmatched: list[str] = []
    for name in dict.fromkeys(requested):
        if name in known_set:
            selected.append(name)
            continue
        if is_pattern(name):
            matches = [k for k in known if fnmatch.fnmatchcase(k, name)]
        else:
            matches = [k for k in known if k.startswith(name + "@")]
        if matches:
            selected += matches
        else:
            (unmatched if is_pattern(name) else unknown).append(name)
    if unknown:
        check_stage_names(unknown, known)  # the usual "unknown stage … (did you mean …?)"
    if unmatched:
        parts = []
        for pattern in unmatched:
            probe = "".join(c for c in pattern if c not in _GLOB_CHARS).strip("@")
            hints = suggest_stages(probe, known) if probe else []
            hint = f" (did you mean {' or '.join(repr(h) for h in hints)}?)" if hints else ""
            parts.append(f"{pattern!r}{hint}")
        raise UnknownStageError(
            f"no stage matches {', '.join(parts)}; run 'pivot list' to see the stages"
        )
    return list(dict.fromkeys(selected))
