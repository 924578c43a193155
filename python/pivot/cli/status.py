"""pivot status: which stages are stale, and why (the same decisions as `repro --dry-run`)."""

from __future__ import annotations

import json
import pathlib

import click

from pivot.cli import _common


@click.command("status")
@click.argument("stages", nargs=-1)
@click.option("-v", "--verbose", "local_verbose", is_flag=True, help="Also list up-to-date stages.")
@click.option("-q", "--quiet", "local_quiet", is_flag=True, help="No output; exit 1 if stale.")
@click.option("-e", "--explain", is_flag=True, help="Show which code entry, param or file changed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable status on stdout.")
@_common.cache_dir_option
@_common.all_option
@click.option("-c", "--cloud", is_flag=True, help="Also list cached outputs not on the remote.")
@click.option("-r", "--remote", "remote_name", help="Remote for --cloud (implies it).")
@click.pass_context
def status(
    click_ctx: click.Context,
    stages: tuple[str, ...],
    local_verbose: bool,
    local_quiet: bool,
    explain: bool,
    as_json: bool,
    cache_dir: pathlib.Path | None,
    all_pipelines: bool,
    cloud: bool,
    remote_name: str | None,
) -> None:
    """Show stale stages of STAGES and their upstream (no STAGES: the whole pipeline).

    Exits 0 whether or not anything is stale; with -q prints nothing and exits 1 when
    anything is stale.
    """
    from pivot.cli.progress import hashing
    from pivot.engine import plan
    from pivot.engine.context import load_context
    from pivot.engine.track import changed_tracked

    state = _common.get_state(click_ctx)
    quiet = local_quiet or state.quiet
    verbose = local_verbose or bool(state.verbose)

    ctx = load_context(cache_dir=cache_dir, all_pipelines=all_pipelines, pipeline_optional=True)
    order = ctx.graph.order(_common.stage_names(ctx, stages) or None)
    with hashing(not quiet):
        decisions = plan.decide(ctx, order)
    ordered = [decisions[name] for name in order if name in decisions]
    stale = [d for d in ordered if d.stale]
    # Tracked data belongs to no stage: checked when the whole project is asked about.
    changed = [] if stages else changed_tracked(ctx)
    ctx.save()
    remote_label = None
    missing_remote: list[str] = []
    if cloud or remote_name is not None:
        from pivot.engine import transfer
        from pivot.storage.remote import open_remote

        remote = open_remote(ctx.project, remote_name)
        remote_label = remote.name
        missing_remote = transfer.not_pushed(ctx, remote, _common.stage_names(ctx, stages) or None)

    if quiet:
        if stale or missing_remote or changed:
            click_ctx.exit(1)
        return

    if as_json:
        payload: dict[str, object] = {
            "stages": {
                d.stage: {
                    "stale": d.stale,
                    "reason": d.reason,
                    "details": list(d.details),
                }
                for d in ordered
            }
        }
        payload["tracked"] = {t.path: {"pvt": t.pvt, "state": why} for t, why in changed}
        if remote_label is not None:
            payload["remote"] = {"name": remote_label, "not_pushed": missing_remote}
        click.echo(json.dumps(payload, indent=2))
        return
    if remote_label is not None:
        _echo_remote(remote_label, missing_remote)
    if changed:
        click.echo("Changed tracked data:")
        for t, why in changed:
            click.echo(f"  {t.path}: {why} ({t.pvt})")

    if not ordered:
        click.echo("No stages")
        return
    if explain:
        _common.echo_explain(ordered, only_stale=not verbose)
        if not stale:
            click.echo("All stages up to date")
        return
    if stale:
        click.echo("Stale stages:")
        for d in stale:
            click.echo(f"  {d.stage}: {d.reason}")
    if verbose:
        fresh = [d for d in ordered if not d.stale]
        if fresh:
            click.echo("Up to date:")
            for d in fresh:
                click.echo(f"  {d.stage}: {d.reason}")
    if not stale:
        click.echo("All stages up to date")


def _echo_remote(name: str, missing: list[str]) -> None:
    if missing:
        click.echo(f"Not on remote {name}:")
        for path in missing:
            click.echo(f"  {path}")
    else:
        click.echo(f"All cached outputs are on remote {name}")
