"""pivot verify: the CI gate — every stage up to date and every cached output in the cache."""

from __future__ import annotations

import json
import pathlib

import click

from pivot.cli import _common


@click.command("verify")
@click.argument("stages", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result on stdout.")
@click.option(
    "--cache",
    "check_cache",
    is_flag=True,
    help="Also re-hash the cache objects the locks and tracked files need (corrupt/missing).",
)
@click.option(
    "--sample",
    type=click.FloatRange(0, 100, min_open=True),
    default=None,
    metavar="PERCENT",
    help="With --cache: re-hash a random PERCENT of the file objects (manifests always).",
)
@_common.cache_dir_option
@_common.all_option
@click.option(
    "--allow-missing",
    is_flag=True,
    help="Accept outputs absent from the workspace and cache when the remote has them.",
)
@click.option("-r", "--remote", "remote_name", help="Remote for --allow-missing (default remote).")
@click.pass_context
def verify(
    click_ctx: click.Context,
    stages: tuple[str, ...],
    as_json: bool,
    check_cache: bool,
    sample: float | None,
    cache_dir: pathlib.Path | None,
    all_pipelines: bool,
    allow_missing: bool,
    remote_name: str | None,
) -> None:
    """Exit 0 when STAGES (default: all) are up to date and their outputs are cached, else 1.

    Prints one line per problem: a stale stage and its reason, or an output (or tracked
    file) whose object is missing from the cache. With --cache, also every corrupt or
    missing cache object, once per output path it belongs to; with --cache --all, every
    object in the cache is re-hashed, referenced or not.
    """
    from pivot.engine import verify as engine_verify
    from pivot.engine.context import load_context

    quiet = _common.quiet(click_ctx)
    ctx = load_context(cache_dir=cache_dir, all_pipelines=all_pipelines, pipeline_optional=True)
    targets = _common.stage_names(ctx, stages)
    if sample is not None and not check_cache:
        raise click.UsageError("--sample needs --cache")
    if sample is not None and all_pipelines:
        raise click.UsageError("--sample and --cache --all exclude each other")
    remote_has = None
    if allow_missing:
        from pivot.engine import transfer
        from pivot.storage.remote import open_remote

        remote = open_remote(ctx.project, remote_name)
        remote_has = transfer.remote_has(ctx, remote, targets or None)
    result = engine_verify.verify(
        ctx,
        targets or None,
        allow_missing=allow_missing,
        remote_has=remote_has,
        cache=check_cache,
        sample=sample,
        every_object=check_cache and all_pipelines,
    )
    ctx.save()

    problems = [f"{name}: {reason}" for name, reason in result.stale.items()]
    for owner, paths in result.missing.items():
        problems += [f"{owner}: {path} not in cache" for path in paths]
    problems += [f"{pvt}: {what}" for pvt, what in result.tracked.items()]
    if result.cache is not None:
        problems += result.cache.problems()

    if as_json:
        payload = result.to_json()
        payload["problems"] = problems
        click.echo(json.dumps(payload, indent=2))
    elif not quiet:
        if problems:
            for line in problems:
                click.echo(f"  {line}")
        else:
            checked = (
                f"; {result.cache.checked} cache object(s) verified"
                if result.cache is not None
                else ""
            )
            click.echo(f"OK: {len(result.stages)} stage(s) up to date and cached{checked}")
    if not result.ok:
        click_ctx.exit(1)
