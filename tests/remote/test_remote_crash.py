"""SIGKILL at every publish step of push and of pull, on a directory remote and on S3
(SeaweedFS), leaves a remote where everything named is complete and readable, a sound local
cache, and a re-run completes the work."""

from __future__ import annotations

import pathlib

import pytest
from _remote_helpers import (
    Backend,
    cache_is_sound,
    clone_of,
    new_backend,
    ok,
    origin_project,
    remote_files,
    remote_objects,
    run,
    runs_name_only_published_objects,
)
from _s3 import S3Server

PUSH_POINTS = ["remote_object_put", "remote_pack_put", "remote_index_put", "remote_runs_put"]


@pytest.fixture(params=["dir", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Backend:
    server: S3Server | None = None
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
    return new_backend(request.param, tmp_path, server)


@pytest.mark.parametrize("point", PUSH_POINTS)
def test_sigkill_during_push(tmp_path: pathlib.Path, backend: Backend, point: str) -> None:
    origin = origin_project(tmp_path, backend)
    killed = run(origin.root, "push", env={"PIVOT_KILL_AT": point})
    assert killed.returncode == -9, f"{point} not reached:\n{killed.stderr}"
    runs_name_only_published_objects(remote_files(backend))
    ok(run(origin.root, "push"))
    files = remote_files(backend)
    runs_name_only_published_objects(files)
    assert len(remote_objects(files)) == 11
    clone = clone_of(origin, tmp_path / "clone", backend)
    ok(run(clone.root, "pull"))
    ok(run(clone.root, "verify"))


@pytest.mark.parametrize("point", ["fetch_object_write", "restore_swap"])
def test_sigkill_during_pull(tmp_path: pathlib.Path, backend: Backend, point: str) -> None:
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


def test_sigkill_between_a_staged_upload_and_its_rename(tmp_path: pathlib.Path) -> None:
    """A directory remote stages a big object in `tmp/` and links it into place create-only:
    killed in between, nothing names the staged file, a re-push publishes the object, and
    `gc --remote` removes the leftover once it is past the grace period."""
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    killed = run(origin.root, "push", env={"PIVOT_KILL_AT": "remote_staged_complete"})
    assert killed.returncode == -9, killed.stderr
    assert backend.directory is not None
    staged = list((backend.directory / "tmp").iterdir())
    assert staged, "the killed push left its staged upload"
    runs_name_only_published_objects(remote_files(backend))
    ok(run(origin.root, "push"))
    assert len(remote_objects(remote_files(backend))) == 11
    ok(run(origin.root, "gc", "--remote", "store", "--grace-minutes", "0"))
    assert not list((backend.directory / "tmp").iterdir())
    clone = clone_of(origin, tmp_path / "clone", backend)
    ok(run(clone.root, "pull"))
    ok(run(clone.root, "verify"))
