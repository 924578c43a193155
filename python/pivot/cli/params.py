"""pivot params show|diff: stage parameters in the workspace or as locks recorded them."""

from __future__ import annotations

import click

from pivot.cli import _results_common as rc


@click.group("params")
def params() -> None:
    """Show and compare stage parameters."""


@params.command("show")
@click.argument("stages", nargs=-1)
@click.option(
    "-r",
    "--rev",
    "rev_names",
    multiple=True,
    help="Show the params recorded at this git revision (repeatable; default: the workspace).",
)
@rc.table_options
def show(
    stages: tuple[str, ...],
    rev_names: tuple[str, ...],
    as_json: bool,
    markdown: bool,
    precision: int,
) -> None:
    """Show effective params of STAGES (default: every stage with params).

    The workspace shows what the next run would use; a revision shows what its locks recorded.
    """
    from pivot.engine.context import load_context
    from pivot.results import params as p
    from pivot.results.revs import WORKSPACE

    rc.check_formats(as_json, markdown)
    loaded = load_context(check_missing=False)
    targets = list(dict.fromkeys(stages))
    with rc.open_revisions(loaded.project) as revs:
        values = {
            rev.label: p.read_params(loaded.pipeline, revs, rev, targets)
            for rev in (revs.rev(n) for n in (rev_names or (WORKSPACE,)))
        }
    rc.echo_values(
        values,
        ("Stage", "Param"),
        as_json=as_json,
        markdown=markdown,
        precision=precision,
        none_found="No params found",
    )


@params.command("diff")
@click.argument("revisions", nargs=-1)
@click.option("-a", "--all", "show_all", is_flag=True, help="Also show unchanged params.")
@click.option(
    "-s",
    "--stage",
    "stages",
    multiple=True,
    help="Only this stage (repeatable); a revision without its lock is an error.",
)
@rc.table_options
def diff(
    revisions: tuple[str, ...],
    show_all: bool,
    stages: tuple[str, ...],
    as_json: bool,
    markdown: bool,
    precision: int,
) -> None:
    """Compare params between revisions: [A [B]] (default: HEAD vs the workspace).

    One revision compares it with the workspace. Only changed values unless --all.
    """
    from pivot.engine.context import load_context
    from pivot.results import params as p
    from pivot.results import table

    rc.check_formats(as_json, markdown)
    loaded = load_context(check_missing=False)
    targets = list(dict.fromkeys(stages))
    with rc.open_revisions(loaded.project) as revs:
        old, new = rc.rev_pair(revs, revisions)
        a = p.read_params(loaded.pipeline, revs, old, targets)
        b = p.read_params(loaded.pipeline, revs, new, targets)
    rows = table.diff_rows(a, b, show_all=show_all)
    rc.echo_diff(
        rows,
        old,
        new,
        ("Stage", "Param"),
        kind="params",
        as_json=as_json,
        markdown=markdown,
        precision=precision,
    )
