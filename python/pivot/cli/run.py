"""pivot run: run exactly the named stages, in the order given, no upstream resolution."""

from __future__ import annotations

import pathlib

import click

from pivot.cli import _live, _run_common


@click.command("run")
@click.argument("stages", nargs=-1, required=True)
@click.option("--fail-fast", is_flag=True, help="Stop at the first failure (default: keep going).")
@_run_common.run_options
@_live.display_options
@click.pass_context
def run(
    click_ctx: click.Context,
    stages: tuple[str, ...],
    fail_fast: bool,
    cache_dir: pathlib.Path | None,
    jobs: int | None,
    allow_uncached_incremental: bool,
    checkout_missing: bool,
    no_commit: bool,
    as_json: bool,
    force: bool,
    show_output: bool,
    display: str | None,
    tui_log: pathlib.Path | None,
) -> None:
    """Run exactly STAGES, in the order given; their upstream stages are not run.

    Keeps going after a failure unless --fail-fast. Use 'pivot repro' to include dependencies.
    """
    _live.check_usage(
        watch=False, debounce=None, serve=False, display=display, as_json=as_json, dry_run=False
    )
    quiet = _run_common.global_flag(click_ctx, "quiet")
    shown = _live.resolve_display(display, as_json, quiet)
    ctx = _run_common.load_context(cache_dir)
    targets = _run_common.stage_list(stages)
    _run_common.validate_stages_exist(ctx, targets)
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
        show_output=show_output,
        display=shown,
        tui_log=tui_log,
    )
