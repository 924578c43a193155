"""pivot repro: run stages and everything upstream of them, in DAG order."""

from __future__ import annotations

import json
import pathlib
from typing import TYPE_CHECKING

import click

from pivot.cli import _common, _run_common

if TYPE_CHECKING:
    from pivot.engine.context import Context


@click.command("repro")
@click.argument("stages", nargs=-1)
@click.option("-n", "--dry-run", is_flag=True, help="Show what would run, run nothing.")
@click.option("-e", "--explain", is_flag=True, help="Show why each stage would run, run nothing.")
@click.option(
    "--allow-missing",
    is_flag=True,
    help="With --dry-run: do not fail on missing dependency files.",
)
@_run_common.run_options(keep_going=False, watch=True, pull=True)
@click.pass_context
def repro(
    click_ctx: click.Context,
    stages: tuple[str, ...],
    dry_run: bool,
    explain: bool,
    allow_missing: bool,
    run_args: _run_common.RunArgs,
) -> None:
    """Run STAGES and everything upstream of them (no STAGES: the whole pipeline).

    Unchanged stages are skipped or restored from the cache. Stops at the first failure
    unless --keep-going. With --watch, runs again after each change until Ctrl-C.
    """
    from pivot.engine.context import load_context

    if allow_missing and not dry_run:
        raise click.UsageError("--allow-missing can only be used with --dry-run")
    if run_args.watch and (dry_run or explain):
        raise click.UsageError("--watch cannot be combined with --dry-run or --explain")
    if run_args.watch:
        from pivot.cli import _live
        from pivot.project import open_project

        project = open_project(pathlib.Path.cwd(), run_args.cache_dir)
        if run_args.executor is None and project.config.executor is not None:
            raise click.UsageError(
                f"core.executor is {project.config.executor}, but --watch runs stages "
                "locally: pass --executor local"
            )
        if run_args.pull:
            run_args = _run_common.with_pull(run_args, project)

        # The loop loads (and reloads) the pipeline itself and expands STAGES each time.
        _live.watch(
            click_ctx,
            cwd=pathlib.Path.cwd(),
            targets=list(dict.fromkeys(stages)),
            run_args=run_args,
        )
        return

    if not (dry_run or explain):
        _run_common.pull_missing_tracked(run_args, stages)
    ctx = load_context(
        cache_dir=run_args.cache_dir,
        check_missing=not allow_missing,
        all_pipelines=run_args.all_pipelines,
    )
    order = ctx.graph.order(_common.stage_names(ctx, stages) or None)

    if dry_run or explain:
        _show_plan(ctx, order, run_args, allow_missing=allow_missing, explain=explain)
        return
    _run_common.execute(click_ctx, ctx, order, _run_common.with_pull(run_args, ctx.project))


def _show_plan(
    ctx: Context,
    order: list[str],
    run_args: _run_common.RunArgs,
    *,
    allow_missing: bool,
    explain: bool,
) -> None:
    """`--dry-run` / `--explain`: the decisions (docs/architecture.md, "Engine"), nothing run."""
    from pivot.engine import plan

    decisions = plan.decide(ctx, order, force=run_args.options.force, allow_missing=allow_missing)
    ordered = [decisions[name] for name in order if name in decisions]
    if run_args.as_json:
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
        _common.echo_explain(ordered)
        return
    click.echo("Would run:")
    for d in ordered:
        click.echo(f"  {d.stage}: {_common.decision_status(d.will_run)} ({d.reason})")
