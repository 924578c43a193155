"""Options, validation and execution shared by `pivot repro` and `pivot run`."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pivot.engine.context import Context
    from pivot.engine.events import RunSummary

F = TypeVar("F", bound=Callable[..., Any])


def global_flag(ctx: click.Context, name: str) -> bool:
    """A global option (`quiet`, `verbose`) given before the command name."""
    from pivot.cli import _common

    return bool(getattr(_common.get_state(ctx), name, False))


def cache_dir_option(func: F) -> F:
    """`--cache-dir` for every command that touches the cache (beats env PIVOT_CACHE_DIR, which
    beats the config's `cache.dir`)."""
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=pathlib.Path),
        help="Use this cache directory (default: env PIVOT_CACHE_DIR, config cache.dir, "
        ".pivot/cache).",
    )(func)


def run_options(func: F) -> F:
    """Options common to `repro` and `run` (spec §6)."""
    options = [
        all_option,
        cache_dir_option,
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(min=1),
            default=None,
            help="Stages to run in parallel (default: CPU count).",
        ),
        click.option(
            "--allow-uncached-incremental",
            is_flag=True,
            help="Run stages whose IncrementalOut exists on disk but is not in the cache.",
        ),
        click.option(
            "--checkout-missing",
            is_flag=True,
            help="Restore missing tracked files (.pvt) from the cache before running.",
        ),
        click.option(
            "--no-commit",
            is_flag=True,
            help="Run and hash outputs but write no lock, cache object or run-cache entry; "
            "record later with 'pivot commit'.",
        ),
        click.option(
            "--json", "as_json", is_flag=True, help="Stream JSONL events on stdout (spec §6)."
        ),
        click.option(
            "-f", "--force", is_flag=True, help="Run even if unchanged; bypass the run cache."
        ),
    ]
    for option in options:
        func = option(func)
    return func


def select_stages(ctx: Context, stages: Iterable[str]) -> list[str]:
    """Names, matrix groups (`train` -> every `train@…`) and patterns (`train@*`) expanded."""
    from pivot.selection import expand_stages

    return expand_stages(stages, ctx.graph.names)


def load_context(
    cache_dir: pathlib.Path | None = None,
    *,
    check_missing: bool = True,
    all_pipelines: bool = False,
) -> Context:
    from pivot.engine import context as engine_context

    return engine_context.load_context(
        cache_dir=cache_dir.resolve() if cache_dir is not None else None,
        check_missing=check_missing,
        all_pipelines=all_pipelines,
    )


def all_option(func: F) -> F:
    """`--all`: every pipeline file at or below the current directory, as one graph."""
    return click.option(
        "--all",
        "all_pipelines",
        is_flag=True,
        help="Every pipeline (pipeline.py / pivot.yaml) in or below the current directory.",
    )(func)


def execute(
    click_ctx: click.Context,
    ctx: Context,
    order: Sequence[str],
    *,
    force: bool,
    keep_going: bool,
    no_commit: bool,
    jobs: int | None,
    checkout_missing: bool,
    allow_uncached_incremental: bool,
    as_json: bool,
) -> None:
    """Run `order` through the engine with the console or JSONL sink; exit 1 on failure."""
    from pivot.cli import output
    from pivot.engine import runner

    quiet = global_flag(click_ctx, "quiet")
    sink: output.ConsoleSink | output.JsonlSink
    sink = output.JsonlSink() if as_json else output.ConsoleSink(quiet=quiet)
    sink.begin()

    if not order:
        if isinstance(sink, output.JsonlSink):
            sink.finish(None, 0.0)
        elif not quiet:
            click.echo("No stages to run", err=True)
        return

    opts = runner.RunOptions(
        force=force,
        keep_going=keep_going,
        no_commit=no_commit,
        jobs=jobs,
        checkout_missing=checkout_missing,
        allow_uncached_incremental=allow_uncached_incremental,
    )
    started = time.perf_counter()
    summary: RunSummary = runner.run(ctx, order, opts, [sink])
    if summary.duration_ms <= 0:
        summary.duration_ms = (time.perf_counter() - started) * 1000.0
    sink.finish(summary)
    if summary.failed or summary.blocked:
        click_ctx.exit(1)


def is_stale(decision: Any) -> bool:
    """Not up to date: will run, or its outputs must be restored from the cache."""
    return bool(decision.stale)


def decision_status(will_run: bool) -> str:
    return "would run" if will_run else "would skip"


def echo_explain(decisions: Iterable[Any], *, only_stale: bool = False) -> None:
    """`--explain` text: one line per stage, then indented details (which entry changed)."""
    for d in decisions:
        if only_stale and not is_stale(d):
            continue
        click.echo(f"{d.stage}: {decision_status(is_stale(d))} ({d.reason})")
        for detail in d.details:
            click.echo(f"    {detail}")
