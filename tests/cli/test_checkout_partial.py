"""Partial restore of directory outputs: a named sub-path, or the missing files only."""

from __future__ import annotations

import json
import os
import pathlib

import pytest
from _pivot_helpers import Project, make_project, ran_project, run_ok

N = 300

MANY_PIPELINE = f"""
import pathlib
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def shard(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("shards/", loaders.PathOnly())]:
    out = pathlib.Path("shards")
    (out / "sub" / "deep").mkdir(parents=True, exist_ok=True)
    for i in range({N}):
        (out / f"part-{{i:03d}}.txt").write_text(f"{{i}}:{{src}}", encoding="utf-8")
    (out / "sub" / "a.txt").write_text("a", encoding="utf-8")
    (out / "sub" / "deep" / "b.txt").write_text("b", encoding="utf-8")
    return out


pipeline = Pipeline("many")
pipeline.register(shard)
"""


@pytest.fixture
def proj(tmp_path: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    p = ran_project(tmp_path_factory, tmp_path / "p", MANY_PIPELINE)
    run_ok(p.cli("status"))  # trust the copied files in the stat index
    return p


def _stats(root: pathlib.Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _up_to_date(proj: Project) -> None:
    assert "All stages up to date" in run_ok(proj.cli("status")).stdout


def test_checkout_one_file_of_a_directory(proj: Project) -> None:
    shards = proj.root / "shards"
    before = _stats(shards)
    (shards / "part-017.txt").unlink()
    result = run_ok(proj.cli("checkout", "shards/part-017.txt"))
    assert "restored shards/part-017.txt" in result.stderr
    assert proj.read("shards/part-017.txt") == "17:hello\n"
    after = _stats(shards)
    del before["part-017.txt"], after["part-017.txt"]
    assert after == before  # nothing else was touched (same inodes and mtimes)
    _up_to_date(proj)


def test_only_missing_restores_missing_files_inside_a_directory(proj: Project) -> None:
    shards = proj.root / "shards"
    gone = ["part-000.txt", "part-150.txt", "part-299.txt", "sub/deep/b.txt"]
    for g in gone:
        (shards / g).unlink()
    os.rmdir(shards / "sub" / "deep")
    kept = _stats(shards)
    doc = json.loads(run_ok(proj.cli("checkout", "--only-missing", "--json")).stdout)
    assert doc["restored"] == sorted(f"shards/{g}" for g in gone)
    assert {k: v for k, v in _stats(shards).items() if k in kept} == kept
    _up_to_date(proj)


def test_plain_checkout_puts_back_missing_files_without_touching_others(proj: Project) -> None:
    shards = proj.root / "shards"
    (shards / "part-042.txt").unlink()
    kept = _stats(shards)
    result = run_ok(proj.cli("checkout"))
    assert "restored shards/part-042.txt" in result.stderr
    assert {k: v for k, v in _stats(shards).items() if k in kept} == kept
    _up_to_date(proj)


def test_modified_file_inside_needs_force(proj: Project) -> None:
    shards = proj.root / "shards"
    target = shards / "part-003.txt"
    target.unlink()  # hard-linked outputs are read-only: replace instead of editing in place
    target.write_text("my edit", encoding="utf-8")
    (shards / "part-004.txt").unlink()
    result = run_ok(proj.cli("checkout", "shards"), 1)
    assert "part-003.txt" in result.stderr or "shards: modified" in result.stderr
    assert target.read_text() == "my edit"
    assert (shards / "part-004.txt").exists()  # the missing one came back regardless
    result = run_ok(proj.cli("checkout", "shards/part-003.txt"), 1)
    assert "shards/part-003.txt: modified and not in the cache; use --force" in result.stderr
    assert target.read_text() == "my edit"
    kept = _stats(shards)
    run_ok(proj.cli("checkout", "--force", "shards/part-003.txt"))
    assert target.read_text() == "3:hello\n"
    after = _stats(shards)
    del kept["part-003.txt"], after["part-003.txt"]
    assert after == kept
    _up_to_date(proj)


def test_checkout_a_sub_directory(proj: Project) -> None:
    shards = proj.root / "shards"
    for p in sorted((shards / "sub").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (shards / "sub").rmdir()
    kept = _stats(shards)
    doc = json.loads(run_ok(proj.cli("checkout", "--json", "shards/sub")).stdout)
    assert doc["restored"] == ["shards/sub/a.txt", "shards/sub/deep/b.txt"]
    assert {k: v for k, v in _stats(shards).items() if k in kept} == kept
    bad = run_ok(proj.cli("checkout", "shards/nope.txt"), 1)
    assert "shards/nope.txt: not in the recorded version of shards" in bad.stderr


def test_tracked_directory_sub_path(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    for i in range(20):
        proj.write(f"data/raw/r{i}.csv", f"{i}\n")
    run_ok(proj.cli("track", "data/raw"))
    raw = proj.root / "data" / "raw"
    (raw / "r5.csv").unlink()
    kept = _stats(raw)
    run_ok(proj.cli("checkout", "data/raw/r5.csv"))
    assert proj.read("data/raw/r5.csv") == "5\n"
    assert {k: v for k, v in _stats(raw).items() if k in kept} == kept
