"""pivot track: put data files or directories under pivot (`<path>.pvt` + cache)."""

from __future__ import annotations

import os
import pathlib

import click

from pivot.cli import _common


@click.command("track")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=pathlib.Path))
@click.option("--json", "as_json", is_flag=True, help="Print the .pvt files and hashes as JSON.")
@_common.cache_dir_option
@click.pass_context
def track(
    click_ctx: click.Context,
    paths: tuple[pathlib.Path, ...],
    as_json: bool,
    cache_dir: pathlib.Path | None,
) -> None:
    """Cache PATHS and write `<path>.pvt` next to each (commit the .pvt files to git)."""
    from pivot.engine import track as engine_track
    from pivot.engine.context import load_context
    from pivot.storage import pvt as pvt_codec

    quiet = _common.quiet(click_ctx)
    ctx = load_context(cache_dir=cache_dir, check_missing=False, pipeline_optional=True)
    written = engine_track.track(ctx, list(paths))
    if as_json:
        entries = []
        for pvt in written:
            t = pvt_codec.read_pvt(ctx.root, ctx.project.relpath(pvt))
            entries.append({"path": t.path, "pvt": t.pvt, **t.info})
        _common.echo_json({"tracked": entries})
        return
    if quiet:
        return
    for path, pvt in zip(paths, written, strict=True):
        shown = os.path.relpath(pvt, pathlib.Path.cwd())
        click.echo(f"Tracked {path} ({shown})")
