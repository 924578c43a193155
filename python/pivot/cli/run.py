"""pivot run: run exactly the named stages, in the order given, no upstream resolution."""

from __future__ import annotations

import pathlib

import click

from pivot.cli import _run_common


@click.command("run")
@click.argument("stages", nargs=-1, required=True)
@click.option("--fail-fast", is_flag=True, help="Stop at the first failure (default: keep going).")
@_run_common.run_options
@click.pass_context
def run(
    click_ctx: click.Context,
    stages: tuple[str, ...],
    fail_fast: bool,
    all_pipelines: bool,
    cache_dir: pathlib.Path | None,
    jobs: int | None,
    allow_uncached_incremental: bool,
    checkout_missing: bool,
    no_commit: bool,
    as_json: bool,
    force: bool,
) -> None:
    """Run exactly STAGES, in the order given; their upstream stages are not run.

    Keeps going after a failure unless --fail-fast. Use 'pivot repro' to include dependencies.
    """
    ctx = _run_common.load_context(cache_dir, all_pipelines=all_pipelines)
    targets = _run_common.select_stages(ctx, stages)
    order = ctx.graph.exact(targets)

    _run_common.execute(
        click_ctx,
        ctx,
        order,
        force=force,
        keep_going=not fail_fast,
        no_commit=no_commit,
        jobs=jobs,
        checkout_missing=checkout_missing,
        allow_uncached_incremental=allow_uncached_incremental,
        as_json=as_json,
    )
