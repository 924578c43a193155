"""pivot track: put data files or directories under pivot (`<path>.pvt` + cache)."""

from __future__ import annotations

import os
import pathlib

import click

from pivot.cli import _common


@click.command("track")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=pathlib.Path))
@click.pass_context
def track(click_ctx: click.Context, paths: tuple[pathlib.Path, ...]) -> None:
    """Cache PATHS and write `<path>.pvt` next to each (commit the .pvt files to git)."""
    from pivot.engine import track as engine_track
    from pivot.engine.context import load_context

    quiet = _common.quiet(click_ctx)
    ctx = load_context(check_missing=False)
    written = engine_track.track(ctx, list(paths))
    if quiet:
        return
    for path, pvt in zip(paths, written, strict=True):
        shown = os.path.relpath(pvt, pathlib.Path.cwd())
        click.echo(f"Tracked {path} ({shown})")
