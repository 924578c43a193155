"""pivot metrics show|diff: the stages' `Metric` outputs, in the workspace or at git revisions."""

from __future__ import annotations

import click

from pivot.cli import _results_common as rc


@click.group("metrics")
def metrics() -> None:
    """Show and compare metric files (the stages' Metric outputs)."""


@metrics.command("show")
@click.argument("targets", nargs=-1)
@click.option(
    "-r",
    "--rev",
    "rev_names",
    multiple=True,
    help="Show the metrics at this git revision (repeatable; default: the workspace).",
)
@rc.table_options
def show(
    targets: tuple[str, ...],
    rev_names: tuple[str, ...],
    as_json: bool,
    markdown: bool,
    precision: int,
) -> None:
    """Show metric values. TARGETS: metric files, directories or stage names (default: all)."""
    from pivot.engine.context import load_context
    from pivot.results import metrics as m
    from pivot.results.revs import WORKSPACE

    rc.check_formats(as_json, markdown)
    loaded = load_context(check_missing=False)
    with rc.open_revisions(loaded.project) as revs:
        revisions = [revs.rev(n) for n in (rev_names or (WORKSPACE,))]
        wanted = [rc.target_path(loaded, t) for t in targets]
        known: dict[str, str] = {}
        for rev in revisions:
            known.update(m.metric_paths(loaded.pipeline, revs, rev))
        paths = list(m.select(dict(sorted(known.items())), wanted, set(loaded.pipeline.stages)))
        values = {rev.label: m.read_values(revs, rev, paths) for rev in revisions}

    rc.echo_values(
        values,
        ("Path", "Metric"),
        as_json=as_json,
        markdown=markdown,
        precision=precision,
        none_found="No metrics found",
        keep_empty=True,
    )


@metrics.command("diff")
@click.argument("revisions", nargs=-1)
@click.option("-a", "--all", "show_all", is_flag=True, help="Also show unchanged metrics.")
@rc.table_options
def diff(
    revisions: tuple[str, ...], show_all: bool, as_json: bool, markdown: bool, precision: int
) -> None:
    """Compare metrics between revisions: [A [B]] (default: HEAD vs the workspace).

    One revision compares it with the workspace. Only changed values unless --all.
    """
    from pivot.engine.context import load_context
    from pivot.results import metrics as m
    from pivot.results import table

    rc.check_formats(as_json, markdown)
    loaded = load_context(check_missing=False)
    with rc.open_revisions(loaded.project) as revs:
        old, new = rc.rev_pair(revs, revisions)
        paths = sorted(
            {
                *m.metric_paths(loaded.pipeline, revs, old),
                *m.metric_paths(loaded.pipeline, revs, new),
            }
        )
        a = m.read_values(revs, old, paths)
        b = m.read_values(revs, new, paths)
    rows = table.diff_rows(a, b, show_all=show_all)
    rc.echo_diff(
        rows,
        old,
        new,
        ("Path", "Metric"),
        kind="metrics",
        as_json=as_json,
        markdown=markdown,
        precision=precision,
    )
