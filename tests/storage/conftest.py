"""Fixtures for the cache tests: a project directory with `.pivot/cache` and `.pivot/state`."""

from __future__ import annotations

from pathlib import Path

import pytest

from pivot.storage.cache import Cache


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with `.pivot/cache` and `.pivot/state`."""
    root = tmp_path / "proj"
    (root / ".pivot" / "cache").mkdir(parents=True)
    (root / ".pivot" / "state").mkdir(parents=True)
    return root


@pytest.fixture
def cache(project: Path) -> Cache:
    return Cache(project / ".pivot" / "cache", project / ".pivot" / "state")
