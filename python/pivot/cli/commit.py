"""pivot commit: record the workspace as it is (locks, cache, run cache) without running."""

from __future__ import annotations

import click

from pivot.cli import _run_common


@click.command("commit")
@click.argument("stages", nargs=-1)
@click.pass_context
def commit(click_ctx: click.Context, stages: tuple[str, ...]) -> None:
    """Record STAGES as they are on disk (no STAGES: every stage whose lock differs).

    Named stages are committed unconditionally. A stage with a missing output or dependency
    fails on its own; the others are still committed (exit 1).
    """
    from pivot.engine import commit as engine_commit

    quiet = _run_common.global_flag(click_ctx, "quiet")
    ctx = _run_common.load_context(check_missing=False)
    targets = _run_common.stage_list(stages)
    _run_common.validate_stages_exist(ctx, targets)

    # A live line on a terminal, else a plain line every few seconds (engine/progress.py).
    result = engine_commit.commit(ctx, targets or None, progress=not quiet)

    if not quiet:
        if result.committed:
            click.echo(f"Committed {len(result.committed)} stage(s):")
            for name in result.committed:
                click.echo(f"  {name}")
        elif not result.failed:
            click.echo("Nothing to commit")
    for name, cause in result.failed.items():
        click.echo(f"Error: {name}: {cause}", err=True)
    if result.failed:
        click_ctx.exit(1)
