"""SIGKILL at every publish step of push and of pull leaves a remote where everything named
is complete and readable, a sound local cache, and a re-run completes the work."""

from __future__ import annotations

import json
import pathlib

import pytest
from _remote_helpers import (
    cache_is_sound,
    clone_of,
    new_backend,
    ok,
    origin_project,
    remote_objects,
    run,
)

PUSH_POINTS = ["remote_object_put", "remote_pack_put", "remote_index_put", "remote_runs_put"]


def _runs_name_only_published_objects(root: pathlib.Path) -> None:
    objects = remote_objects(root)
    runs = root / "runs"
    for entry in runs.glob("*/*") if runs.is_dir() else []:
        doc = json.loads(entry.read_text())
        for out in doc["outs"].values():
            if not out["cache"]:
                continue
            assert out["hash"] in objects, f"run entry {entry.name} names an unpublished object"
            if out["is_dir"]:
                for line in objects[out["hash"]].decode().splitlines()[1:]:
                    assert json.loads(line)["hash"] in objects


@pytest.mark.parametrize("point", PUSH_POINTS)
def test_sigkill_during_push(tmp_path: pathlib.Path, point: str) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    killed = run(origin.root, "push", env={"PIVOT_KILL_AT": point})
    assert killed.returncode == -9, f"{point} not reached:\n{killed.stderr}"
    assert backend.directory is not None
    _runs_name_only_published_objects(backend.directory)
    ok(run(origin.root, "push"))
    _runs_name_only_published_objects(backend.directory)
    assert len(remote_objects(backend.directory)) == 11
    clone = clone_of(origin, tmp_path / "clone", backend)
    ok(run(clone.root, "pull"))
    ok(run(clone.root, "verify"))


@pytest.mark.parametrize("point", ["fetch_object_write", "restore_swap"])
def test_sigkill_during_pull(tmp_path: pathlib.Path, point: str) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push"))
    clone = clone_of(origin, tmp_path / "clone", backend)
    killed = run(clone.root, "pull", env={"PIVOT_KILL_AT": point})
    assert killed.returncode == -9, f"{point} not reached:\n{killed.stderr}"
    cache_is_sound(clone.root)
    ok(run(clone.root, "pull"))
    ok(run(clone.root, "verify"))
    cache_is_sound(clone.root)
    files = clone.root / ".pivot" / "cache" / "files"
    assert not list(files.glob(".pvtmp-*")), "stale temps of the killed fetch are removed"
