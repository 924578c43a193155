"""Cached outputs and tracked data are written into `.gitignore` files (real git)."""

from __future__ import annotations

import pathlib

from _pivot_helpers import CHAIN_PIPELINE, DIR_PIPELINE, Project, git, make_project, run_ok


def _would_add(proj: Project) -> set[str]:
    out = git(proj.root, "add", "-A", "--dry-run")
    return {line.split("'", 2)[1] for line in out.splitlines() if line.startswith("add '")}


def test_repro_ignores_cached_outputs_keeps_locks_and_metrics(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p", CHAIN_PIPELINE, git_init=True)
    run_ok(proj.cli("repro"))
    staged = _would_add(proj)
    assert "model.txt" not in staged
    assert "other.txt" not in staged
    assert "data/prepared.txt" not in staged
    assert "metrics.json" in staged  # a Metric is not cached: it stays in git
    for stage in ("prepare", "train", "evaluate", "other"):
        assert f".pivot/stages/{stage}.lock" in staged
    assert {".gitignore", "data/.gitignore", "pipeline.py", "input.txt"} <= staged
    assert proj.read("data/.gitignore") == "/prepared.txt\n"
    assert sorted(proj.read(".gitignore").splitlines()) == ["/model.txt", "/other.txt"]
    porcelain = git(proj.root, "status", "--porcelain", "--untracked-files=all")
    assert "model.txt" not in porcelain and "metrics.json" in porcelain


def test_entries_are_idempotent_and_keep_user_lines(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p", DIR_PIPELINE, git_init=True)
    proj.write(".gitignore", "# mine\n*.tmp")  # no trailing newline
    run_ok(proj.cli("repro"))
    run_ok(proj.cli("repro", "-f"))
    run_ok(proj.cli("commit", "make_shards"))
    assert proj.read(".gitignore") == "# mine\n*.tmp\n/shards\n"
    assert not any(p.startswith("shards/") for p in _would_add(proj))
    # an entry the user wrote with a trailing slash counts as present
    proj.write(".gitignore", "/shards/\n")
    run_ok(proj.cli("repro", "-f"))
    assert proj.read(".gitignore") == "/shards/\n"


def test_track_ignores_data_not_pvt(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p", DIR_PIPELINE, git_init=True)
    proj.write("data/raw/a.csv", "1\n")
    proj.write("data/raw/b.csv", "2\n")
    proj.write("data/notes [v1].txt", "n\n")
    run_ok(proj.cli("track", "data/raw", "data/notes [v1].txt"))
    staged = _would_add(proj)
    assert "data/raw.pvt" in staged and "data/notes [v1].txt.pvt" in staged
    assert not any(p.startswith("data/raw/") for p in staged)
    assert "data/notes [v1].txt" not in staged
    assert proj.read("data/.gitignore") == "/raw\n/notes \\[v1].txt\n"


def test_opt_out_and_outside_git(tmp_path: pathlib.Path) -> None:
    off = make_project(tmp_path / "off", DIR_PIPELINE, git_init=True)
    off.write(".pivot/config.yaml", "core:\n  gitignore: false\n")
    run_ok(off.cli("repro"))
    assert not off.exists(".gitignore")
    assert "shards/part-0.txt" in _would_add(off)

    nogit = make_project(tmp_path / "nogit", DIR_PIPELINE)
    run_ok(nogit.cli("repro"))
    assert not nogit.exists(".gitignore")


def test_gitignore_config_value_validated(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p", DIR_PIPELINE, git_init=True)
    proj.write(".pivot/config.yaml", "core:\n  gitignore: maybe\n")
    result = run_ok(proj.cli("repro"), 1)
    assert "core.gitignore" in result.stderr and "config.yaml" in result.stderr
