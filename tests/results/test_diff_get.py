"""pivot diff (outputs and files inside directory outputs) and pivot get --rev."""

from __future__ import annotations

import json
import pathlib
import stat

from _pivot_helpers import run_ok
from _results_project import Project, copy, git


def test_diff_between_commits_lists_files_inside_directories(repo: Project) -> None:
    proc = repo.sh("diff", "v1", "v2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "Added:",
        "    plots/bars.json",
        "    shards/part-3.txt",
        "Modified:",
        "    data/raw/",
        "    data/raw/b.txt",
        "    metrics.json",
        "    plots/curve.csv",
        "    shards/",
    ]
    assert "2 added, 5 modified, 0 deleted (v1 -> v2)" in proc.stderr

    doc = json.loads(run_ok(repo.cli("diff", "v2", "v1", "--json")).stdout)
    assert doc["old"] == "v2" and doc["new"] == "v1"
    assert doc["added"] == []
    assert doc["deleted"] == [{"path": "plots/bars.json"}, {"path": "shards/part-3.txt"}]


def test_diff_head_vs_workspace_and_targets(repo: Project) -> None:
    doc = json.loads(run_ok(repo.cli("diff", "--json")).stdout)
    assert doc["old"] == "HEAD" and doc["new"] == "workspace"
    assert doc["added"] == [{"path": "shards/part-4.txt"}]
    assert [m["path"] for m in doc["modified"]] == ["metrics.json", "plots/curve.csv", "shards/"]

    doc = json.loads(run_ok(repo.cli("diff", "v1", "shards", "--json")).stdout)
    assert doc["added"] == [{"path": "shards/part-3.txt"}, {"path": "shards/part-4.txt"}]
    assert doc["modified"] == [{"path": "shards/"}]
    doc = json.loads(run_ok(repo.cli("diff", "v1", "v2", "shards/part-3.txt", "--json")).stdout)
    assert doc["added"] == [{"path": "shards/part-3.txt"}] and doc["modified"] == []
    doc = json.loads(run_ok(repo.cli("diff", "v1", "v2", "report", "--json")).stdout)
    assert doc["added"] == [{"path": "plots/bars.json"}] and doc["modified"] == []

    result = repo.cli("diff", "v1", "v2", "nothing/here")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: nothing/here: not an output, tracked path or stage at v1 or v2"
    )


def test_diff_manifest_missing_from_cache(repo: Project, tmp_path: pathlib.Path) -> None:
    proj = copy(repo, tmp_path / "p")
    out = git(proj.root, "show", "v1:.pivot/stages/train.lock")
    digest = json.loads(out)["outs"]["shards"]["hash"]
    (proj.root / ".pivot/cache/files" / digest[:2] / digest[2:]).unlink()
    proc = proj.sh("diff", "v1", "v2")
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"Error: v1:shards: directory manifest {digest} is not in the local cache"
    )


def test_get_directory_file_and_metric_at_old_revision(
    repo: Project, tmp_path: pathlib.Path
) -> None:
    dest = tmp_path / "old-shards"
    proc = repo.sh("get", "--rev", "v1", "shards", "-o", str(dest))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["part-0.txt", "part-1.txt", "part-2.txt"]
    assert (dest / "part-1.txt").read_text() == "bbb"
    mode = (dest / "part-1.txt").stat().st_mode
    assert mode & stat.S_IWUSR  # a writable copy, not a link to a read-only cache object
    assert (dest / "part-1.txt").stat().st_ino != (repo.root / "shards/part-1.txt").stat().st_ino

    again = repo.sh("get", "--rev", "v1", "shards", "-o", str(dest))
    assert again.returncode == 1
    assert again.stderr.strip() == f"Error: {dest}: already exists; use --force to overwrite"
    (dest / "extra").write_text("x")
    run_ok(repo.cli("get", "--rev", "v2", "shards", "-o", str(dest), "--force"))
    assert sorted(p.name for p in dest.iterdir()) == [f"part-{i}.txt" for i in range(4)]

    one = tmp_path / "one.txt"
    run_ok(repo.cli("get", "-r", "v2", "shards/part-3.txt", "-o", str(one)))
    assert one.read_text() == "ddd"
    metric = tmp_path / "m.json"
    run_ok(repo.cli("get", "-r", "v1", "metrics.json", "-o", str(metric)))
    assert json.loads(metric.read_text())["loss"] == 0.2
    raw = tmp_path / "b.txt"
    run_ok(repo.cli("get", "-r", "v1", "data/raw/b.txt", "-o", str(raw)))  # tracked directory
    assert raw.read_text() == "2"
    curve = tmp_path / "curve.csv"
    run_ok(repo.cli("get", "-r", "v1", "plots/curve.csv", "-o", str(curve)))
    assert curve.read_text().splitlines()[:2] == ["step,loss", "0,1.0"]


def test_get_errors_name_revision_and_path(repo: Project, tmp_path: pathlib.Path) -> None:
    result = repo.cli("get", "-r", "v1", "shards/part-3.txt", "-o", str(tmp_path / "x"))
    assert result.exit_code == 1
    assert (
        result.stderr.strip() == "Error: v1:shards/part-3.txt: not in the directory output shards"
    )
    result = repo.cli("get", "-r", "v1", "plots/bars.json", "-o", str(tmp_path / "x"))
    assert result.stderr.strip() == (
        "Error: v1: plots/bars.json is not an output, a tracked path or a committed file"
    )
    result = repo.cli("get", "-r", "nope", "shards")
    assert result.stderr.strip() == "Error: unknown revision 'nope'"

    proj = copy(repo, tmp_path / "p")
    digest = json.loads(git(proj.root, "show", "v1:.pivot/stages/train.lock"))["outs"][
        "plots/curve.csv"
    ]["hash"]
    (proj.root / ".pivot/cache/files" / digest[:2] / digest[2:]).unlink()
    result = proj.cli("get", "-r", "v1", "plots/curve.csv", "-o", str(tmp_path / "c.csv"))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: v1:plots/curve.csv: object {digest} is not in the local cache"
    )
    assert not (tmp_path / "c.csv").exists()
