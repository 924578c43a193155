"""Two runners pushing overlapping outputs to one remote at the same time lose nothing."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest
from _pivot_helpers import Project, git, pivot_argv
from _remote_helpers import Backend, clone_of, new_backend, ok, origin_project, run
from _s3 import S3Server, clean_env


@pytest.fixture(params=["dir", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Backend:
    server: S3Server | None = None
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
    return new_backend(request.param, tmp_path, server)


def test_two_concurrent_pushes_lose_nothing(tmp_path: pathlib.Path, backend: Backend) -> None:
    a = origin_project(tmp_path, backend)
    # B: another runner on a branch with a different input; it shares the tracked data, the
    # shards and `other` with A (its CI cache restored from A's).
    b_root = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(a.root), str(b_root))
    shutil.copytree(a.root / ".pivot" / "cache", b_root / ".pivot" / "cache")
    b = Project(b_root)
    if backend.server is not None:
        ok(run(b.root, "remote", "modify", "store", "access_key_id", backend.server.access_key))
        ok(run(b.root, "remote", "modify", "store", "secret_access_key", backend.server.secret_key))
    ok(run(b.root, "checkout"))
    b.write("input.txt", "another input\n")
    ok(run(b.root, "repro"))
    git(b.root, "add", "-A")
    git(b.root, "commit", "-q", "-m", "b")
    git(a.root, "fetch", "-q", str(b.root), "HEAD:b")

    procs = [
        subprocess.Popen(
            [*pivot_argv(), "push"],
            cwd=p.root,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in (a, b)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    for rev, dest in (("HEAD", "clone-a"), ("b", "clone-b")):
        clone = clone_of(a, tmp_path / dest, backend)
        git(clone.root, "checkout", "-q", rev)
        ok(run(clone.root, "pull"))
        ok(run(clone.root, "verify"))
    assert (tmp_path / "clone-b" / "model.txt").read_text() == "model of ANOTHER INPUT\n"
    assert (tmp_path / "clone-a" / "model.txt").read_text() == "model of HELLO\n"
