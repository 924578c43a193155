"""`pivot status`: stale stages with reasons, -v, --explain, --json, -q exit codes."""

from __future__ import annotations

import json
import pathlib

import pytest
from _pivot_helpers import CHAIN_PIPELINE, Project, make_project, ran_project, run_ok


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    return make_project(tmp_path / "p")


@pytest.fixture
def ran(tmp_path: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    return ran_project(tmp_path_factory, tmp_path / "p")


def test_status_never_run(proj: Project) -> None:
    result = run_ok(proj.cli("status"))
    lines = result.stdout.splitlines()
    assert "  prepare: No previous run" in lines
    assert "  other: No previous run" in lines
    assert proj.runs() == []


def test_status_code_changed_and_upstream(ran: Project) -> None:
    proj = ran
    proj.write(
        "pipeline.py",
        CHAIN_PIPELINE.replace('return "model of " + data', 'return "model: " + data'),
    )
    result = run_ok(proj.cli("status"))
    lines = result.stdout.splitlines()
    assert "  train: Code changed" in lines
    assert "  evaluate: Upstream stale (train)" in lines
    assert not any(line.startswith("  prepare:") for line in lines)
    assert not any(line.startswith("  other:") for line in lines)


def test_status_verbose_lists_up_to_date(ran: Project) -> None:
    proj = ran
    proj.write("input.txt", "x\n")
    result = run_ok(proj.cli("status", "-v", "other"))
    assert "  other: Input dependencies changed" in result.stdout.splitlines()
    result = run_ok(proj.cli("status", "-v", "train"))
    lines = result.stdout.splitlines()
    assert "  prepare: Input dependencies changed" in lines
    assert "  train: Upstream stale (prepare)" in lines
    run_ok(proj.cli("repro"))
    result = run_ok(proj.cli("-v", "status"))
    assert "  train: unchanged" in result.stdout.splitlines()
    assert "All stages up to date" in result.stdout


def test_status_up_to_date(ran: Project) -> None:
    proj = ran
    result = run_ok(proj.cli("status"))
    assert result.stdout.strip() == "All stages up to date"


def test_status_deleted_output_is_stale(ran: Project) -> None:
    proj = ran
    (proj.root / "model.txt").unlink()
    result = run_ok(proj.cli("status"))
    assert "  train: Outputs missing or modified" in result.stdout.splitlines()


def test_status_quiet_exit_codes(proj: Project) -> None:
    result = proj.cli("status", "-q")
    assert result.exit_code == 1
    assert result.output == ""
    run_ok(proj.cli("repro"))
    result = proj.cli("status", "-q")
    assert result.exit_code == 0
    assert result.output == ""
    proj.write("input.txt", "changed\n")
    assert proj.cli("-q", "status").exit_code == 1
    # without -q stale is not an error (like `dvc status`)
    assert proj.cli("status").exit_code == 0


def test_status_json(ran: Project) -> None:
    proj = ran
    proj.write("input.txt", "changed\n")
    data = json.loads(run_ok(proj.cli("status", "--json")).stdout)
    assert set(data["stages"]) == {"prepare", "train", "evaluate", "other"}
    prepare = data["stages"]["prepare"]
    assert prepare["stale"] is True
    assert prepare["reason"] == "Input dependencies changed"
    assert any("input.txt" in d for d in prepare["details"])
    assert data["stages"]["train"] == {
        "stale": True,
        "reason": "Upstream stale (prepare)",
        "details": data["stages"]["train"]["details"],
    }


def test_status_explain(ran: Project) -> None:
    proj = ran
    proj.write("input.txt", "changed\n")
    result = run_ok(proj.cli("status", "--explain", "prepare"))
    lines = result.stdout.splitlines()
    assert lines[0] == "prepare: would run (Input dependencies changed)"
    assert any("input.txt" in line and line.startswith("    ") for line in lines[1:])


def test_status_does_not_run_or_write(proj: Project) -> None:
    run_ok(proj.cli("status"))
    assert proj.runs() == []
    assert not any((proj.root / ".pivot" / "stages").iterdir())
