"""pivot commit: record the workspace as it is (locks, cache, run cache) without running."""

from __future__ import annotations

import contextlib
import pathlib

import click

from pivot.cli import _common, _run_common


@click.command("commit")
@click.argument("stages", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@_common.cache_dir_option
@_run_common.jobs_option
@click.pass_context
def commit(
    click_ctx: click.Context,
    stages: tuple[str, ...],
    as_json: bool,
    cache_dir: pathlib.Path | None,
    jobs: int | None,
) -> None:
    """Record STAGES as they are on disk (no STAGES: every stage whose lock differs).

    Named stages are committed unconditionally. A stage with a missing output or dependency
    fails on its own; the others are still committed (exit 1).
    """
    from pivot.cli.output import CommitProgress
    from pivot.engine import commit as engine_commit
    from pivot.engine.context import load_context

    quiet = _common.quiet(click_ctx)
    ctx = load_context(cache_dir=cache_dir, check_missing=False)
    targets = _common.stage_names(ctx, stages)

    # A live line on a terminal, else a plain line every few seconds (cli/progress.py); none
    # with --json, whose reader wants only the result.
    show_progress = not quiet and not as_json
    with CommitProgress() if show_progress else contextlib.nullcontext() as meter:
        result = engine_commit.commit(ctx, targets or None, progress=meter, jobs=jobs)

    if as_json:
        _common.echo_json({"committed": list(result.committed), "failed": dict(result.failed)})
    elif not quiet:
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
