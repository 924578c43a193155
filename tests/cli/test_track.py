"""`pivot track`: `.pvt` files for data not produced by a stage."""

from __future__ import annotations

import pathlib

import pytest
from _pivot_helpers import Project, make_project, run_ok


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    return make_project(tmp_path / "p")


def test_track_file(proj: Project) -> None:
    proj.write("data/raw.csv", "a,b\n1,2\n")
    result = run_ok(proj.cli("track", "data/raw.csv"))
    assert proj.exists("data/raw.csv.pvt")
    assert "data/raw.csv" in result.output
    assert proj.cache_objects()


def test_track_directory_and_checkout(proj: Project) -> None:
    proj.write("images/a.txt", "a")
    proj.write("images/b/c.txt", "c")
    run_ok(proj.cli("track", "images"))
    assert proj.exists("images.pvt")
    import shutil

    shutil.rmtree(proj.root / "images")
    run_ok(proj.cli("checkout", "images"))
    assert proj.read("images/b/c.txt") == "c"


def test_track_missing_path(proj: Project) -> None:
    result = proj.cli("track", "nope.csv")
    assert result.exit_code != 0
    assert "nope.csv" in result.output
    assert "Traceback" not in result.output


def test_track_requires_paths(proj: Project) -> None:
    result = proj.cli("track")
    assert result.exit_code == 2
