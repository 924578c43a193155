"""The real `pivot` console script in subprocesses: streams, exit codes, errors."""

from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "cli"))  # _pivot_helpers

from _pivot_helpers import Project, jsonl, make_project


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    return make_project(tmp_path / "p", git_init=True)


def test_repro_console_and_json(proj: Project) -> None:
    first = proj.sh("repro")
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    err = first.stderr.splitlines()
    assert any(line.startswith("✓ prepare done ") and line.endswith("s") for line in err)
    assert err[-1].startswith("Summary: 4 ran, 0 cached, 0 blocked, 0 failed [")

    second = proj.sh("repro", "--json")
    assert second.returncode == 0
    events = jsonl(second.stdout)  # stdout is only JSON lines
    assert events[0] == {"type": "schema_version", "version": 1}
    assert events[-1]["ran"] == 0 and events[-1]["skipped"] == 4
    assert "Summary" not in second.stderr


def test_failure_exit_code_and_output(proj: Project) -> None:
    proj.write("FAIL_train", "")
    result = proj.sh("repro")
    assert result.returncode == 1
    assert "✗ train FAILED" in result.stderr
    assert "RuntimeError: intentional failure in train" in result.stderr
    assert "⊘ evaluate blocked" in result.stderr or "evaluate" not in result.stderr


def test_usage_errors_exit_2(proj: Project) -> None:
    r = proj.sh("run")
    assert r.returncode == 2
    assert "Missing argument 'STAGES...'" in r.stderr
    r = proj.sh("repro", "--allow-missing")
    assert r.returncode == 2
    assert "--allow-missing can only be used with --dry-run" in r.stderr
    r = proj.sh("dry-run")
    assert r.returncode == 2
    assert "No such command" in r.stderr


def test_errors_one_line_traceback_with_verbose(proj: Project) -> None:
    proj.write("pipeline.py", "raise ValueError('broken pipeline file')\n")
    r = proj.sh("repro")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    v = proj.sh("-v", "repro")
    assert v.returncode == 1
    assert "Traceback" in v.stderr


def test_unknown_stage_one_line(proj: Project) -> None:
    r = proj.sh("status", "trian")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "trian" in r.stderr and "train" in r.stderr


def test_not_a_project(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    r = Project(root).sh("repro")
    assert r.returncode == 1
    assert r.stderr.startswith("Error: ")
    assert "pivot init" in r.stderr


def test_status_quiet_and_verify(proj: Project) -> None:
    assert proj.sh("status", "-q").returncode == 1
    assert proj.sh("verify").returncode == 1
    assert proj.sh("repro").returncode == 0
    assert proj.sh("verify").returncode == 0


def test_no_commit_then_commit(proj: Project) -> None:
    assert proj.sh("repro", "--no-commit").returncode == 0
    assert not proj.lock("train").exists()
    c = proj.sh("commit")
    assert c.returncode == 0, c.stderr
    assert c.stdout.splitlines()[0] == "Committed 4 stage(s):"
    proj.clear_runs()
    r = proj.sh("repro", "--json")
    assert jsonl(r.stdout)[-1]["ran"] == 0
    assert proj.runs() == []
