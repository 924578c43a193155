"""`--json` on commit, checkout, track and dag: one JSON document alone on stdout."""

from __future__ import annotations

import json
import pathlib

import pytest
from _pivot_helpers import Project, make_project, ran_project, run_ok


@pytest.fixture
def ran(tmp_path: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    return ran_project(tmp_path_factory, tmp_path / "p")


def test_commit_json(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    run_ok(proj.cli("repro", "--no-commit"))
    (proj.root / "model.txt").unlink()
    result = run_ok(proj.cli("commit", "--json"), 1)
    doc = json.loads(result.stdout)
    assert doc["committed"] == ["prepare", "other"]
    assert set(doc["failed"]) == {"train", "evaluate"}
    assert "model.txt" in doc["failed"]["train"]
    again = json.loads(run_ok(proj.cli("commit", "--json", "prepare")).stdout)
    assert again == {"committed": ["prepare"], "failed": {}}


def test_checkout_json(ran: Project) -> None:
    (ran.root / "model.txt").unlink()
    ran.write("other.txt", "edited by hand\n")
    result = run_ok(ran.cli("checkout", "--json"), 1)
    doc = json.loads(result.stdout)
    assert doc["restored"] == ["model.txt"]
    assert doc["skipped"] == ["data/prepared.txt"]
    assert list(doc["refused"]) == ["other.txt"]
    assert "--force" in doc["refused"]["other.txt"]
    assert doc["missing"] == {}


def test_track_json(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    proj.write("raw/a.txt", "a\n")
    proj.write("raw/b.txt", "b\n")
    proj.write("one.csv", "x\n")
    doc = json.loads(run_ok(proj.cli("track", "--json", "raw", "one.csv")).stdout)
    entries = {e["path"]: e for e in doc["tracked"]}
    assert entries["raw"]["pvt"] == "raw.pvt" and entries["raw"]["is_dir"] is True
    assert entries["raw"]["nfiles"] == 2
    assert entries["one.csv"]["size"] == 2 and entries["one.csv"]["is_dir"] is False
    for path, entry in entries.items():
        pvt = json.loads(proj.read(path + ".pvt"))
        assert pvt["hash"] == entry["hash"] and len(entry["hash"]) == 64


def test_dag_json(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    doc = json.loads(run_ok(proj.cli("dag", "--json")).stdout)
    assert [n["name"] for n in doc["nodes"]] == ["prepare", "train", "evaluate", "other"]
    assert {"name": "train", "upstream": ["prepare"]} in doc["nodes"]
    assert {"from": "train", "to": "evaluate", "paths": ["model.txt"]} in doc["edges"]
    assert len(doc["edges"]) == 2
    assert run_ok(proj.cli("dag", "--json", "--dot"), 2).exit_code == 2
