"""Fixtures for pipeline tests: a temp project and isolation of sys.path/sys.modules.

Not a conftest.py: tests/cli imports the top-level `conftest` by name, and every conftest.py
in a package-less test directory is imported under that same module name.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(name="isolate_imports", autouse=True)
def isolate_imports_fixture() -> Iterator[None]:
    """Pipelines put their directory on sys.path and import user modules; undo that."""
    path = list(sys.path)
    modules = set(sys.modules)
    yield
    sys.path[:] = path
    tmp = tempfile.gettempdir()
    for name in set(sys.modules) - modules:
        # only user modules from temp projects: re-importing library modules would duplicate
        # their classes
        file = getattr(sys.modules[name], "__file__", None) or ""
        if name.startswith("_pivot_pipeline") or file.startswith(tmp):
            del sys.modules[name]


@pytest.fixture(name="project")
def project_fixture(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".pivot").mkdir(parents=True)
    return root


@pytest.fixture(name="write")
def write_fixture() -> Callable[[Path, str], Path]:
    def _write(path: Path, text: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write


@pytest.fixture(name="modname")
def modname_fixture() -> str:
    """A module name no other test uses (sys.modules caches sibling stage modules)."""
    return f"stages_{uuid.uuid4().hex[:10]}"
