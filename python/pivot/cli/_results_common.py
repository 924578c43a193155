"""Options and helpers shared by the result commands (`metrics`, `params`, `plots`, `diff`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pivot.engine.context import Context
    from pivot.results.revs import Rev, Revisions
    from pivot.results.table import DiffRow

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_OLD = "HEAD"


def table_options(func: F) -> F:
    """`--json`, `--md`, `--precision` (metrics and params)."""
    from pivot.results.table import DEFAULT_PRECISION

    options = [
        click.option(
            "--precision",
            type=click.IntRange(min=0),
            default=DEFAULT_PRECISION,
            show_default=True,
            help="Round floats to N digits after the decimal point (tables only).",
        ),
        click.option("--md", "markdown", is_flag=True, help="Print a Markdown table."),
        click.option("--json", "as_json", is_flag=True, help="Print a JSON document."),
    ]
    for option in options:
        func = option(func)
    return func


def check_formats(as_json: bool, markdown: bool) -> None:
    if as_json and markdown:
        raise click.UsageError("--json and --md cannot be used together")


def rev_pair(revs: Revisions, names: Sequence[str]) -> tuple[Rev, Rev]:
    """`[A [B]]`: none -> HEAD vs workspace; A -> A vs workspace; A B -> A vs B."""
    from pivot.results.revs import WORKSPACE

    if len(names) > 2:
        raise click.UsageError(f"at most two revisions, got {len(names)}: {' '.join(names)}")
    old = names[0] if names else DEFAULT_OLD
    new = names[1] if len(names) > 1 else WORKSPACE
    return revs.rev(old), revs.rev(new)


def open_revisions(project: Any) -> Revisions:
    from pivot.results.revs import Revisions

    return Revisions(project)


def target_path(loaded: Context, target: str) -> str:
    """A stage name stays as is; anything else is a path relative to the cwd, made
    project-relative."""
    from pivot.results.revs import project_rel

    if target in loaded.pipeline.stages:
        return target
    return project_rel(loaded.project, target, loaded.cwd)


def echo_values(
    values: dict[str, dict[str, dict[str, Any] | None]],
    columns: tuple[str, str],
    *,
    as_json: bool,
    markdown: bool,
    precision: int,
    none_found: str,
    keep_empty: bool = False,
) -> None:
    """`show`: {revision: {group: {key: value}}} as JSON or as a table with one column per
    revision; `keep_empty` gives a group without values (a missing file) a row of its own."""
    from pivot.cli import _common
    from pivot.results import table

    if as_json:
        _common.echo_json(values)
        return
    keys: dict[str, set[str]] = {}
    for per_rev in values.values():
        for group, vals in per_rev.items():
            keys.setdefault(group, set()).update(vals or ())
    rows = []
    for group, key in sorted(
        (g, k) for g, ks in keys.items() for k in (ks or ({""} if keep_empty else set()))
    ):
        cells = []
        for per_rev in values.values():
            vals = per_rev.get(group)
            cells.append(table.fmt(vals[key] if vals and key in vals else table.MISSING, precision))
        rows.append([group, key, *cells])
    if not rows:
        _common.info(none_found)
        return
    table.render([*columns, *values], rows, markdown=markdown)


def echo_diff(
    rows: Sequence[DiffRow],
    old: Rev,
    new: Rev,
    columns: tuple[str, str],
    *,
    kind: str,
    as_json: bool,
    markdown: bool,
    precision: int,
) -> None:
    """`diff`: changed values (`table.diff_rows`) as JSON under `kind` or as a table."""
    from pivot.cli import _common
    from pivot.results import table

    if as_json:
        _common.echo_json({"old": old.label, "new": new.label, kind: table.diff_document(rows)})
        return
    if not rows:
        _common.info(f"No {kind[:-1]} changes between {old.label} and {new.label}")
        return
    cells = [
        [
            r.group,
            r.key,
            table.fmt(r.old, precision),
            table.fmt(r.new, precision),
            table.fmt_delta(r, precision),
        ]
        for r in rows
    ]
    table.render([*columns, old.label, new.label, "Change"], cells, markdown=markdown)
