"""pivot list: the stages of the pipeline, in registration order."""

from __future__ import annotations

import click

from pivot.cli import _common


@click.command("list")
@click.argument("stages", nargs=-1)
@click.option("--deps", is_flag=True, help="Also show each stage's dependencies and outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document on stdout.")
@_common.all_option
def list_cmd(stages: tuple[str, ...], deps: bool, as_json: bool, all_pipelines: bool) -> None:
    """List the pipeline's stages in registration order (STAGES: names, groups or patterns)."""
    from pivot.engine.context import load_context

    # Listing must work before data is pulled: missing dependency files are not an error here.
    ctx = load_context(check_missing=False, all_pipelines=all_pipelines)
    every = ctx.pipeline.stages
    if stages:
        wanted = set(_common.stage_names(ctx, stages))
        every = {name: info for name, info in every.items() if name in wanted}
    if as_json:
        _common.echo_json({"stages": [info.describe() for info in every.values()]}, indent=True)
        return
    if not every:
        _common.info("No stages")
        return
    for name, info in every.items():
        click.echo(name)
        if deps:
            click.echo(f"  deps: {', '.join(info.dep_paths) or '(none)'}")
            click.echo(f"  outs: {', '.join(info.out_paths) or '(none)'}")
