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


def test_nested_tracking_is_refused_both_ways(proj: Project) -> None:
    proj.write("images/a.txt", "a")
    proj.write("images/sub/b.txt", "b")
    run_ok(proj.cli("track", "images"))
    inner = proj.cli("track", "images/sub")
    assert inner.exit_code == 1
    assert "images/sub: overlaps tracked path images (images.pvt)" in inner.output
    assert not proj.exists("images/sub.pvt")
    # The other way round: a directory holding a tracked path.
    proj.write("raw/x/y.txt", "y")
    run_ok(proj.cli("track", "raw/x"))
    outer = proj.cli("track", "raw")
    assert outer.exit_code == 1
    assert "raw: overlaps tracked path raw/x (raw/x.pvt)" in outer.output
    assert "Traceback" not in outer.output
    # Tracking the same path again is an update, not an overlap.
    proj.write("images/a.txt", "changed")
    run_ok(proj.cli("track", "images"))


def test_a_pvt_named_file_inside_a_tracked_directory_is_data(proj: Project) -> None:
    # Discovery does not descend into a tracked directory: a file there that merely ends in
    # `.pvt` is content of the tree, not a second record.
    proj.write("images/a.txt", "a")
    run_ok(proj.cli("track", "images"))
    proj.write("images/notes.pvt", "not a record")
    run_ok(proj.cli("track", "images"))
    status = run_ok(proj.cli("status"))
    assert "notes" not in status.output
    run_ok(proj.cli("checkout", "images"))
    assert proj.read("images/notes.pvt") == "not a record"
