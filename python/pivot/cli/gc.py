"""pivot gc: remove cache objects and run-cache entries that nothing needs (docs/cli.md)."""

from __future__ import annotations

import pathlib

import click

from pivot.cli import _common


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option(
    "--rev",
    "revs",
    multiple=True,
    metavar="REV",
    help="Keep the workspace and exactly these revisions (repeatable), not every branch/tag.",
)
@click.option("--all-commits", is_flag=True, help="Keep what any commit of the repository needs.")
@click.option("-w", "--workspace-only", is_flag=True, help="Keep only what the workspace needs.")
@click.option(
    "--run-cache-days",
    type=click.FloatRange(min=0),
    default=None,
    help="Keep run-cache entries this young (default: config gc.run_cache_days, 30).",
)
@click.option(
    "--grace-minutes",
    type=click.FloatRange(min=0),
    default=None,
    help="Never remove objects this young (default: config gc.grace_minutes, 60).",
)
@_common.cache_dir_option
@click.pass_context
def gc(
    click_ctx: click.Context,
    dry_run: bool,
    as_json: bool,
    revs: tuple[str, ...],
    all_commits: bool,
    workspace_only: bool,
    run_cache_days: float | None,
    grace_minutes: float | None,
    cache_dir: pathlib.Path | None,
) -> None:
    """Remove cached objects that neither the workspace nor any branch or tag needs.

    Roots: the workspace's locks and .pvt files, those of HEAD and of every local branch,
    tag and remote-tracking branch (read from git, no checkout), and the outputs of
    run-cache entries younger than the retention. Objects younger than the grace period
    are never removed.
    """
    from pivot.cli.output import human_bytes
    from pivot.engine import gc as engine_gc
    from pivot.project import open_project

    quiet = _common.quiet(click_ctx)
    project = open_project(cache_dir=cache_dir)
    opts = engine_gc.GcOptions(
        revs=revs,
        all_commits=all_commits,
        workspace_only=workspace_only,
        dry_run=dry_run,
        run_cache_days=run_cache_days,
        grace_minutes=grace_minutes,
    )
    result = engine_gc.gc(project, opts)
    if as_json:
        _common.echo_json(result.to_json(), indent=True)
        return
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)
    if quiet:
        return
    if dry_run:
        for h, size in result.removed:
            click.echo(f"would remove {h} ({human_bytes(size)})")
    verb = "Would remove" if dry_run else "Removed"
    runs = "run-cache entries to remove" if dry_run else "run-cache entries removed"
    click.echo(
        f"{verb} {len(result.removed)} object(s) ({human_bytes(result.bytes)}); "
        f"kept {result.kept} needed by {len(result.revisions)} revision(s) "
        f"(workspace included) and {result.runs_kept} run-cache entries"
        + (f", {result.young} unreferenced but recent" if result.young else "")
        + f"; {result.runs_removed} {runs}"
    )
