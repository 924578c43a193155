"""`pivot repro`: DAG-aware runs, dry-run, explain, fail-fast vs keep-going (docs/cli.md, "pivot repro")."""

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


def test_repro_runs_all_stages(proj: Project) -> None:
    result = run_ok(proj.cli("repro"))
    assert sorted(proj.runs()) == ["evaluate", "other", "prepare", "train"]
    assert proj.read("data/prepared.txt") == "HELLO\n"
    assert proj.read("model.txt") == "model of HELLO\n"
    assert json.loads(proj.read("metrics.json")) == {"length": len("model of HELLO\n")}
    for stage in ("prepare", "train", "evaluate", "other"):
        assert proj.lock(stage).exists()
    err = result.stderr
    assert "✓ prepare done " in err
    assert "Summary: 4 ran, 0 cached, 0 blocked, 0 failed [" in err
    assert result.stdout == ""


def test_repro_second_run_is_cached(ran: Project) -> None:
    proj = ran
    proj.clear_runs()
    result = run_ok(proj.cli("repro"))
    assert proj.runs() == []
    assert "○ train cached" in result.stderr
    assert "Summary: 0 ran, 4 cached, 0 blocked, 0 failed" in result.stderr


def test_repro_named_stage_runs_upstream_only(proj: Project) -> None:
    run_ok(proj.cli("repro", "train"))
    assert sorted(proj.runs()) == ["prepare", "train"]
    assert not proj.exists("metrics.json")
    assert not proj.exists("other.txt")


def test_repro_reruns_downstream_of_changed_input(ran: Project) -> None:
    proj = ran
    proj.clear_runs()
    proj.write("input.txt", "changed\n")
    run_ok(proj.cli("repro"))
    assert sorted(proj.runs()) == ["evaluate", "other", "prepare", "train"]


def test_repro_force_reruns(ran: Project) -> None:
    proj = ran
    proj.clear_runs()
    run_ok(proj.cli("repro", "--force", "prepare"))
    assert proj.runs() == ["prepare"]


def test_repro_restores_deleted_output_from_cache(ran: Project) -> None:
    proj = ran
    proj.clear_runs()
    (proj.root / "model.txt").unlink()
    run_ok(proj.cli("repro"))
    assert proj.runs() == []
    assert proj.read("model.txt") == "model of HELLO\n"


def test_repro_dry_run_text(proj: Project) -> None:
    result = run_ok(proj.cli("repro", "--dry-run"))
    lines = result.stdout.splitlines()
    assert lines[0] == "Would run:"
    assert "  prepare: would run (No previous run)" in lines
    assert "  train: would run (No previous run)" in lines or any(
        line.startswith("  train: would run (") for line in lines
    )
    assert proj.runs() == []
    assert not proj.lock("prepare").exists()


def test_repro_dry_run_after_run_says_skip(ran: Project) -> None:
    proj = ran
    result = run_ok(proj.cli("repro", "-n"))
    assert "  prepare: would skip (unchanged)" in result.stdout.splitlines()


def test_repro_dry_run_upstream_stale(ran: Project) -> None:
    proj = ran
    proj.write("input.txt", "new\n")
    result = run_ok(proj.cli("repro", "-n"))
    lines = result.stdout.splitlines()
    assert "  prepare: would run (Input dependencies changed)" in lines
    assert "  train: would run (Upstream stale (prepare))" in lines


def test_repro_dry_run_json(ran: Project) -> None:
    proj = ran
    proj.clear_runs()
    proj.write("input.txt", "new\n")
    result = run_ok(proj.cli("repro", "--dry-run", "--json"))
    data = json.loads(result.stdout)
    assert set(data) == {"stages"}
    assert data["stages"]["prepare"] == {
        "would_run": True,
        "reason": "Input dependencies changed",
    }
    assert data["stages"]["train"]["would_run"] is True
    assert data["stages"]["other"]["would_run"] is True
    assert proj.runs() == []


def test_repro_dry_run_json_unchanged(ran: Project) -> None:
    proj = ran
    proj.clear_runs()
    data = json.loads(run_ok(proj.cli("repro", "-n", "--json")).stdout)
    assert data["stages"]["evaluate"] == {"would_run": False, "reason": "unchanged"}
    assert proj.runs() == []


def test_repro_explain_names_changed_code(ran: Project) -> None:
    proj = ran
    proj.clear_runs()
    proj.write(
        "pipeline.py", CHAIN_PIPELINE.replace('return "model of " + data', 'return "m:" + data')
    )
    result = run_ok(proj.cli("repro", "--explain"))
    assert "train: would run (Code changed)" in result.stdout
    # the details name the changed fingerprint entry
    assert "train" in result.stdout.split("train: would run (Code changed)")[1].splitlines()[1]
    assert proj.runs() == []


def test_repro_explain_params_changed(tmp_path: pathlib.Path) -> None:
    pipeline = CHAIN_PIPELINE.replace(
        "from pivot.pipeline import Pipeline",
        "from pivot.pipeline import Pipeline\nfrom pivot.stage_def import StageParams\n\n"
        "class OtherParams(StageParams):\n    n: int = 1\n",
    ).replace(
        "def other(\n",
        "def other(\n    params: OtherParams,\n",
    )
    proj = make_project(tmp_path / "p", pipeline)
    run_ok(proj.cli("repro", "other"))
    proj.write("params.yaml", "other:\n  n: 2\n")
    result = run_ok(proj.cli("repro", "-e", "other"))
    assert "other: would run (Params changed)" in result.stdout
    assert "n" in result.stdout.split("(Params changed)")[1]


def test_allow_missing_requires_dry_run(proj: Project) -> None:
    result = proj.cli("repro", "--allow-missing")
    assert result.exit_code == 2
    assert "--allow-missing can only be used with --dry-run" in result.output
    assert proj.runs() == []


def test_allow_missing_with_dry_run_ok(proj: Project) -> None:
    result = run_ok(proj.cli("repro", "--dry-run", "--allow-missing"))
    assert result.stdout.startswith("Would run:")


def test_dry_run_is_not_a_command(proj: Project) -> None:
    result = proj.cli("dry-run")
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_repro_fail_fast_by_default(proj: Project) -> None:
    proj.write("FAIL_prepare", "")
    result = run_ok(proj.cli("repro", "-j", "1"), 1)
    runs = proj.runs()
    assert "prepare" in runs
    assert "train" not in runs and "evaluate" not in runs
    err = result.stderr
    assert "✗ prepare FAILED" in err
    assert "intentional failure in prepare" in err
    assert "Summary: " in err
    assert not proj.lock("prepare").exists()


def test_repro_keep_going_runs_independent_stages(proj: Project) -> None:
    proj.write("FAIL_prepare", "")
    result = run_ok(proj.cli("repro", "--keep-going", "-j", "1"), 1)
    runs = proj.runs()
    assert "other" in runs
    assert "train" not in runs
    assert proj.exists("other.txt")
    err = result.stderr
    assert "⊘ train blocked" in err
    assert "⊘ evaluate blocked" in err
    assert "✓ other done" in err
    assert "Summary: 1 ran, 0 cached, 2 blocked, 1 failed [" in err


def test_repro_failed_output_is_indented(proj: Project) -> None:
    proj.write("FAIL_other", "")
    result = run_ok(proj.cli("repro", "other"), 1)
    err_lines = result.stderr.splitlines()
    i = err_lines.index("✗ other FAILED")
    captured = err_lines[i + 1 :]
    assert any(line.startswith("    ") and "about to fail in other" in line for line in captured)


def test_repro_unknown_stage(proj: Project) -> None:
    result = proj.cli("repro", "trian")
    assert result.exit_code == 1
    assert "trian" in result.output
    assert "train" in result.output  # close-match suggestion
    assert "Traceback" not in result.output


def test_repro_quiet_prints_nothing(proj: Project) -> None:
    result = run_ok(proj.cli("-q", "repro"))
    assert result.output == ""
    assert len(proj.runs()) == 4


def test_repro_no_stages(tmp_path: pathlib.Path) -> None:
    empty = "from pivot.pipeline import Pipeline\npipeline = Pipeline('empty')\n"
    proj = make_project(tmp_path / "p", empty)
    result = run_ok(proj.cli("repro"))
    assert "No stages to run" in result.output
    dry = run_ok(proj.cli("repro", "-n"))
    assert dry.stdout.strip() == "No stages to run"
