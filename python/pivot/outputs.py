"""Annotation markers declaring a stage's file inputs and outputs (docs/architecture.md, "Pipeline model").

Markers only record what the user wrote; `pivot.pipeline.registration` validates them at
registration time so that every error can name the stage and the argument or output key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pivot import loaders

Container = Literal["single", "list", "tuple"]


def split_paths(path: object) -> tuple[tuple[Any, ...], Container]:
    if isinstance(path, list):
        return tuple(path), "list"
    if isinstance(path, tuple):
        return path, "tuple"
    return (path,), "single"


@dataclass(frozen=True)
class Dep:
    """An input file/directory (or a list/tuple of them), loaded with `reader` and injected."""

    path: str | Sequence[str] = field(compare=False, hash=False)
    reader: loaders.Reader[Any]
    paths: tuple[Any, ...] = field(init=False, repr=False)
    container: Container = field(init=False, repr=False)

    def __post_init__(self) -> None:
        paths, container = split_paths(self.path)
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "container", container)


@dataclass(frozen=True)
class PlaceholderDep:
    """An input whose path is given at registration through `dep_path_overrides`."""

    reader: loaders.Reader[Any]


@dataclass(frozen=True)
class Out:
    """An output: the stage returns the value and pivot saves it with `writer`."""

    kind: ClassVar[str] = "out"
    path: str
    writer: loaders.Writer[Any]
    cache: bool = True


@dataclass(frozen=True)
class Metric:
    """A JSON output kept in git (not cached) and hashed into the lock."""

    kind: ClassVar[str] = "metric"
    path: str
    writer: loaders.Writer[Any] = field(default_factory=loaders.JSON, init=False)
    cache: bool = field(default=False, init=False)


@dataclass(frozen=True)
class Plot:
    """A cached output with plot metadata for viewers."""

    kind: ClassVar[str] = "plot"
    path: str
    writer: loaders.Writer[Any]
    x: str | None = None
    y: str | None = None
    template: str | None = None
    cache: bool = True


@dataclass(frozen=True)
class DirectoryOut:
    """A directory output (path ends with "/"): the stage returns {relative name: value}."""

    kind: ClassVar[str] = "directory"
    path: str
    writer: loaders.Writer[Any]
    cache: bool = True


@dataclass(frozen=True)
class IncrementalOut:
    """Input and output at once: the previous version is restored before the run.

    Annotate the stage parameter that receives the previous value (or `loader.empty()` on the
    first run) and declare the same path in the return annotation.
    """

    kind: ClassVar[str] = "incremental"
    path: str
    loader: loaders.Loader[Any]
    cache: bool = True

    @property
    def writer(self) -> loaders.Writer[Any]:
        return self.loader


OutputMarker = Out | Metric | Plot | DirectoryOut | IncrementalOut
OUTPUT_MARKERS: tuple[type, ...] = (Out, Metric, Plot, DirectoryOut, IncrementalOut)
INPUT_MARKERS: tuple[type, ...] = (Dep, PlaceholderDep, IncrementalOut)

__all__ = [
    "Dep",
    "DirectoryOut",
    "IncrementalOut",
    "Metric",
    "Out",
    "PlaceholderDep",
    "Plot",
]
