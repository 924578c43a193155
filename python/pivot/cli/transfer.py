"""pivot push / fetch / pull: move cache objects between the local cache and a remote."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pivot.cli import _common

if TYPE_CHECKING:
    from pivot.engine.context import Context
    from pivot.engine.transfer import FetchResult
    from pivot.storage.remote import Remote

F = TypeVar("F", bound=Callable[..., Any])


def _options(func: F) -> F:
    for option in reversed(
        [
            click.argument("targets", nargs=-1),
            click.option(
                "-r", "--remote", "remote_name", help="Remote name (default: core.remote)."
            ),
            click.option(
                "-j", "--jobs", type=click.IntRange(min=1), default=None, help="Parallel requests."
            ),
            click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout."),
            _common.cache_dir_option,
        ]
    ):
        func = option(func)
    return func


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@contextmanager
def _progress(verb: str, enabled: bool) -> Iterator[None]:
    """Objects, bytes and skipped of the transfer the core is running, on stderr
    (`cli/progress.py`: a live line on a terminal, else a plain line now and then)."""
    if not enabled:
        yield
        return
    from pivot.cli.progress import LiveLine
    from pivot.storage.remote import progress

    def text() -> str:
        done, nbytes, skipped, total = progress()
        return f"{verb}: {done + skipped}/{total} objects, {_mb(nbytes)}, {skipped} skipped"

    line = LiveLine(text)
    try:
        yield
    finally:
        line.close()


def _open(
    remote_name: str | None, jobs: int | None, cache_dir: pathlib.Path | None
) -> tuple[Context, Remote]:
    from pivot.engine.context import load_context
    from pivot.storage.remote import open_remote

    ctx = load_context(cache_dir=cache_dir, check_missing=False, pipeline_optional=True)
    return ctx, open_remote(ctx.project, remote_name, jobs)


@click.command("push")
@_options
@click.pass_context
def push(
    click_ctx: click.Context,
    targets: tuple[str, ...],
    remote_name: str | None,
    jobs: int | None,
    as_json: bool,
    cache_dir: pathlib.Path | None,
) -> None:
    """Upload the cached outputs of TARGETS (default: every lock and .pvt file) to a remote."""
    from pivot.engine import transfer

    quiet = _common.quiet(click_ctx)
    ctx, remote = _open(remote_name, jobs, cache_dir)
    with _progress("push", not quiet and not as_json):
        result = transfer.push(ctx, remote, list(dict.fromkeys(targets)) or None)
    o = result.objects
    if as_json:
        _common.echo_json(result.to_json())
    elif not quiet:
        runs = (
            f"; {result.runs_uploaded} run-cache entr{'y' if result.runs_uploaded == 1 else 'ies'}"
        )
        click.echo(
            f"Pushed {o.uploaded} object(s) ({_mb(o.bytes)}), {o.skipped} already on the "
            f"remote {remote.name}{runs}",
            err=True,
        )
    for msg in result.missing.values():
        click.echo(f"Error: {msg}", err=True)
    if not result.ok:
        click_ctx.exit(1)


def _fetch(
    click_ctx: click.Context,
    targets: tuple[str, ...],
    remote_name: str | None,
    jobs: int | None,
    as_json: bool,
    cache_dir: pathlib.Path | None,
    verb: str,
) -> tuple[Context, FetchResult]:
    from pivot.engine import transfer

    quiet = _common.quiet(click_ctx)
    ctx, remote = _open(remote_name, jobs, cache_dir)
    with _progress(verb, not quiet and not as_json):
        result = transfer.fetch(ctx, remote, list(dict.fromkeys(targets)) or None)
    o = result.objects
    if not quiet and not as_json:
        click.echo(
            f"Fetched {o.fetched} object(s) ({_mb(o.bytes)}) from {remote.name}, "
            f"{o.skipped} already in the cache",
            err=True,
        )
    for msg in [*result.corrupt.values(), *result.missing.values()]:
        click.echo(f"Error: {msg}", err=True)
    return ctx, result


@click.command("fetch")
@_options
@click.pass_context
def fetch(
    click_ctx: click.Context,
    targets: tuple[str, ...],
    remote_name: str | None,
    jobs: int | None,
    as_json: bool,
    cache_dir: pathlib.Path | None,
) -> None:
    """Download the cached outputs of TARGETS into the cache (the workspace is untouched)."""
    _ctx, result = _fetch(click_ctx, targets, remote_name, jobs, as_json, cache_dir, "fetch")
    if as_json:
        _common.echo_json(result.to_json())
    if not result.ok:
        click_ctx.exit(1)


@click.command("pull")
@_options
@click.option(
    "--force", is_flag=True, help="Overwrite files that differ from the recorded version."
)
@click.pass_context
def pull(
    click_ctx: click.Context,
    targets: tuple[str, ...],
    remote_name: str | None,
    jobs: int | None,
    as_json: bool,
    cache_dir: pathlib.Path | None,
    force: bool,
) -> None:
    """Fetch, then check out TARGETS (default: everything)."""
    from pivot.engine import checkout as engine_checkout

    quiet = _common.quiet(click_ctx)
    ctx, result = _fetch(click_ctx, targets, remote_name, jobs, as_json, cache_dir, "pull")
    co = engine_checkout.checkout(ctx, list(dict.fromkeys(targets)) or None, force=force)
    if as_json:
        doc = result.to_json()
        doc["checkout"] = {
            "restored": co.restored,
            "skipped": co.skipped,
            "refused": co.refused,
            "missing": co.missing,
        }
        _common.echo_json(doc)
    elif not quiet:
        click.echo(f"Restored {len(co.restored)}, unchanged {len(co.skipped)}", err=True)
    for msg in co.refused.values():
        click.echo(f"Error: {msg}", err=True)
    # Outputs whose objects the fetch already reported are not repeated.
    reported = set(result.missing) | set(result.corrupt)
    for path, msg in co.missing.items():
        if not any(r == path or r.startswith(path + "/") for r in reported):
            click.echo(f"Error: {msg}", err=True)
    if not result.ok or not co.ok:
        click_ctx.exit(1)
