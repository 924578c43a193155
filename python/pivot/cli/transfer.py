"""pivot push / fetch / pull: move cache objects between the local cache and a remote."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from pivot.cli import _common, _run_common

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
        ]
    ):
        func = option(func)
    return func


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@contextmanager
def _progress(verb: str, enabled: bool) -> Iterator[None]:
    """A live line on stderr (objects, bytes, skipped) while the core transfers."""
    import sys

    if not enabled or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from pivot.storage.remote import progress

    stop = threading.Event()

    def line() -> Text:
        done, nbytes, skipped, total = progress()
        return Text(f"{verb}: {done + skipped}/{total} objects, {_mb(nbytes)}, {skipped} skipped")

    with Live(line(), console=Console(stderr=True), transient=True) as live:

        def poll() -> None:
            while not stop.wait(0.2):
                live.update(line())

        t = threading.Thread(target=poll, daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()


def _open(remote_name: str | None, jobs: int | None):  # type: ignore[no-untyped-def]
    from pivot.storage.remote import open_remote

    ctx = _run_common.load_context(check_missing=False)
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
) -> None:
    """Upload the cached outputs of TARGETS (default: every lock and .pvt file) to a remote."""
    from pivot.engine import transfer

    quiet = _run_common.global_flag(click_ctx, "quiet")
    ctx, remote = _open(remote_name, jobs)
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


def _fetch(click_ctx: click.Context, targets, remote_name, jobs, as_json, verb):  # type: ignore[no-untyped-def]
    from pivot.engine import transfer

    quiet = _run_common.global_flag(click_ctx, "quiet")
    ctx, remote = _open(remote_name, jobs)
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
) -> None:
    """Download the cached outputs of TARGETS into the cache (the workspace is untouched)."""
    _ctx, result = _fetch(click_ctx, targets, remote_name, jobs, as_json, "fetch")
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
    force: bool,
) -> None:
    """Fetch, then check out TARGETS (default: everything)."""
    from pivot.engine import checkout as engine_checkout

    quiet = _run_common.global_flag(click_ctx, "quiet")
    ctx, result = _fetch(click_ctx, targets, remote_name, jobs, as_json, "pull")
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
