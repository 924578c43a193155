"""Fixtures for engine tests: real temporary projects (`.pivot/`, pipeline.py, data)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _engine_helpers import Proj


@pytest.fixture(autouse=True)
def _isolate_imports() -> Iterator[None]:
    """Loading a pipeline puts its directory on sys.path and imports modules; undo that."""
    path = list(sys.path)
    modules = set(sys.modules)
    cwd = os.getcwd()
    yield
    os.chdir(cwd)
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith("_pivot_pipeline"):  # never pivot's own: exception classes must stay
            del sys.modules[name]


@pytest.fixture
def proj(tmp_path: Path) -> Proj:
    from pivot import project

    root = tmp_path / "proj"
    root.mkdir()
    project.init(root)
    return Proj(root)
