"""pivot checkout: restore stage outputs and tracked files from the cache."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import click

from pivot.cli import _common, _run_common

if TYPE_CHECKING:
    from pivot.storage.links import LinkMode


def _parse_modes(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[LinkMode, ...] | None:
    """`--checkout-mode` repeated and/or comma-separated, in order."""
    from pivot.storage.links import parse_link_modes

    names = [mode.strip() for value in values for mode in value.split(",") if mode.strip()]
    if not names:
        return None
    try:
        return parse_link_modes(names)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--checkout-mode") from None


@click.command("checkout")
@click.argument("targets", nargs=-1)
@click.option(
    "--force", is_flag=True, help="Overwrite files that differ from the recorded version."
)
@click.option("--only-missing", is_flag=True, help="Restore only paths that do not exist.")
@click.option(
    "--checkout-mode",
    "link_modes",
    multiple=True,
    callback=_parse_modes,
    metavar="MODE[,MODE...]",
    help="Link modes to try in order: reflink, hardlink, copy (repeatable or comma list).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@_common.cache_dir_option
@_run_common.jobs_option
@click.pass_context
def checkout(
    click_ctx: click.Context,
    targets: tuple[str, ...],
    force: bool,
    only_missing: bool,
    link_modes: tuple[LinkMode, ...] | None,
    as_json: bool,
    cache_dir: pathlib.Path | None,
    jobs: int | None,
) -> None:
    """Restore TARGETS (stage names or paths; default: everything) from the cache.

    A file that differs from the recorded version is not overwritten unless --force.
    """
    from pivot.cli.progress import LiveLine
    from pivot.engine import checkout as engine_checkout
    from pivot.engine.context import load_context

    quiet = _common.quiet(click_ctx)
    ctx = load_context(cache_dir=cache_dir, check_missing=False, pipeline_optional=True)
    counts = [0, 0]  # paths done, total

    # A live line on a terminal, else a plain line every few seconds (cli/progress.py); none
    # with --json, whose reader wants only the result.
    line = (
        None
        if quiet or as_json
        else LiveLine(lambda: f"Checking out: {counts[0]}/{counts[1]} path(s)")
    )

    def on_path(done: int, total: int) -> None:
        counts[0], counts[1] = done, total
        if line is not None:
            line.poke()

    try:
        result = engine_checkout.checkout(
            ctx,
            list(dict.fromkeys(targets)) or None,
            force=force,
            only_missing=only_missing,
            link_modes=link_modes,
            jobs=jobs,
            progress=on_path if line is not None else None,
        )
    finally:
        if line is not None:
            line.close()
    if as_json:
        _common.echo_json(
            {
                "restored": result.restored,
                "skipped": result.skipped,
                "refused": result.refused,
                "missing": result.missing,
            }
        )
    elif not quiet:
        for path in result.restored:
            click.echo(f"restored {path}", err=True)
        click.echo(
            f"Restored {len(result.restored)}, unchanged {len(result.skipped)}"
            + (f", refused {len(result.refused)}" if result.refused else "")
            + (f", missing {len(result.missing)}" if result.missing else ""),
            err=True,
        )
    for msg in result.refused.values():
        click.echo(f"Error: {msg}", err=True)
    for msg in result.missing.values():
        click.echo(f"Error: {msg}", err=True)
    if not result.ok:
        click_ctx.exit(1)
