"""`pivot checkout`: restore outputs from the cache; --force, --only-missing, --checkout-mode."""

from __future__ import annotations

import os
import pathlib

import pytest
from _pivot_helpers import DIR_PIPELINE, Project, ran_project, run_ok


@pytest.fixture
def proj(tmp_path: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    return ran_project(tmp_path_factory, tmp_path / "p")


def test_checkout_restores_deleted_outputs(proj: Project) -> None:
    (proj.root / "model.txt").unlink()
    (proj.root / "data" / "prepared.txt").unlink()
    run_ok(proj.cli("checkout"))
    assert proj.read("model.txt") == "model of HELLO\n"
    assert proj.read("data/prepared.txt") == "HELLO\n"
    assert proj.runs() == []


def test_checkout_refuses_modified_without_force(proj: Project) -> None:
    (proj.root / "model.txt").unlink()
    proj.write("model.txt", "my edits\n")
    result = run_ok(proj.cli("checkout"), 1)
    assert "model.txt" in result.stderr
    assert "--force" in result.stderr
    assert proj.read("model.txt") == "my edits\n"
    run_ok(proj.cli("checkout", "--force"))
    assert proj.read("model.txt") == "model of HELLO\n"


def test_checkout_only_missing_keeps_modified(proj: Project) -> None:
    (proj.root / "model.txt").unlink()
    proj.write("model.txt", "my edits\n")
    (proj.root / "other.txt").unlink()
    run_ok(proj.cli("checkout", "--only-missing"))
    assert proj.read("model.txt") == "my edits\n"
    assert proj.read("other.txt") == "\nolleh"


def test_checkout_target_stage_and_path(proj: Project) -> None:
    (proj.root / "model.txt").unlink()
    (proj.root / "other.txt").unlink()
    run_ok(proj.cli("checkout", "other"))
    assert proj.exists("other.txt")
    assert not proj.exists("model.txt")
    run_ok(proj.cli("checkout", "model.txt"))
    assert proj.exists("model.txt")


def test_checkout_mode_copy(proj: Project) -> None:
    (proj.root / "model.txt").unlink()
    run_ok(proj.cli("checkout", "--checkout-mode", "copy", "model.txt"))
    path = proj.root / "model.txt"
    assert os.stat(path).st_nlink == 1
    assert os.access(path, os.W_OK)


def test_checkout_mode_list_and_bad_mode(proj: Project) -> None:
    (proj.root / "model.txt").unlink()
    run_ok(proj.cli("checkout", "--checkout-mode", "hardlink,copy", "model.txt"))
    assert proj.read("model.txt") == "model of HELLO\n"
    result = proj.cli("checkout", "--checkout-mode", "symlink")
    assert result.exit_code == 2
    assert "symlink" in result.output
    # one rule with cache.link_modes: a mode listed twice is a usage error too
    result = proj.cli("checkout", "--checkout-mode", "copy", "--checkout-mode", "hardlink,copy")
    assert result.exit_code == 2
    assert "'copy' is listed twice" in result.output


def test_checkout_jobs(proj: Project) -> None:
    (proj.root / "model.txt").unlink()
    (proj.root / "other.txt").unlink()
    run_ok(proj.cli("checkout", "-j", "1"))
    assert proj.read("model.txt") == "model of HELLO\n"
    assert proj.read("other.txt") == "\nolleh"
    assert proj.cli("checkout", "-j", "0").exit_code == 2


def test_checkout_directory_output(
    tmp_path: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    p = ran_project(tmp_path_factory, tmp_path / "d", DIR_PIPELINE)
    import shutil

    shutil.rmtree(p.root / "shards")
    run_ok(p.cli("checkout"))
    assert sorted(x.name for x in (p.root / "shards").iterdir()) == [
        "part-0.txt",
        "part-1.txt",
        "part-2.txt",
    ]
