"""Nothing wrong is ever served from the cache, and nothing changed goes unreported (issue 14's
integrity holes): newer locks, tracking before any stage, edited tracked data, a check of every
cache object, and in-place writes through hard-linked outputs."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import stat

import pytest
from _pivot_helpers import Project, make_project, ran_project, run_ok


@pytest.fixture
def ran(tmp_path: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    return ran_project(tmp_path_factory, tmp_path / "p")


def _object(proj: Project, digest: str) -> pathlib.Path:
    return proj.root / ".pivot" / "cache" / "files" / digest[:2] / digest[2:]


def _write_in_place(path: pathlib.Path, text: str) -> None:
    """What an editor run as root does to a read-only hard-linked output: same inode."""
    os.chmod(path, stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
    with open(path, "r+", encoding="utf-8") as f:
        f.write(text)
        f.truncate()


# -- a lock from a newer pivot ---------------------------------------------------------------


def test_commit_refuses_a_lock_from_a_newer_pivot(ran: Project) -> None:
    lock = ran.lock("train")
    doc = json.loads(lock.read_text(encoding="utf-8"))
    doc["schema_version"] = 2
    newer = json.dumps(doc, indent=2) + "\n"
    lock.write_text(newer, encoding="utf-8")

    result = run_ok(ran.cli("commit", "train"), 1)
    assert "upgrade pivot" in result.output
    assert "train.lock" in result.output
    assert "Traceback" not in result.output
    assert lock.read_text(encoding="utf-8") == newer
    # as without a stage name, and as repro does
    assert "upgrade pivot" in run_ok(ran.cli("commit"), 1).output
    assert lock.read_text(encoding="utf-8") == newer


# -- track ------------------------------------------------------------------------------------


def test_track_in_a_project_without_a_pipeline(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    (proj.root / "pipeline.py").unlink()
    proj.write("data/raw.csv", "a,b\n1,2\n")
    run_ok(proj.cli("track", "data/raw.csv"))
    assert proj.exists("data/raw.csv.pvt")
    assert "No stages" in run_ok(proj.cli("status")).output
    run_ok(proj.cli("verify"))
    (proj.root / "data/raw.csv").unlink()
    run_ok(proj.cli("checkout"))
    assert proj.read("data/raw.csv") == "a,b\n1,2\n"


def test_track_outside_the_project_names_the_path(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("x\n", encoding="utf-8")
    result = run_ok(proj.cli("track", str(outside)), 1)
    assert str(outside) in result.output
    assert "outside the project" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "elsewhere.csv.pvt").exists()


# -- edited tracked data ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["edited", "replaced", "deleted"])
def test_changed_tracked_data_is_reported(ran: Project, how: str) -> None:
    ran.write("data/raw.csv", "a,b\n1,2\n")
    ran.write("images/x.txt", "x")
    run_ok(ran.cli("track", "data/raw.csv", "images"))
    assert "raw.csv" not in run_ok(ran.cli("status")).output
    run_ok(ran.cli("verify"))

    path = ran.root / "data/raw.csv"
    if how == "edited":  # same size, same inode
        _write_in_place(path, "a,b\n1,3\n")
    elif how == "replaced":
        path.unlink()
        ran.write("data/raw.csv", "other\n")
    else:
        path.unlink()
    want = "missing" if how == "deleted" else "modified"

    status = run_ok(ran.cli("status"))
    assert f"data/raw.csv: {want} (data/raw.csv.pvt)" in status.output
    assert "images" not in status.output
    run_ok(ran.cli("status", "-q"), 1)
    doc = json.loads(run_ok(ran.cli("status", "--json")).output)
    assert doc["tracked"] == {"data/raw.csv": {"pvt": "data/raw.csv.pvt", "state": want}}
    verify = run_ok(ran.cli("verify"), 1)
    assert f"data/raw.csv.pvt: data/raw.csv {want}" in verify.output


def test_tracked_directory_with_an_added_file_is_modified(ran: Project) -> None:
    ran.write("images/x.txt", "x")
    run_ok(ran.cli("track", "images"))
    ran.write("images/y.txt", "y")
    assert "images: modified (images.pvt)" in run_ok(ran.cli("status")).output
    run_ok(ran.cli("verify"), 1)


# -- verify --cache --all ---------------------------------------------------------------------


def test_verify_cache_all_checks_unreferenced_objects(ran: Project) -> None:
    ran.write("old.txt", "an object no lock names\n")
    digest = json.loads(run_ok(ran.cli("track", "--json", "old.txt")).output)["tracked"][0]["hash"]
    (ran.root / "old.txt.pvt").unlink()
    obj = _object(ran, digest)
    os.chmod(obj, 0o644)
    obj.write_text("AN OBJECT NO LOCK NAMES\n", encoding="utf-8")

    run_ok(ran.cli("verify", "--cache"))  # only what the locks and .pvt files need
    result = run_ok(ran.cli("verify", "--cache", "--all"), 1)
    assert f"(not referenced): cache object {digest} corrupt" in result.output
    doc = json.loads(run_ok(ran.cli("verify", "--cache", "--all", "--json"), 1).output)
    assert doc["cache"]["corrupt"] == {digest: ["(not referenced)"]}
    total = len(ran.cache_objects())
    assert doc["cache"]["checked"] == total

    obj.unlink()
    result = run_ok(ran.cli("verify", "--cache", "--all"))
    assert f"{total - 1} cache object(s) verified" in result.output


def test_verify_cache_all_reports_a_missing_referenced_object(ran: Project) -> None:
    lock = json.loads(ran.lock("train").read_text(encoding="utf-8"))
    digest = lock["outs"]["model.txt"]["hash"]
    _object(ran, digest).unlink()
    result = run_ok(ran.cli("verify", "--cache", "--all"), 1)
    assert f"train: model.txt: cache object {digest} missing" in result.output


# -- in-place writes through a hard-linked output ---------------------------------------------


HARDLINK_PIPELINE = """
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def make(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("out.txt", loaders.Text())]:
    with open("runs.log", "a", encoding="utf-8") as f:
        f.write("make\\n")
    return src.upper()


pipeline = Pipeline("hl")
pipeline.register(make)
"""


@pytest.fixture
def linked(tmp_path: pathlib.Path) -> Project:
    proj = make_project(tmp_path / "p", HARDLINK_PIPELINE)
    run_ok(proj.cli("config", "set", "cache.link_modes", "hardlink"))
    run_ok(proj.cli("repro"))
    proj.clear_runs()
    return proj


def _out_hash(proj: Project) -> str:
    return str(json.loads(proj.lock("make").read_text(encoding="utf-8"))["outs"]["out.txt"]["hash"])


def test_an_object_written_through_its_hard_link_is_never_served(linked: Project) -> None:
    digest = _out_hash(linked)
    out = linked.root / "out.txt"
    obj = _object(linked, digest)
    assert out.stat().st_ino == obj.stat().st_ino  # the output is the object
    _write_in_place(out, "HELLX\n")  # same size: only the stat shows it
    assert obj.read_text(encoding="utf-8") == "HELLX\n"

    # status sees the edit; verify --cache names the object
    assert "Outputs missing or modified" in run_ok(linked.cli("status")).output
    verify = run_ok(linked.cli("verify", "--cache"), 1)
    assert f"make: out.txt: cache object {digest} corrupt" in verify.output

    # restore: refused, the workspace keeps what it has
    result = run_ok(linked.cli("checkout", "--force"), 1)
    assert "corrupt" in result.output
    assert linked.read("out.txt") == "HELLX\n"

    # push: refused, nothing published under the object's name
    run_ok(linked.cli("remote", "add", "store", str(linked.root.parent / "remote"), "--default"))
    result = run_ok(linked.cli("push"), 1)
    assert "corrupt" in result.output
    remote = linked.root.parent / "remote"
    published = [p.name for p in remote.rglob("*") if p.is_file()] if remote.exists() else []
    assert digest[2:] not in published

    # run cache: a run with other inputs, then back to the first ones: the entry for those
    # inputs names the altered object, so the stage runs instead of restoring it
    linked.write("input.txt", "world\n")
    run_ok(linked.cli("repro"))
    linked.write("input.txt", "hello\n")
    linked.clear_runs()
    run_ok(linked.cli("repro"))
    assert linked.runs() == ["make"]
    assert linked.read("out.txt") == "HELLO\n"
    run_ok(linked.cli("verify"))
    # the re-run repaired the object under its name
    assert obj.read_text(encoding="utf-8") == "HELLO\n"
    shutil.rmtree(remote, ignore_errors=True)
