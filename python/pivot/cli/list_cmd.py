"""pivot list: the stages of the pipeline, in registration order."""

from __future__ import annotations

import click

from pivot.cli import _common, _run_common


@click.command("list")
@click.argument("stages", nargs=-1)
@click.option("--deps", is_flag=True, help="Also show each stage's dependencies and outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document on stdout.")
@_run_common.all_option
def list_cmd(stages: tuple[str, ...], deps: bool, as_json: bool, all_pipelines: bool) -> None:
    """List the pipeline's stages in registration order (STAGES: names, groups or patterns)."""
    # Listing must work before data is pulled: missing dependency files are not an error here.
    loaded = _common.load(check_missing=False, all_pipelines=all_pipelines)
    every = loaded.pipeline.stages
    if stages:
        from pivot.selection import expand_stages

        wanted = set(expand_stages(stages, list(every)))
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
