"""End to end: a clean clone with committed locks and a restored cache runs nothing."""

from __future__ import annotations

import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "cli"))  # _pivot_helpers

from _pivot_helpers import CHAIN_PIPELINE, DIR_PIPELINE, Project, git, jsonl, make_project

# The chain pipeline plus a stage writing a directory output.
_DIR_STAGE = DIR_PIPELINE.split("from pivot.pipeline import Pipeline\n", 1)[1].split(
    "pipeline = Pipeline", 1
)[0]
PIPELINE = CHAIN_PIPELINE.replace("pipeline = Pipeline(", _DIR_STAGE + "\npipeline = Pipeline(")
PIPELINE += "pipeline.register(make_shards)\n"


def test_clone_with_restored_cache_runs_nothing(tmp_path: pathlib.Path) -> None:
    origin = make_project(tmp_path / "origin", PIPELINE, git_init=True)
    first = origin.sh("repro", "--json", check=True)
    assert jsonl(first.stdout)[-1]["ran"] == 5
    assert sorted(origin.runs()) == ["evaluate", "make_shards", "other", "prepare", "train"]

    # Commit what a user commits: code, inputs, locks, config, metrics; not cached outputs.
    origin.write(
        ".gitignore",
        "runs.log\n/data/prepared.txt\n/model.txt\n/other.txt\n/shards/\n",
    )
    git(origin.root, "add", "-A")
    tracked = git(origin.root, "ls-files").split()
    assert ".pivot/stages/train.lock" in tracked
    assert "model.txt" not in tracked
    assert not any(p.startswith(".pivot/cache") for p in tracked)
    git(origin.root, "commit", "-q", "-m", "pipeline with locks")

    clone_root = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin.root), str(clone_root))
    clone = Project(clone_root)
    assert not clone.exists("model.txt")
    assert not clone.exists(".pivot/cache")
    # a CI runner restoring its cache
    shutil.copytree(origin.root / ".pivot" / "cache", clone_root / ".pivot" / "cache")

    status = clone.sh("status")
    assert status.returncode == 0, status.stderr

    result = clone.sh("repro", "--json")
    assert result.returncode == 0, result.stderr
    events = jsonl(result.stdout)
    assert events[-1]["type"] == "execution_result"
    assert events[-1]["ran"] == 0
    assert events[-1]["failed"] == 0
    assert events[-1]["skipped"] == 5
    assert not clone.exists("runs.log")  # no stage body executed
    # outputs were restored from the cache
    assert clone.read("model.txt") == "model of HELLO\n"
    assert sorted(p.name for p in (clone_root / "shards").iterdir()) == [
        "part-0.txt",
        "part-1.txt",
        "part-2.txt",
    ]
    verify = clone.sh("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # locks are byte-identical: nothing was rewritten
    assert git(clone_root, "status", "--porcelain", ".pivot").strip() == ""


def test_clone_without_cache_reruns(tmp_path: pathlib.Path) -> None:
    origin = make_project(tmp_path / "origin", CHAIN_PIPELINE, git_init=True)
    origin.sh("repro", check=True)
    origin.write(".gitignore", "runs.log\n/data/prepared.txt\n/model.txt\n/other.txt\n")
    git(origin.root, "add", "-A")
    git(origin.root, "commit", "-q", "-m", "x")
    clone_root = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin.root), str(clone_root))
    clone = Project(clone_root)
    assert clone.sh("verify").returncode == 1
    result = clone.sh("repro", "--json")
    assert result.returncode == 0, result.stderr
    # prepare/train/other have no cached outputs: they run; evaluate's inputs are then
    # byte-identical to the lock, so it is skipped.
    assert jsonl(result.stdout)[-1]["ran"] == 3
    assert sorted(clone.runs()) == ["other", "prepare", "train"]
