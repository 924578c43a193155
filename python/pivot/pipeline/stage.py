"""The resolved description of a stage that the graph, fingerprint and engine consume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pivot import loaders

if TYPE_CHECKING:
    from pivot.stage_def import StageParams  # pydantic: imported only by pipelines that use it

OutKind = Literal["out", "metric", "plot", "directory", "incremental"]


@dataclass(frozen=True)
class DepSpec:
    arg: str  # function parameter receiving the loaded value
    paths: tuple[str, ...]  # project-relative POSIX paths, normalized
    container: Literal["single", "list", "tuple"]
    reader: loaders.Reader[Any]
    # IncrementalOut parameter: receives the previous output (or loader.empty()); not a dep.
    incremental: bool = False


@dataclass(frozen=True)
class OutSpec:
    key: str  # TypedDict key, or "return" for a single output
    path: str  # project-relative; directory outputs end with "/"
    kind: OutKind
    writer: loaders.Writer[Any]
    cache: bool  # Metric: False
    plot: dict[str, str] | None = None  # Plot: {"x", "y", "template"} that were given

    def __hash__(self) -> int:
        return hash((self.key, self.path, self.kind, self.writer, self.cache))


@dataclass(frozen=True)
class StageInfo:
    name: str
    func: Callable[..., Any]
    deps: tuple[DepSpec, ...]
    outs: tuple[OutSpec, ...]
    params_arg: str | None  # parameter receiving StageParams
    params: StageParams | None  # effective params instance
    mutex: tuple[str, ...]

    @property
    def dep_paths(self) -> list[str]:
        """Every dependency path, flattened; IncrementalOut paths are not deps."""
        return [p for d in self.deps if not d.incremental for p in d.paths]

    @property
    def out_paths(self) -> list[str]:
        return [o.path for o in self.outs]

    def describe(self) -> dict[str, Any]:
        """A JSON-ready, stable description (used by `pivot list --json`)."""
        return {
            "name": self.name,
            "function": f"{self.func.__module__}.{self.func.__qualname__}",
            "deps": self.dep_paths,
            "outs": [
                {"path": o.path, "key": o.key, "kind": o.kind, "cache": o.cache} for o in self.outs
            ],
            "params": self.params.model_dump(mode="json") if self.params is not None else None,
            "mutex": list(self.mutex),
        }
