"""`pivot gc`: what it keeps (workspace, branches, tags, recent run-cache entries, young objects),
what it removes, and that neither a concurrent `repro` nor a kill -9 loses recorded data."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest
from _pivot_helpers import DIR_PIPELINE, Project, git, make_project, pivot_argv, run_ok

NOW = ["--grace-minutes", "0"]  # objects made by the test are seconds old


def _objects(proj: Project) -> set[str]:
    return {p.parent.name + p.name for p in proj.cache_objects()}


def _lock_objects(proj: Project, stage: str) -> set[str]:
    lock = json.loads(proj.lock(stage).read_text(encoding="utf-8"))
    return {e["hash"] for e in lock["outs"].values() if e["cache"]}


def _commit_all(proj: Project, message: str) -> None:
    git(proj.root, "add", "-A")
    git(proj.root, "commit", "-q", "-m", message)


@pytest.fixture
def history(tmp_path: pathlib.Path) -> Project:
    """main: a run of input "one" (committed); branch `exp`: a run of "two" (committed, not
    checked out); tag `v0` on main's first commit; workspace: a run of "three" (not committed)."""
    proj = make_project(tmp_path / "p", git_init=True)
    git(proj.root, "checkout", "-q", "-b", "main")
    proj.write("input.txt", "one\n")
    run_ok(proj.cli("repro"))
    _commit_all(proj, "one")
    git(proj.root, "tag", "v0")
    git(proj.root, "checkout", "-q", "-b", "exp")
    proj.write("input.txt", "two\n")
    run_ok(proj.cli("repro"))
    _commit_all(proj, "two")
    git(proj.root, "checkout", "-q", "main")
    proj.write("input.txt", "three\n")
    run_ok(proj.cli("repro"))
    return proj


def _revision_objects(proj: Project, rev: str) -> set[str]:
    out: set[str] = set()
    for stage in ("prepare", "train", "other"):
        doc = json.loads(git(proj.root, "show", f"{rev}:.pivot/stages/{stage}.lock"))
        out |= {e["hash"] for e in doc["outs"].values() if e["cache"]}
    return out


def _gc_json(proj: Project, *args: str, code: int = 0) -> dict[str, object]:
    return json.loads(run_ok(proj.cli("gc", "--json", *args), code).output)


def test_gc_keeps_every_branch_and_tag_and_removes_the_rest(history: Project) -> None:
    proj = history
    proj.write("stray.txt", "tracked once, then forgotten\n")
    stray = json.loads(run_ok(proj.cli("track", "--json", "stray.txt")).output)["tracked"][0]
    (proj.root / "stray.txt.pvt").unlink()
    exp, v0 = _revision_objects(proj, "exp"), _revision_objects(proj, "v0")
    workspace = set().union(*(_lock_objects(proj, s) for s in ("prepare", "train", "other")))
    before = _objects(proj)

    # Everything is seconds old: the default grace period keeps all of it.
    doc = _gc_json(proj, "--run-cache-days", "0")
    assert doc["removed"] == {"objects": 0, "bytes": 0}
    assert doc["young"] == 1
    assert _objects(proj) == before

    doc = _gc_json(proj, *NOW)
    # run-cache entries (30 days by default) keep every run's outputs: only the stray goes
    assert [o["hash"] for o in doc["objects"]] == [stray["hash"]]  # type: ignore[index]
    assert doc["removed"] == {"objects": 1, "bytes": stray["size"]}
    assert _objects(proj) == before - {stray["hash"]}
    assert doc["run_cache"] == {"removed": 0, "kept": len(proj.run_cache_entries())}

    run_ok(proj.cli("gc", *NOW, "--run-cache-days", "0"))
    assert not proj.run_cache_entries()
    assert _objects(proj) == workspace | exp | v0
    run_ok(proj.cli("verify", "--cache"))
    git(proj.root, "stash", "-q", "-u")
    git(proj.root, "checkout", "-q", "exp")
    run_ok(proj.cli("checkout", "--force"))
    run_ok(proj.cli("verify", "--cache"))
    assert proj.read("data/prepared.txt") == "TWO\n"


def test_gc_dry_run_lists_and_removes_nothing(history: Project) -> None:
    proj = history
    before = _objects(proj)
    runs = set(proj.run_cache_entries())
    result = run_ok(proj.cli("gc", "--dry-run", "--workspace-only", *NOW, "--run-cache-days", "0"))
    lines = [ln for ln in result.output.splitlines() if ln.startswith("would remove ")]
    gone = before - set().union(*(_lock_objects(proj, s) for s in ("prepare", "train", "other")))
    assert {ln.split()[2] for ln in lines} == gone and gone
    assert f"Would remove {len(gone)} object(s)" in result.output
    assert _objects(proj) == before
    assert set(proj.run_cache_entries()) == runs


def test_gc_revision_sets(history: Project) -> None:
    proj = history
    ws = set().union(*(_lock_objects(proj, s) for s in ("prepare", "train", "other")))
    exp = _revision_objects(proj, "exp")
    one = _revision_objects(proj, "v0")
    args = [*NOW, "--run-cache-days", "0"]

    run_ok(proj.cli("gc", "--dry-run", "--rev", "exp", *args))
    doc = _gc_json(proj, "--dry-run", "--rev", "exp", *args)
    kept = _objects(proj) - {o["hash"] for o in doc["objects"]}  # type: ignore[union-attr]
    assert kept == ws | exp

    # an old commit no branch or tag points to any more: only --all-commits keeps it
    _commit_all(proj, "three")
    git(proj.root, "tag", "-d", "v0")
    doc = _gc_json(proj, "--dry-run", *args)
    kept = _objects(proj) - {o["hash"] for o in doc["objects"]}  # type: ignore[union-attr]
    assert kept == ws | exp
    doc = _gc_json(proj, "--dry-run", "--all-commits", *args)
    kept = _objects(proj) - {o["hash"] for o in doc["objects"]}  # type: ignore[union-attr]
    assert kept == ws | exp | one
    run_ok(proj.cli("gc", *args))
    assert _objects(proj) == ws | exp

    result = run_ok(proj.cli("gc", "--rev", "exp", "--workspace-only"), 1)
    assert "exclude each other" in result.output
    assert "unknown revision 'nope'" in run_ok(proj.cli("gc", "--rev", "nope"), 1).output


def test_gc_run_cache_retention(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    run_ok(proj.cli("repro"))
    first = _lock_objects(proj, "train")
    proj.write("input.txt", "again\n")
    run_ok(proj.cli("repro"))
    assert not first & _lock_objects(proj, "train")

    run_ok(proj.cli("gc", *NOW))  # the first run's entries are young: its outputs stay
    assert first <= _objects(proj)
    old = time.time() - 31 * 86400
    entries = proj.run_cache_entries()
    for entry in entries:
        os.utime(entry, (old, old))
    doc = _gc_json(proj, *NOW)
    assert doc["run_cache"] == {"removed": len(entries), "kept": 0}
    assert not proj.run_cache_entries()
    assert not first & _objects(proj)
    run_ok(proj.cli("verify", "--cache"))

    run_ok(proj.cli("config", "set", "gc.run_cache_days", "0.5"))
    assert (
        "gc.run_cache_days"
        in run_ok(proj.cli("config", "set", "gc.run_cache_days", "--", "-1"), 1).stderr
    )


def test_gc_of_directory_outputs_keeps_the_current_tree_whole(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p", DIR_PIPELINE)
    run_ok(proj.cli("repro"))
    old_tree = _lock_objects(proj, "make_shards")
    old = set(_objects(proj))
    proj.write("input.txt", "changed\n")
    run_ok(proj.cli("repro"))
    new_tree = _lock_objects(proj, "make_shards")
    doc = _gc_json(proj, *NOW, "--run-cache-days", "0")
    removed = {o["hash"] for o in doc["objects"]}  # type: ignore[union-attr]
    # the old manifest and its three files (no file is shared: each holds the input)
    assert removed == old and old_tree <= removed and len(removed) == 4
    assert new_tree <= _objects(proj) and len(_objects(proj)) == 4
    shutil.rmtree(proj.root / "shards")
    run_ok(proj.cli("checkout"))
    assert proj.read("shards/part-1.txt") == "1:changed\n"
    run_ok(proj.cli("verify", "--cache"))


def test_gc_without_git_keeps_the_workspace(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    run_ok(proj.cli("repro"))
    doc = _gc_json(proj, *NOW)
    assert doc["revisions"] == ["workspace"]
    assert "not inside a git repository" in doc["notes"][0]  # type: ignore[index]
    run_ok(proj.cli("verify", "--cache"))
    assert "not inside a git repository" in run_ok(proj.cli("gc", "--all-commits"), 1).output


def test_gc_refuses_when_a_root_cannot_be_read(history: Project) -> None:
    proj = history
    before = _objects(proj)
    _commit_all(proj, "three")
    git(proj.root, "checkout", "-q", "exp")
    proj.lock("train").write_text("{not json\n", encoding="utf-8")
    _commit_all(proj, "broken lock")
    git(proj.root, "checkout", "-q", "main")
    result = run_ok(proj.cli("gc", *NOW, "--run-cache-days", "0"), 1)
    assert "exp:.pivot/stages/train.lock" in result.output
    assert _objects(proj) == before

    doc = json.loads(proj.lock("other").read_text(encoding="utf-8"))
    doc["schema_version"] = 2
    proj.lock("other").write_text(json.dumps(doc), encoding="utf-8")
    result = run_ok(proj.cli("gc", "-w", *NOW), 1)
    assert "upgrade pivot" in result.output
    assert _objects(proj) == before


# -- concurrency and crashes ------------------------------------------------------------------

SLOW_PIPELINE = """
import pathlib
import time
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def slow(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("slow.txt", loaders.Text())]:
    pathlib.Path("started").write_text("1")
    while not pathlib.Path("go").exists():
        time.sleep(0.05)
    return src * 3


pipeline = Pipeline("slow")
pipeline.register(slow)
"""


def _spawn(proj: Project, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*pivot_argv(), *args],
        cwd=proj.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _wait_for(predicate: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_gc_during_a_concurrent_repro_loses_nothing(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p", SLOW_PIPELINE)
    repro = _spawn(proj, "repro")
    _wait_for(lambda: proj.exists("started"), "the stage to start")

    gc = _spawn(proj, "gc", *NOW, "--run-cache-days", "0")
    # gc waits for the running stage (its execution lock holds the shared .gc.lock)
    assert gc.stderr is not None
    seen = [gc.stderr.readline()]
    while seen[-1] and "waiting for running pivot commands" not in seen[-1]:
        seen.append(gc.stderr.readline())
    assert "waiting for running pivot commands" in seen[-1], seen
    assert gc.poll() is None and repro.poll() is None
    proj.write("go", "")
    assert repro.wait(timeout=120) == 0, repro.stderr.read() if repro.stderr else ""
    _out, err = gc.communicate(timeout=120)
    assert gc.returncode == 0, err
    assert _lock_objects(proj, "slow") <= _objects(proj)
    run_ok(proj.cli("verify", "--cache"))


@pytest.mark.parametrize("step", ["gc_roots", "gc_run", "gc_object"])
def test_kill_at_each_gc_step_leaves_every_lock_whole(history: Project, step: str) -> None:
    proj = history
    proj.write("stray.txt", "garbage\n")
    run_ok(proj.cli("track", "stray.txt"))
    (proj.root / "stray.txt.pvt").unlink()
    proc = subprocess.run(
        [*pivot_argv(), "gc", *NOW, "--run-cache-days", "0"],
        cwd=proj.root,
        env={**os.environ, "PIVOT_KILL_AT": step},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    run_ok(proj.cli("verify", "--cache"))  # no lock names a removed object
    # the next gc finishes the job
    run_ok(proj.cli("gc", *NOW, "--run-cache-days", "0"))
    run_ok(proj.cli("verify", "--cache"))
    assert not proj.run_cache_entries()
    keep = set().union(*(_lock_objects(proj, s) for s in ("prepare", "train", "other")))
    assert _objects(proj) == keep | _revision_objects(proj, "exp") | _revision_objects(proj, "v0")


def test_a_repro_waits_for_a_running_gc(tmp_path: pathlib.Path) -> None:
    from pivot.engine.execlock import GcLock

    proj = make_project(tmp_path / "p")
    held = GcLock(proj.root / ".pivot" / "tmp" / "locks")
    held.acquire()
    try:
        repro = _spawn(proj, "repro")
        assert repro.stderr is not None
        seen = [repro.stderr.readline()]
        while seen[-1] and "waiting for pivot gc" not in seen[-1]:
            seen.append(repro.stderr.readline())
        assert f"waiting for pivot gc (pid {os.getpid()})" in seen[-1], seen
        assert not proj.exists("runs.log")  # no stage started meanwhile
    finally:
        held.release()
    _out, err = repro.communicate(timeout=120)
    assert repro.returncode == 0, err
    assert proj.runs()
