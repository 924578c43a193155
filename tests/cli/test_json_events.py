"""`--json` on repro/run: the JSONL event stream (docs/cli.md, "--json events"), and nothing else on stdout."""

from __future__ import annotations

import datetime
import pathlib

import pytest
from _pivot_helpers import Project, jsonl, make_project, ran_project, run_ok


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    return make_project(tmp_path / "p")


@pytest.fixture
def ran(tmp_path: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    return ran_project(tmp_path_factory, tmp_path / "p")


def _check_stream(events: list[dict[str, object]], n_stages: int) -> None:
    assert events[0] == {"type": "schema_version", "version": 1}
    assert events[-1]["type"] == "execution_result"
    assert set(events[-1]) == {
        "type",
        "ran",
        "skipped",
        "failed",
        "blocked",
        "total_duration_ms",
        "timestamp",
    }
    ts = datetime.datetime.fromisoformat(str(events[-1]["timestamp"]))
    assert ts.utcoffset() == datetime.timedelta(0)
    for e in events[1:-1]:
        assert e["type"] in ("stage_start", "stage_complete")
        if e["type"] == "stage_start":
            assert set(e) == {"type", "stage", "index", "total"}
        else:
            assert set(e) == {
                "type",
                "stage",
                "status",
                "reason",
                "duration_ms",
                "index",
                "total",
            }
            assert e["status"] in ("ran", "skipped", "failed", "blocked")
            assert isinstance(e["duration_ms"], (int, float))
        assert e["total"] == n_stages
        assert 0 <= int(str(e["index"])) <= n_stages
    completes = [e for e in events if e["type"] == "stage_complete"]
    assert len(completes) == n_stages
    result = events[-1]
    for status in ("ran", "skipped", "failed", "blocked"):
        assert result[status] == sum(1 for e in completes if e["status"] == status)


def test_repro_json_events(proj: Project) -> None:
    result = run_ok(proj.cli("repro", "--json"))
    events = jsonl(result.stdout)  # every stdout line is JSON
    _check_stream(events, 4)
    assert events[-1]["ran"] == 4
    starts = [e["stage"] for e in events if e["type"] == "stage_start"]
    assert sorted(starts) == ["evaluate", "other", "prepare", "train"]
    # no console lines on stdout or stderr
    assert "Summary:" not in result.output
    assert "✓" not in result.output


def test_repro_json_second_run_skipped(ran: Project) -> None:
    proj = ran
    result = run_ok(proj.cli("repro", "--json"))
    events = jsonl(result.stdout)
    _check_stream(events, 4)
    completes = [e for e in events if e["type"] == "stage_complete"]
    assert {e["status"] for e in completes} == {"skipped"}
    assert {e["reason"] for e in completes} == {"unchanged"}
    assert events[-1]["ran"] == 0 and events[-1]["skipped"] == 4


def test_repro_json_failure_and_blocked(proj: Project) -> None:
    proj.write("FAIL_prepare", "")
    result = run_ok(proj.cli("repro", "--json", "-k", "-j", "1"), 1)
    events = jsonl(result.stdout)
    _check_stream(events, 4)
    by_stage = {e["stage"]: e for e in events if e["type"] == "stage_complete"}
    assert by_stage["prepare"]["status"] == "failed"
    assert by_stage["other"]["status"] == "ran"
    # blocked stages keep their status, are counted apart from failures and never start
    assert by_stage["train"]["status"] == "blocked"
    assert by_stage["train"]["reason"] == "blocked by prepare"
    assert by_stage["evaluate"]["status"] == "blocked"
    starts = {e["stage"] for e in events if e["type"] == "stage_start"}
    assert "train" not in starts
    assert events[-1]["failed"] == 1
    assert events[-1]["blocked"] == 2


def test_repro_json_fail_fast_blocked(proj: Project) -> None:
    proj.write("FAIL_prepare", "")
    events = jsonl(run_ok(proj.cli("repro", "--json", "-j", "1"), 1).stdout)
    _check_stream(events, 4)
    blocked = [e for e in events if e["type"] == "stage_complete" and e["status"] == "blocked"]
    assert blocked and all(str(e["reason"]).startswith(("blocked", "not run")) for e in blocked)
    assert events[-1]["failed"] == 1
    assert events[-1]["blocked"] == len(blocked)


def test_run_json_events(proj: Project) -> None:
    result = run_ok(proj.cli("run", "other", "--json"))
    events = jsonl(result.stdout)
    _check_stream(events, 1)
    assert [e["type"] for e in events] == [
        "schema_version",
        "stage_start",
        "stage_complete",
        "execution_result",
    ]
    assert events[1] == {
        "type": "stage_start",
        "stage": "other",
        "index": events[1]["index"],
        "total": 1,
    }


def test_json_no_stages(tmp_path: pathlib.Path) -> None:
    empty = "from pivot.pipeline import Pipeline\npipeline = Pipeline('empty')\n"
    proj = make_project(tmp_path / "p", empty)
    events = jsonl(run_ok(proj.cli("repro", "--json")).stdout)
    assert events[0] == {"type": "schema_version", "version": 1}
    assert events[-1]["type"] == "execution_result"
    assert events[-1]["ran"] == 0
    assert len(events) == 2
