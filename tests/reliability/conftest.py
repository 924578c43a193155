"""Fixtures of the reliability suite; the project helpers live in `_project.py` (a unique
module name: `conftest` is ambiguous when several test directories run together)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _project import Proj, make


@pytest.fixture
def proj(tmp_path: Path) -> Proj:
    """A fresh project (hardlink, then copy) that has not run yet."""
    return make(tmp_path / "proj")


@pytest.fixture
def built(tmp_path: Path) -> Proj:
    """A project after one successful `repro` (runs.log cleared)."""
    p = make(tmp_path / "proj")
    p.ok("repro")
    p.clear_runs()
    return p
