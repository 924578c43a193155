"""pivot run: run exactly the named stages, in the order given, no upstream resolution."""

from __future__ import annotations

import click

from pivot.cli import _common, _run_common


@click.command("run")
@click.argument("stages", nargs=-1, required=True)
@_run_common.run_options(keep_going=True)
@click.pass_context
def run(click_ctx: click.Context, stages: tuple[str, ...], run_args: _run_common.RunArgs) -> None:
    """Run exactly STAGES, in the order given; their upstream stages are not run.

    Keeps going after a failure unless --fail-fast. Use 'pivot repro' to include dependencies.
    """
    from pivot.engine.context import load_context

    ctx = load_context(cache_dir=run_args.cache_dir, all_pipelines=run_args.all_pipelines)
    order = ctx.graph.exact(_common.stage_names(ctx, stages))
    _run_common.execute(click_ctx, ctx, order, run_args)
