"""Remotes seen from the other commands: `get`/`diff` fetch what the local cache lacks from the
default remote (`pivot.results.fetch`), and `pivot config` reads and writes remote keys."""

from __future__ import annotations

import pathlib

from _remote_helpers import clone_of, new_backend, ok, origin_project, run


def test_get_and_diff_fetch_from_the_default_remote(tmp_path: pathlib.Path) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push"))
    clone = clone_of(origin, tmp_path / "clone", backend)

    # An output file and a file inside a directory output, with an empty local cache.
    ok(run(clone.root, "get", "-r", "HEAD", "model.txt", "-o", "got-model.txt"))
    assert (clone.root / "got-model.txt").read_text() == "model of HELLO\n"
    ok(run(clone.root, "get", "-r", "HEAD", "shards/part-1.txt", "-o", "got-part.txt"))
    assert (clone.root / "got-part.txt").read_bytes() == (
        origin.root / "shards" / "part-1.txt"
    ).read_bytes()
    # diff reads directory manifests only: fetched alone.
    ok(run(clone.root, "diff", "HEAD", "HEAD"))

    # Without a remote the same request is the local-cache error it always was.
    bare = clone_of(origin, tmp_path / "bare", backend)
    ok(run(bare.root, "remote", "remove", "store"))
    res = run(bare.root, "get", "-r", "HEAD", "model.txt", "-o", "x.txt")
    assert res.returncode == 1
    assert "is not in the local cache" in res.stderr and "remote" not in res.stderr
    # A remote that lacks the object says so.
    empty = tmp_path / "empty-remote"
    ok(run(bare.root, "remote", "add", "void", str(empty), "--default"))
    res = run(bare.root, "get", "-r", "HEAD", "model.txt", "-o", "x.txt")
    assert res.returncode == 1
    assert "is not in the local cache (nor on remote void)" in res.stderr, res.stderr


def test_config_reads_and_writes_remote_keys(tmp_path: pathlib.Path) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    root = origin.root
    assert ok(run(root, "config", "get", "core.remote")).stdout.strip() == "store"
    assert ok(run(root, "config", "get", "remote.store.url")).stdout.strip() == backend.url
    ok(run(root, "config", "set", "remote.store.jobs", "3"))
    assert ok(run(root, "config", "get", "remote.store.jobs")).stdout.strip() == "3"
    assert "remote.store.jobs=3" in ok(run(root, "config", "list")).stdout
    # The same checks as `pivot remote`: a bad value, a secret outside config.local.
    res = run(root, "config", "set", "remote.store.jobs", "0")
    assert res.returncode == 1 and "'remote.store.jobs' must be a positive integer" in res.stderr
    res = run(root, "config", "set", "remote.store.secret_access_key", "s")
    assert res.returncode == 1 and "is a secret" in res.stderr
    ok(run(root, "config", "set", "--local", "remote.store.secret_access_key", "s"))
    res = run(root, "config", "set", "remote.store.colour", "red")
    assert res.returncode == 1 and "unknown config key 'remote.store.colour'" in res.stderr
    ok(run(root, "config", "unset", "remote.store.jobs"))
    assert "remote.store.jobs" not in ok(run(root, "config", "list")).stdout
    # The remote still works after the edits.
    ok(run(root, "push"))
