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
    from pivot.cli import _common
    from pivot.engine.context import load_context
    from pivot.results import params as p
    from pivot.results import table
    from pivot.results.revs import WORKSPACE

    rc.check_formats(as_json, markdown)
    loaded = load_context(check_missing=False)
    targets = list(dict.fromkeys(stages))
    with rc.open_revisions(loaded.project) as revs:
        values = {
            rev.label: p.read_params(loaded.pipeline, revs, rev, targets)
            for rev in (revs.rev(n) for n in (rev_names or (WORKSPACE,)))
        }
    if as_json:
        _common.echo_json(values)
        return
    keys = sorted({(st, k) for per in values.values() for st, v in per.items() for k in v or ()})
    rows = []
    for st, key in keys:
        cells = []
        for per in values.values():
            v = per.get(st)
            cells.append(table.fmt(v[key] if v and key in v else table.MISSING, precision))
        rows.append([st, key, *cells])
    if not rows:
        _common.info("No params found")
        return
    table.render(["Stage", "Param", *values], rows, markdown=markdown)


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
    from pivot.cli import _common
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
    if as_json:
        _common.echo_json({"old": old.label, "new": new.label, "params": table.diff_document(rows)})
        return
    if not rows:
        _common.info(f"No param changes between {old.label} and {new.label}")
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
    table.render(["Stage", "Param", old.label, new.label, "Change"], cells, markdown=markdown)
