"""pivot history / pivot show: runs recorded by repro and run in .pivot/state/history."""

from __future__ import annotations

import json
import pathlib

from _pivot_helpers import run_ok
from _results_project import Project, copy


def test_history_lists_runs_newest_first(repo: Project) -> None:
    proc = repo.sh("history", "--json")
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout)["runs"]
    assert [r["command"] for r in runs] == ["repro", "repro", "repro"]  # the fixture's runs
    assert [r["id"] for r in runs] == sorted((r["id"] for r in runs), reverse=True)
    newest = runs[0]
    assert newest["counts"] == {"ran": 2, "skipped": 0, "failed": 0, "blocked": 0}
    stages = {s["stage"]: s for s in newest["stages"]}
    assert stages["train"]["status"] == "ran" and stages["train"]["reason"] == "Params changed"
    assert stages["report"]["reason"] == "Upstream stale (train)"
    assert stages["train"]["duration_ms"] > 0
    first = runs[-1]
    assert [s["stage"] for s in first["stages"]] == ["train"]
    assert first["stages"][0]["reason"] == "No previous run"

    text = run_ok(repo.cli("history", "-n", "2")).stdout.splitlines()
    assert text[0].split() == ["Run", "Started", "Command", "Ran", "Skipped", "Failed", "Duration"]
    assert len([ln for ln in text if ln.startswith(runs[0]["id"][:8])]) == 2
    assert text[2].startswith(runs[0]["id"])


def test_show_run_stage_by_stage(repo: Project) -> None:
    runs = json.loads(run_ok(repo.cli("history", "--json")).stdout)["runs"]
    out = run_ok(repo.cli("show", "last")).stdout.splitlines()
    assert out[0].startswith(f"Run {runs[0]['id']}: pivot repro, started ")
    assert "2 ran, 0 skipped, 0 failed, 0 blocked" in out[1]
    assert any(ln.split()[:3] == ["✓", "train", "ran"] and "Params changed" in ln for ln in out)
    doc = json.loads(run_ok(repo.cli("show", runs[-1]["id"][:20], "--json")).stdout)
    assert doc == runs[-1]
    result = repo.cli("show", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no run 'nope' in ")


def test_every_run_is_recorded_with_its_outcome(repo: Project, tmp_path: pathlib.Path) -> None:
    proj = copy(repo, tmp_path / "p")
    run_ok(proj.cli("repro", "--dry-run"))  # not a run: nothing recorded
    proj.write("input.txt", "bad\n")
    failing = "    words = src.split()\n    assert words != ['bad'], 'bad input'"
    proj.write("pipeline.py", proj.read("pipeline.py").replace("    words = src.split()", failing))
    proc = proj.sh("run", "train", "report")
    assert proc.returncode == 1
    runs = json.loads(run_ok(proj.cli("history", "--json")).stdout)["runs"]
    assert len(runs) == 4
    last = runs[0]
    assert last["command"] == "run" and last["ok"] is False
    assert last["args"]["stages"] == ["train", "report"]
    by_stage = {s["stage"]: s for s in last["stages"]}
    assert by_stage["train"]["status"] == "failed"
    assert "bad input" in by_stage["train"]["reason"]


def test_retention_keeps_the_newest_runs(repo: Project, tmp_path: pathlib.Path) -> None:
    from pivot.project import Project as PivotProject
    from pivot.results import history

    proj = copy(repo, tmp_path / "p")
    project = PivotProject.load(proj.root)
    before = history.run_ids(project)
    for i in range(5):
        rec = {"schema_version": 1, "id": f"29990101-000000-00{i}-aaaaaa", "command": "repro"}
        history.write_record(project, rec, retention=3)
    kept = history.run_ids(project)
    assert kept == [f"29990101-000000-00{i}-aaaaaa" for i in (4, 3, 2)]
    assert not set(before) & set(kept)
    assert history.RETENTION == 100
