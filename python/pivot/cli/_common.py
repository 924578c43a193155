"""Helpers shared by CLI commands: global options, stage names, JSON and diagnostic output.

Commands load their project with `pivot.engine.context.load_context`, the one loader (imported
inside the command, like every heavy module, so importing a command module stays cheap).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pivot.cli import CliState
    from pivot.engine.context import Context
    from pivot.engine.plan import Decision

F = TypeVar("F", bound=Callable[..., Any])


def get_state(ctx: click.Context | None = None) -> CliState:
    """The global options (-v/-q) of the current invocation."""
    from pivot.cli import CliState

    ctx = ctx or click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, CliState):
            return ctx.obj
        ctx = ctx.parent
    return CliState()


def quiet(ctx: click.Context | None = None) -> bool:
    """Whether the global `-q` was given."""
    return get_state(ctx).quiet


def stage_names(ctx: Context, requested: Iterable[str]) -> list[str]:
    """The stages `requested` selects, in order, without repeats: names, matrix groups
    (`train` -> every `train@…`) and patterns (`train@*`), expanded by `pivot.selection`;
    UnknownStageError naming every unknown one, with "did you mean" suggestions."""
    from pivot.selection import expand_stages

    return expand_stages(requested, ctx.graph.names)


def pivot_dir() -> Path:
    """`.pivot/` of the project containing the current directory (for commands that only edit
    its config: `config`, `remote`)."""
    from pivot.project import PIVOT_DIR, find_root

    return find_root(Path.cwd()) / PIVOT_DIR


def cache_dir_option(command: F) -> F:
    """`--cache-dir` for every command that touches the cache, passed on as an absolute path
    (resolved from the cwd). It beats env PIVOT_CACHE_DIR, which beats the config's
    `cache.dir` (`Project.load`)."""
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        callback=_absolute,
        help="Use this cache directory (default: env PIVOT_CACHE_DIR, config cache.dir, "
        ".pivot/cache).",
    )(command)


def _absolute(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    return value.resolve() if value is not None else None


def all_option(command: F) -> F:
    """`--all`: every pipeline file at or below the current directory, as one graph."""
    return click.option(
        "--all",
        "all_pipelines",
        is_flag=True,
        help="Every pipeline (pipeline.py / pivot.yaml) in or below the current directory.",
    )(command)


def echo_json(data: Any, *, indent: bool = False) -> None:
    """One JSON document on stdout (orjson; unknown types via str())."""
    import orjson

    option = orjson.OPT_INDENT_2 if indent else 0
    text = orjson.dumps(data, option=option | orjson.OPT_NON_STR_KEYS, default=str)
    sys.stdout.write(text.decode() + "\n")
    sys.stdout.flush()


def info(message: str) -> None:
    """A diagnostic line on stderr, suppressed by -q."""
    if not quiet():
        click.echo(message, err=True)


def decision_status(will_run: bool) -> str:
    return "would run" if will_run else "would skip"


def echo_explain(decisions: Iterable[Decision], *, only_stale: bool = False) -> None:
    """`--explain` text: one line per stage, then indented details (which entry changed)."""
    for d in decisions:
        if only_stale and not d.stale:
            continue
        click.echo(f"{d.stage}: {decision_status(d.stale)} ({d.reason})")
        for detail in d.details:
            click.echo(f"    {detail}")
