"""Helpers shared by CLI commands: loading a project's graph, stage names, JSON output.

Heavy modules (rustworkx, the pipeline and its pydantic models) are imported inside the
functions, so importing a command module stays cheap.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pivot.cli import CliState
    from pivot.graph import PipelineGraph
    from pivot.pipeline import Pipeline
    from pivot.project import Project


@dataclass
class Loaded:
    """A project with its pipeline and validated graph."""

    project: Project
    pipeline: Pipeline
    graph: PipelineGraph
    cwd: Path


def get_state(ctx: click.Context | None = None) -> CliState:
    """The global options (-v/-q) of the current invocation."""
    from pivot.cli import CliState

    ctx = ctx or click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, CliState):
            return ctx.obj
        ctx = ctx.parent
    return CliState()


def load_project(cwd: Path | None = None, cache_dir: str | Path | None = None) -> Project:
    """find_root from `cwd` (default: the current directory) and open the project."""
    from pivot.project import Project, find_root

    where = Path.cwd() if cwd is None else Path(cwd)
    return Project.load(find_root(where), cache_dir)


def load(
    cwd: Path | None = None,
    *,
    check_missing: bool = True,
    cache_dir: str | Path | None = None,
    all_pipelines: bool = False,
) -> Loaded:
    """find_root -> load_pipeline (or every pipeline below, `--all`) -> PipelineGraph.build."""
    from pivot.graph import PipelineGraph
    from pivot.pipeline.discovery import load_pipeline
    from pivot.pipeline.multi import load_all

    where = (Path.cwd() if cwd is None else Path(cwd)).resolve()
    project = load_project(where, cache_dir)
    if all_pipelines:
        pipeline = load_all(project.root, where)
    else:
        pipeline = load_pipeline(project.root, where)
    graph = PipelineGraph.build(pipeline.stages, project.root, check_missing=check_missing)
    return Loaded(project=project, pipeline=pipeline, graph=graph, cwd=where)


def check_stages(known: Iterable[str], requested: Iterable[str]) -> list[str]:
    """The requested names, in order and without repeats; UnknownStageError with suggestions."""
    from pivot.graph import check_stage_names

    wanted = list(dict.fromkeys(requested))
    check_stage_names(wanted, list(known))
    return wanted


def echo_json(data: Any, *, indent: bool = False) -> None:
    """One JSON document on stdout (orjson; unknown types via str())."""
    import orjson

    option = orjson.OPT_INDENT_2 if indent else 0
    text = orjson.dumps(data, option=option | orjson.OPT_NON_STR_KEYS, default=str)
    sys.stdout.write(text.decode() + "\n")
    sys.stdout.flush()


def info(message: str) -> None:
    """A diagnostic line on stderr, suppressed by -q."""
    if not get_state().quiet:
        click.echo(message, err=True)
