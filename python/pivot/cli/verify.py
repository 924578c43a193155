"""pivot verify: the CI gate — every stage up to date and every cached output in the cache."""

from __future__ import annotations

import json

import click

from pivot.cli import _run_common


@click.command("verify")
@click.argument("stages", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result on stdout.")
@click.pass_context
def verify(click_ctx: click.Context, stages: tuple[str, ...], as_json: bool) -> None:
    """Exit 0 when STAGES (default: all) are up to date and their outputs are cached, else 1.

    Prints one line per problem: a stale stage and its reason, or an output (or tracked
    file) whose object is missing from the cache.
    """
    from pivot.engine import verify as engine_verify

    quiet = _run_common.global_flag(click_ctx, "quiet")
    ctx = _run_common.load_context()
    targets = _run_common.stage_list(stages)
    _run_common.validate_stages_exist(ctx, targets)
    result = engine_verify.verify(ctx, targets or None)
    ctx.save()

    problems = [f"{name}: {reason}" for name, reason in result.stale.items()]
    for owner, paths in result.missing.items():
        problems += [f"{owner}: {path} not in cache" for path in paths]

    if as_json:
        payload = result.to_json()
        payload["problems"] = problems
        click.echo(json.dumps(payload, indent=2))
    elif not quiet:
        if problems:
            for line in problems:
                click.echo(f"  {line}")
        else:
            click.echo(f"OK: {len(result.stages)} stage(s) up to date and cached")
    if not result.ok:
        click_ctx.exit(1)
