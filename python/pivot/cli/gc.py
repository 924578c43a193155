"""pivot gc: remove cache objects and run-cache entries that nothing needs (docs/cli.md)."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import click

from pivot.cli import _common

if TYPE_CHECKING:
    from pivot.engine.gc import GcOptions
    from pivot.project import Project


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
@click.option(
    "-r",
    "--remote",
    "remote_name",
    metavar="NAME",
    default=None,
    help="Collect this remote instead of the local cache (roots: also every push's record).",
)
@click.option(
    "--roots-days",
    type=click.FloatRange(min=0),
    default=None,
    help="With --remote: drop push records this old that a newer one of the same clone "
    "supersedes (default: gc.run_cache_days).",
)
@click.option(
    "--repack-ratio",
    type=click.FloatRange(min=0, max=1),
    default=None,
    help="With --remote: rewrite packs whose dead share exceeds this (default: gc.repack_ratio).",
)
@click.option(
    "--lease-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="With --remote: how long the remote gc lock is valid.",
)
@click.option(
    "--break-lock",
    is_flag=True,
    help="With --remote: remove a gc lock whose holder is known to be gone.",
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
    remote_name: str | None,
    roots_days: float | None,
    repack_ratio: float | None,
    lease_minutes: float,
    break_lock: bool,
    cache_dir: pathlib.Path | None,
) -> None:
    """Remove cached objects that neither the workspace nor any branch or tag needs.

    Roots: the workspace's locks and .pvt files, those of HEAD and of every local branch,
    tag and remote-tracking branch (read from git, no checkout), and the outputs of
    run-cache entries younger than the retention. Objects younger than the grace period
    are never removed.

    With --remote NAME the remote is collected instead: its roots are also every push's
    roots record, and packs that are mostly dead are rewritten.
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
    if remote_name is not None:
        _gc_remote(
            project,
            remote_name,
            opts,
            roots_days,
            repack_ratio,
            lease_minutes,
            break_lock,
            as_json=as_json,
            quiet=quiet,
        )
        return
    if roots_days is not None or repack_ratio is not None or break_lock:
        raise click.UsageError("--roots-days, --repack-ratio and --break-lock need --remote")
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


def _gc_remote(
    project: Project,
    name: str,
    opts: GcOptions,
    roots_days: float | None,
    repack_ratio: float | None,
    lease_minutes: float,
    break_lock: bool,
    *,
    as_json: bool,
    quiet: bool,
) -> None:
    from pivot.cli.output import human_bytes
    from pivot.engine import gc_remote
    from pivot.storage.remote import open_remote

    remote = open_remote(project, name)
    result = gc_remote.gc_remote(
        project,
        remote,
        gc_remote.RemoteGcOptions(
            base=opts,
            roots_days=roots_days,
            repack_ratio=repack_ratio,
            lease_minutes=lease_minutes,
            break_lock=break_lock,
        ),
    )
    doc = result.to_json()
    if as_json:
        _common.echo_json(doc, indent=True)
        return
    for note in doc["notes"]:
        click.echo(f"Note: {note}", err=True)
    if quiet:
        return
    verb = "Would remove" if result.dry_run else "Removed"
    rm = doc["removed"]
    click.echo(
        f"{verb} {rm['objects']} object(s) ({human_bytes(rm['bytes'])}) from remote "
        f"{result.remote}, {rm['packs']} pack(s) whole and {doc['packs_rewritten']} rewritten; "
        f"kept {doc['kept']} needed by {len(result.revisions)} revision(s) of this clone, "
        f"{doc['roots_records']['kept']} push record(s) and {doc['run_cache']['kept']} "
        f"run-cache entries"
        + (f", {doc['young']} unreferenced but recent" if doc["young"] else "")
        + f"; {doc['run_cache']['removed']} run-cache entries and "
        f"{doc['roots_records']['removed']} push record(s) "
        + ("to remove" if result.dry_run else "removed")
    )
