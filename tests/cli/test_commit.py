"""`pivot commit` and `--no-commit` (docs/cli.md, "Recording without running")."""

from __future__ import annotations

import pathlib

import pytest
from _pivot_helpers import CHAIN_PIPELINE, Project, make_project, ran_project, run_ok


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    return make_project(tmp_path / "p")


@pytest.fixture
def ran(tmp_path: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    return ran_project(tmp_path_factory, tmp_path / "p")


def test_no_commit_writes_nothing_durable(proj: Project) -> None:
    result = run_ok(proj.cli("repro", "--no-commit"))
    assert "Summary: 4 ran" in result.stderr
    assert proj.read("model.txt") == "model of HELLO\n"
    for stage in ("prepare", "train", "evaluate", "other"):
        assert not proj.lock(stage).exists()
    assert proj.cache_objects() == []
    assert proj.run_cache_entries() == []
    # the next repro runs everything again
    proj.clear_runs()
    run_ok(proj.cli("repro"))
    assert sorted(proj.runs()) == ["evaluate", "other", "prepare", "train"]


def test_commit_after_no_commit_writes_lock_and_cache(proj: Project) -> None:
    run_ok(proj.cli("repro", "--no-commit"))
    result = run_ok(proj.cli("commit"))
    lines = result.stdout.splitlines()
    assert lines[0] == "Committed 4 stage(s):"
    assert sorted(lines[1:]) == ["  evaluate", "  other", "  prepare", "  train"]
    for stage in ("prepare", "train", "evaluate", "other"):
        assert proj.lock(stage).exists()
    assert proj.cache_objects()
    assert proj.run_cache_entries()
    proj.clear_runs()
    result = run_ok(proj.cli("repro"))
    assert proj.runs() == []
    assert "Summary: 0 ran, 4 cached" in result.stderr


def test_commit_jobs(proj: Project) -> None:
    run_ok(proj.cli("repro", "--no-commit"))
    assert proj.cli("commit", "-j", "0").exit_code == 2
    result = run_ok(proj.cli("commit", "-j", "1"))
    assert result.stdout.splitlines()[0] == "Committed 4 stage(s):"


def test_commit_no_args_commits_stale_only(ran: Project) -> None:
    proj = ran
    before = proj.lock("train").read_bytes()
    proj.write(
        "pipeline.py",
        CHAIN_PIPELINE.replace(
            '_mark("other")\n    return src[::-1]', '_mark("other")\n    return src[::-1] + ""'
        ),
    )
    result = run_ok(proj.cli("commit"))
    assert result.stdout.splitlines() == ["Committed 1 stage(s):", "  other"]
    assert proj.lock("train").read_bytes() == before
    proj.clear_runs()
    run_ok(proj.cli("repro"))
    assert proj.runs() == []


def test_commit_skips_unchanged(ran: Project) -> None:
    proj = ran
    result = run_ok(proj.cli("commit"))
    assert result.stdout.strip() == "Nothing to commit"


def test_commit_named_is_unconditional(ran: Project) -> None:
    proj = ran
    lock = proj.lock("other")
    lock.unlink()
    result = run_ok(proj.cli("commit", "other", "prepare"))
    assert result.stdout.splitlines()[0] == "Committed 2 stage(s):"
    assert sorted(result.stdout.splitlines()[1:]) == ["  other", "  prepare"]
    assert lock.exists()


def test_commit_missing_output_fails_that_stage_only(proj: Project) -> None:
    # prepare/train/evaluate never ran: their outputs are missing; `other` is committable.
    proj.write("other.txt", "olleh\n")
    result = run_ok(proj.cli("commit", "other", "prepare"), 1)
    assert result.stdout.splitlines() == ["Committed 1 stage(s):", "  other"]
    err_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(err_lines) == 1
    assert "prepare" in err_lines[0]
    assert "data/prepared.txt" in err_lines[0]
    assert proj.lock("other").exists()
    assert not proj.lock("prepare").exists()
    assert "Traceback" not in result.output


def test_commit_records_edited_output(ran: Project) -> None:
    proj = ran
    (proj.root / "other.txt").unlink()
    proj.write("other.txt", "hand edited\n")
    status = run_ok(proj.cli("status"))
    assert "other" in status.stdout
    run_ok(proj.cli("commit", "other"))
    proj.clear_runs()
    run_ok(proj.cli("repro", "other"))
    assert proj.runs() == []
    assert proj.read("other.txt") == "hand edited\n"


def test_commit_quiet(proj: Project) -> None:
    run_ok(proj.cli("repro", "--no-commit", "other"))
    result = run_ok(proj.cli("-q", "commit", "other"))
    assert result.output == ""
    assert proj.lock("other").exists()


def test_commit_unknown_stage(proj: Project) -> None:
    result = proj.cli("commit", "nope")
    assert result.exit_code == 1
    assert "nope" in result.stderr
