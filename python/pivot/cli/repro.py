"""pivot repro: run stages and everything upstream of them, in DAG order."""

from __future__ import annotations

import json
import pathlib

import click

from pivot.cli import _run_common


@click.command("repro")
@click.argument("stages", nargs=-1)
@click.option("-n", "--dry-run", is_flag=True, help="Show what would run, run nothing.")
@click.option("-e", "--explain", is_flag=True, help="Show why each stage would run, run nothing.")
@click.option(
    "-k",
    "--keep-going",
    is_flag=True,
    help="After a failure, keep running stages that do not depend on it.",
)
@click.option(
    "--allow-missing",
    is_flag=True,
    help="With --dry-run: do not fail on missing dependency files.",
)
@_run_common.run_options
@click.pass_context
def repro(
    click_ctx: click.Context,
    stages: tuple[str, ...],
    dry_run: bool,
    explain: bool,
    keep_going: bool,
    allow_missing: bool,
    all_pipelines: bool,
    cache_dir: pathlib.Path | None,
    jobs: int | None,
    allow_uncached_incremental: bool,
    checkout_missing: bool,
    no_commit: bool,
    as_json: bool,
    force: bool,
) -> None:
    """Run STAGES and everything upstream of them (no STAGES: the whole pipeline).

    Unchanged stages are skipped or restored from the cache. Stops at the first failure
    unless --keep-going.
    """
    if allow_missing and not dry_run:
        raise click.UsageError("--allow-missing can only be used with --dry-run")

    ctx = _run_common.load_context(
        cache_dir, check_missing=not allow_missing, all_pipelines=all_pipelines
    )
    targets = _run_common.select_stages(ctx, stages)
    order = ctx.graph.order(targets or None)

    if dry_run or explain:
        _show_plan(
            ctx, order, force=force, allow_missing=allow_missing, as_json=as_json, explain=explain
        )
        return

    _run_common.execute(
        click_ctx,
        ctx,
        order,
        force=force,
        keep_going=keep_going,
        no_commit=no_commit,
        jobs=jobs,
        checkout_missing=checkout_missing,
        allow_uncached_incremental=allow_uncached_incremental,
        as_json=as_json,
    )


def _show_plan(
    ctx: object,
    order: list[str],
    *,
    force: bool,
    allow_missing: bool,
    as_json: bool,
    explain: bool,
) -> None:
    """`--dry-run` / `--explain`: the decisions of spec §5, nothing executed."""
    from pivot.engine import plan

    decisions = plan.decide(ctx, order, force=force, allow_missing=allow_missing)  # type: ignore[arg-type]
    ordered = [decisions[name] for name in order if name in decisions]
    if as_json:
        stages: dict[str, dict[str, object]] = {}
        for d in ordered:
            entry: dict[str, object] = {"would_run": d.will_run, "reason": d.reason}
            if explain:
                entry["details"] = list(d.details)
            stages[d.stage] = entry
        click.echo(json.dumps({"stages": stages}, indent=2))
        return
    if not ordered:
        click.echo("No stages to run")
        return
    if explain:
        _run_common.echo_explain(ordered)
        return
    click.echo("Would run:")
    for d in ordered:
        click.echo(f"  {d.stage}: {_run_common.decision_status(d.will_run)} ({d.reason})")
