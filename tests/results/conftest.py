"""One git repository with several commits per test session (worker), shared read-only."""

from __future__ import annotations

import pytest
from _results_project import Project, build


@pytest.fixture(scope="session")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Built once; tests must not change it (copy it with `_results_project.copy`)."""
    return build(tmp_path_factory.mktemp("results") / "repo")
