"""`pivot verify`: CI gate (every stage up to date, every cached output in the cache)."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
from _pivot_helpers import Project, make_project, ran_project, run_ok


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    return make_project(tmp_path / "p")


@pytest.fixture
def ran(tmp_path: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    return ran_project(tmp_path_factory, tmp_path / "p")


def test_verify_fails_before_first_run(proj: Project) -> None:
    result = run_ok(proj.cli("verify"), 1)
    assert "prepare" in result.output
    assert "No previous run" in result.output


def test_verify_passes_after_repro(ran: Project) -> None:
    proj = ran
    result = run_ok(proj.cli("verify"))
    assert "Traceback" not in result.output


def test_verify_stale_stage(ran: Project) -> None:
    proj = ran
    proj.write("input.txt", "changed\n")
    result = run_ok(proj.cli("verify"), 1)
    assert "prepare" in result.output
    assert "Input dependencies changed" in result.output
    # only the named stages (and upstream) are checked
    run_ok(proj.cli("repro", "other"))


def test_verify_missing_cache_object(ran: Project) -> None:
    proj = ran
    # outputs on disk are fine, but the cache lost its objects (e.g. a CI cache not restored)
    shutil.rmtree(proj.root / ".pivot" / "cache" / "files")
    for path in ("model.txt", "data/prepared.txt", "other.txt"):
        data = proj.read(path)
        (proj.root / path).unlink()
        proj.write(path, data)
    result = run_ok(proj.cli("verify"), 1)
    assert "model.txt" in result.output
    assert "Traceback" not in result.output


def test_verify_json(ran: Project) -> None:
    proj = ran
    ok = json.loads(run_ok(proj.cli("verify", "--json")).stdout)
    assert ok["ok"] is True
    proj.write("input.txt", "changed\n")
    result = run_ok(proj.cli("verify", "--json"), 1)
    bad = json.loads(result.stdout)
    assert bad["ok"] is False
    assert bad["stages"]["prepare"]["up_to_date"] is False
    assert bad["stages"]["prepare"]["reason"] == "Input dependencies changed"
    assert bad["problems"]


def test_verify_quiet(ran: Project) -> None:
    proj = ran
    assert proj.cli("-q", "verify").output == ""
    proj.write("input.txt", "changed\n")
    assert proj.cli("-q", "verify").exit_code == 1
