"""pivot list: the stages of the pipeline, in registration order."""

from __future__ import annotations

import click

from pivot.cli import _common


@click.command("list")
@click.option("--deps", is_flag=True, help="Also show each stage's dependencies and outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document on stdout.")
def list_cmd(deps: bool, as_json: bool) -> None:
    """List the pipeline's stages in registration order."""
    from pivot.engine.context import load_context

    # Listing must work before data is pulled: missing dependency files are not an error here.
    stages = load_context(check_missing=False).pipeline.stages
    if as_json:
        _common.echo_json({"stages": [info.describe() for info in stages.values()]}, indent=True)
        return
    if not stages:
        _common.info("No stages")
        return
    for name, info in stages.items():
        click.echo(name)
        if deps:
            click.echo(f"  deps: {', '.join(info.dep_paths) or '(none)'}")
            click.echo(f"  outs: {', '.join(info.out_paths) or '(none)'}")
