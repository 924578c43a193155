"""pivot: Python data pipelines with a Rust content-addressed core.

The public names below are imported lazily so that `import pivot` (and `pivot --help`) stays
cheap: pydantic and friends load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pivot import loaders, outputs
    from pivot.outputs import (
        Dep,
        DirectoryOut,
        IncrementalOut,
        Metric,
        Out,
        PlaceholderDep,
        Plot,
    )
    from pivot.pipeline import Pipeline
    from pivot.stage_def import StageParams

_LAZY = {
    "Dep": "pivot.outputs",
    "PlaceholderDep": "pivot.outputs",
    "Out": "pivot.outputs",
    "Metric": "pivot.outputs",
    "Plot": "pivot.outputs",
    "DirectoryOut": "pivot.outputs",
    "IncrementalOut": "pivot.outputs",
    "StageParams": "pivot.stage_def",
    "Pipeline": "pivot.pipeline",
}
_SUBMODULES = ("loaders", "outputs")

__all__ = [
    "Dep",
    "DirectoryOut",
    "IncrementalOut",
    "Metric",
    "Out",
    "Pipeline",
    "PlaceholderDep",
    "Plot",
    "StageParams",
    "__version__",
    "loaders",
    "outputs",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"pivot.{name}")
    else:
        raise AttributeError(f"module 'pivot' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
