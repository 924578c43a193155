"""`pivot run`: exact stages, given order, keep-going by default (docs/cli.md, "pivot run")."""

from __future__ import annotations

import pathlib

import pytest
from _pivot_helpers import Project, make_project, run_ok


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    return make_project(tmp_path / "p")


def test_run_requires_stages(proj: Project) -> None:
    result = proj.cli("run")
    assert result.exit_code == 2
    assert "Missing argument 'STAGES...'" in result.output


def test_run_executes_only_named_stages(proj: Project) -> None:
    proj.write("data/prepared.txt", "pre-existing\n")
    run_ok(proj.cli("run", "train"))
    assert proj.runs() == ["train"]
    assert proj.read("data/prepared.txt") == "pre-existing\n"
    assert proj.read("model.txt") == "model of pre-existing\n"
    assert proj.lock("train").exists()
    assert not proj.lock("prepare").exists()


def test_run_in_given_order(proj: Project) -> None:
    run_ok(proj.cli("run", "other", "prepare", "-j", "1"))
    assert proj.runs() == ["other", "prepare"]


def test_run_keeps_going_by_default(proj: Project) -> None:
    proj.write("FAIL_prepare", "")
    result = run_ok(proj.cli("run", "prepare", "other", "-j", "1"), 1)
    assert proj.runs() == ["prepare", "other"]
    assert proj.exists("other.txt")
    assert "✗ prepare FAILED" in result.stderr
    assert "✓ other done" in result.stderr
    assert "Summary: 1 ran, 0 cached, 0 blocked, 1 failed" in result.stderr


def test_run_fail_fast_stops(proj: Project) -> None:
    proj.write("FAIL_prepare", "")
    run_ok(proj.cli("run", "prepare", "other", "--fail-fast", "-j", "1"), 1)
    assert proj.runs() == ["prepare"]
    assert not proj.exists("other.txt")


def test_run_skips_unchanged_and_force(proj: Project) -> None:
    run_ok(proj.cli("run", "other"))
    proj.clear_runs()
    result = run_ok(proj.cli("run", "other"))
    assert proj.runs() == []
    assert "○ other cached" in result.stderr
    run_ok(proj.cli("run", "other", "--force"))
    assert proj.runs() == ["other"]


def test_run_has_no_dry_run_or_explain(proj: Project) -> None:
    for flag in ("--dry-run", "--explain", "--allow-missing", "--keep-going"):
        result = proj.cli("run", "other", flag)
        assert result.exit_code == 2, flag
        assert "No such option" in result.output


def test_run_unknown_stage(proj: Project) -> None:
    result = proj.cli("run", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "nope" in result.stderr
    assert proj.runs() == []
