"""`Pipeline`: the set of registered stages, in registration order."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot import naming
from pivot.exceptions import StageDefinitionError, UnknownStageError, ValidationError
from pivot.pipeline import registration
from pivot.pipeline.stage import StageInfo

if TYPE_CHECKING:
    from pivot.stage_def import StageParams  # pydantic: imported only by pipelines that use it

# Set by load_pipeline while it imports a pipeline file, so that `Pipeline(...)` created there
# resolves paths against the project being loaded.
_loading_root: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "pivot_loading_root", default=None
)


@contextlib.contextmanager
def loading_project(project_root: Path) -> Iterator[None]:
    token = _loading_root.set(Path(project_root).resolve())
    try:
        yield
    finally:
        _loading_root.reset(token)


def _find_project_root(start: Path) -> Path:
    """Top-most ancestor holding `.pivot/`, else `start` itself."""
    found = None
    for d in (start, *start.parents):
        if (d / ".pivot").is_dir():
            found = d
    return found or start


def _where(p: Pipeline) -> str:
    return f" ({p.source})" if p.source is not None else ""


def _caller_dir(depth: int) -> Path:
    frame = sys._getframe(depth + 1)
    file = frame.f_globals.get("__file__")
    return Path(file).resolve().parent if file else Path.cwd().resolve()


class Pipeline:
    """A named set of stages; paths are declared relative to `base_dir`.

    `base_dir` defaults to the directory of the module that creates the Pipeline (the pipeline
    file), `project_root` to the project being loaded (or the top-most `.pivot/` above
    `base_dir`).
    """

    def __init__(
        self,
        name: str,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        project_root: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("Pipeline name must be a non-empty string")
        self.name = name
        self.base_dir = Path(base_dir).resolve() if base_dir is not None else _caller_dir(1)
        if project_root is not None:
            self.project_root = Path(project_root).resolve()
        else:
            self.project_root = _loading_root.get() or _find_project_root(self.base_dir)
        self.stages: dict[str, StageInfo] = {}
        self.source: Path | None = None  # the pipeline file, set by load_pipeline
        # Stages merged from pipeline files found by `--all`: name -> (directory of the pipeline
        # file, the stage's name in it), so a worker process loads the right file.
        self.origins: dict[str, tuple[Path, str]] = {}

    def register(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        params: StageParams | type[StageParams] | None = None,
        mutex: Sequence[str] | str | None = None,
        dep_path_overrides: Mapping[str, registration.PathOverride] | None = None,
        out_path_overrides: Mapping[str, str] | None = None,
    ) -> None:
        """Register `func` as a stage (name defaults to the function's name)."""
        self._add(
            func,
            name=name,
            params=params,
            mutex=mutex,
            dep_path_overrides=dep_path_overrides,
            out_path_overrides=out_path_overrides,
        )

    def _add(
        self,
        func: Callable[..., Any],
        *,
        name: str | None,
        params: StageParams | type[StageParams] | None,
        mutex: Sequence[str] | str | None,
        dep_path_overrides: Mapping[str, registration.PathOverride] | None,
        out_path_overrides: Mapping[str, str] | None,
        base_dir: Path | None = None,
        yaml_params: Mapping[str, Any] | None = None,
        yaml_source: str = "pivot.yaml",
    ) -> StageInfo:
        stage_name = naming.check_stage_name(
            name if name is not None else getattr(func, "__name__", None), StageDefinitionError
        )
        if stage_name in self.stages:
            raise ValidationError(f"duplicate stage name '{stage_name}' in pipeline '{self.name}'")
        info = registration.build_stage(
            func,
            name=stage_name,
            params=params,
            mutex=mutex,
            dep_path_overrides=dep_path_overrides,
            out_path_overrides=out_path_overrides,
            base_dir=base_dir or self.base_dir,
            project_root=self.project_root,
            yaml_params=yaml_params,
            yaml_source=yaml_source,
        )
        self.stages[stage_name] = info
        return info

    def include(self, other: Pipeline, prefix: str | None = None) -> None:
        """Add every stage of `other`, named `<prefix>.<name>` when a prefix is given.

        A resulting name that is already a stage here is an error naming both pipelines, and
        then nothing is added. Paths stay as `other` resolved them (project-relative).
        """
        if other is self:
            raise ValidationError(f"pipeline '{self.name}' cannot include itself")
        renamed: dict[str, tuple[str, StageInfo]] = {}
        for name, info in other.stages.items():
            new = f"{prefix}.{name}" if prefix else name
            naming.check_stage_name(new, StageDefinitionError)
            if new in self.stages or new in renamed:
                raise ValidationError(
                    f"stage '{new}' of pipeline '{other.name}'{_where(other)} conflicts with "
                    f"stage '{new}' of pipeline '{self.name}'{_where(self)}"
                    + ("" if prefix else "; include it with a prefix")
                )
            renamed[new] = (name, info if new == name else dataclasses.replace(info, name=new))
        for new, (old, info) in renamed.items():
            self.stages[new] = info
            if old in other.origins:
                self.origins[new] = other.origins[old]

    def get(self, name: str) -> StageInfo:
        try:
            return self.stages[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.stages), n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise UnknownStageError(f"unknown stage '{name}'{hint}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.stages

    def __len__(self) -> int:
        return len(self.stages)

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, stages={len(self.stages)})"
