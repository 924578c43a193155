"""Shared fixtures: real temporary projects (`.pivot/`, a git repository, files)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYTHON_SRC = REPO / "python"

MakeProject = Callable[..., Path]


def make_project(root: Path, files: Mapping[str, str] | None = None, *, git: bool = True) -> Path:
    """Create `root` with `.pivot/` (via `pivot.project.init`), optionally `git init`, and files."""
    from pivot import project

    root.mkdir(parents=True, exist_ok=True)
    project.init(root)
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    for rel, text in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(name="make_project")
def make_project_fixture() -> MakeProject:
    """`make_project(tmp_path, {"pipeline.py": ..., "data/x.csv": ...}) -> root`."""
    return make_project


def pivot_env(**extra: str) -> dict[str, str]:
    """Environment for a `pivot` subprocess that imports this checkout's package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PYTHON_SRC), env.get("PYTHONPATH", "")) if p
    )
    env.update(extra)
    return env


@pytest.fixture(name="pivot_env")
def pivot_env_fixture() -> Callable[..., dict[str, str]]:
    """`pivot_env(**extra) -> env` for subprocesses that import this checkout's package."""
    return pivot_env


def run_pivot(args: list[str], cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a fresh interpreter (`python -c 'from pivot.cli import main; main()'`)."""
    return subprocess.run(
        [sys.executable, "-c", "from pivot.cli import main; main()", *args],
        cwd=cwd,
        env=pivot_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(name="run_pivot")
def run_pivot_fixture() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`run_pivot(["list"], cwd=root) -> CompletedProcess` (text, stdout/stderr captured)."""
    return run_pivot
