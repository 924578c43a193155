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
    from pivot.cli import _common
    from pivot.engine.context import load_context
    from pivot.results import metrics as m
    from pivot.results import table
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

    if as_json:
        _common.echo_json(values)
        return
    keys: dict[str, set[str]] = {}
    for per_rev in values.values():
        for path, vals in per_rev.items():
            keys.setdefault(path, set()).update(vals or ())
    rows = []
    for path, key in sorted((p, k) for p, ks in keys.items() for k in (ks or {""})):
        cells = []
        for per_rev in values.values():
            vals = per_rev.get(path)
            cells.append(table.fmt(vals[key] if vals and key in vals else table.MISSING, precision))
        rows.append([path, key, *cells])
    if not rows:
        _common.info("No metrics found")
        return
    table.render(["Path", "Metric", *values], rows, markdown=markdown)


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
    from pivot.cli import _common
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
    if as_json:
        _common.echo_json(
            {"old": old.label, "new": new.label, "metrics": table.diff_document(rows)}
        )
        return
    if not rows:
        _common.info(f"No metric changes between {old.label} and {new.label}")
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
    table.render(["Path", "Metric", old.label, new.label, "Change"], cells, markdown=markdown)
