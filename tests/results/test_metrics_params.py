"""pivot metrics / params show|diff on a real git repository with several commits."""

from __future__ import annotations

import json

from _pivot_helpers import run_ok
from _results_project import Project, git


def _rows(text: str) -> list[list[str]]:
    """Table lines split into cells (rich's simple table: cells separated by 2+ spaces)."""
    import re

    lines = [ln.strip() for ln in text.splitlines()]
    return [re.split(r"\s{2,}", ln) for ln in lines if ln and not set(ln) <= set("─━ ")]


def test_metrics_show_workspace_and_revisions(repo: Project) -> None:
    out = run_ok(repo.cli("metrics", "show")).stdout
    rows = _rows(out)
    assert rows[0] == ["Path", "Metric", "workspace"]
    assert ["metrics.json", "eval.acc", "0.5"] in rows
    assert ["metrics.json", "loss", "0.07692"] in rows  # default precision 5

    doc = json.loads(
        run_ok(repo.cli("metrics", "show", "--rev", "v1", "-r", "v2", "--json")).stdout
    )
    assert doc["v1"]["metrics.json"] == {"loss": 0.2, "eval.acc": 0.3, "eval.n": 3, "name": "m"}
    assert doc["v2"]["metrics.json"]["eval.n"] == 4
    # a target that is a stage name selects its metric files
    assert "metrics.json" in run_ok(repo.cli("metrics", "show", "train")).stdout


def test_metrics_diff_head_vs_workspace(repo: Project) -> None:
    proc = repo.sh("metrics", "diff")  # the real console script
    assert proc.returncode == 0, proc.stderr
    rows = _rows(proc.stdout)
    assert rows[0] == ["Path", "Metric", "HEAD", "workspace", "Change"]
    assert ["metrics.json", "eval.acc", "0.4", "0.5", "0.1"] in rows
    assert ["metrics.json", "eval.n", "4", "5", "1"] in rows
    assert ["metrics.json", "loss", "0.11111", "0.07692", "-0.03419"] in rows
    assert not any(r[1] == "name" for r in rows)  # unchanged: hidden by default

    rows = _rows(run_ok(repo.cli("metrics", "diff", "-a", "--precision", "2")).stdout)
    assert ["metrics.json", "name", "m", "m", "-"] in rows
    assert ["metrics.json", "loss", "0.11", "0.08", "-0.03"] in rows

    md = run_ok(repo.cli("metrics", "diff", "--md")).stdout.splitlines()
    assert md[0] == "| Path | Metric | HEAD | workspace | Change |"
    assert md[1].startswith("|---") and "| metrics.json | eval.n | 4 | 5 | 1 |" in md


def test_metrics_diff_two_revisions_json(repo: Project) -> None:
    doc = json.loads(run_ok(repo.cli("metrics", "diff", "v1", "v2", "--json")).stdout)
    assert doc["old"] == "v1" and doc["new"] == "v2"
    m = doc["metrics"]["metrics.json"]
    assert m["eval.n"] == {"old": 3, "new": 4, "diff": 1}
    assert m["loss"]["old"] == 0.2 and m["loss"]["new"] == 0.111111
    assert "name" not in m
    doc = json.loads(run_ok(repo.cli("metrics", "diff", "v1", "v2", "--json", "-a")).stdout)
    assert doc["metrics"]["metrics.json"]["name"] == {"old": "m", "new": "m"}


def test_params_show_and_diff(repo: Project) -> None:
    rows = _rows(run_ok(repo.cli("params", "show")).stdout)
    assert rows[0] == ["Stage", "Param", "workspace"]
    assert ["train", "lr", "0.3"] in rows and ["train", "opt.name", "sgd"] in rows
    assert ["report", "title", "weekly"] in rows

    rows = _rows(run_ok(repo.cli("params", "diff")).stdout)
    assert rows[1:] == [["train", "lr", "0.2", "0.3", "0.1"]]  # only what changed
    rows = _rows(run_ok(repo.cli("params", "diff", "-a")).stdout)
    assert ["train", "opt.momentum", "0.9", "0.9", "0.0"] in rows

    # v1 has no lock for `report`: its params show as absent on that side
    doc = json.loads(run_ok(repo.cli("params", "diff", "v1", "v2", "--json")).stdout)
    assert doc["params"]["train"]["lr"] == {"old": 0.1, "new": 0.2, "diff": 0.1}
    assert doc["params"]["report"]["title"] == {"old": None, "new": "weekly"}
    md = run_ok(repo.cli("params", "show", "--rev", "v1", "--md")).stdout
    assert "| train | lr | 0.1 |" in md


def test_revision_without_lock_for_requested_stage(repo: Project) -> None:
    proc = repo.sh("params", "diff", "v1", "v2", "-s", "report")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "Error: v1: no lock for stage 'report' (.pivot/stages/report.lock)"
    )


def test_unknown_revision_is_one_line(repo: Project) -> None:
    for args in (("metrics", "diff", "nope"), ("params", "show", "-r", "nope")):
        result = repo.cli(*args)
        assert result.exit_code == 1
        assert result.stderr.strip() == "Error: unknown revision 'nope'"
    assert "Traceback" not in repo.sh("metrics", "diff", "v1", "nope").stderr


def test_bad_lock_at_revision_names_revision_and_file(repo: Project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from _results_project import copy

    proj = copy(repo, tmp_path / "p")
    lock = proj.root / ".pivot/stages/train.lock"
    lock.write_text(lock.read_text().replace('"schema_version": 1', '"schema_version": "x"'))
    git(proj.root, "commit", "-q", "-am", "broken lock")
    result = proj.cli("metrics", "diff", "HEAD~1", "HEAD")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: HEAD:.pivot/stages/train.lock: schema_version")
