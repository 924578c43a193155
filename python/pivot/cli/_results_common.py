"""Options and helpers shared by the result commands (`metrics`, `params`, `plots`, `diff`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pivot.engine.context import Context
    from pivot.results.revs import Rev, Revisions

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
