"""push / fetch / pull against a directory remote and a real S3 server (SeaweedFS)."""

from __future__ import annotations

import json
import pathlib
import subprocess
from typing import Any

import pytest
from _pivot_helpers import git
from _remote_helpers import (
    BIG,
    Backend,
    assert_outputs_match,
    cache_is_sound,
    clone_of,
    new_backend,
    ok,
    origin_project,
    read_index,
    remote_objects,
    run,
)
from _s3 import S3Server


@pytest.fixture(params=["dir", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Backend:
    server: S3Server | None = None
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
    return new_backend(request.param, tmp_path, server)


def test_round_trip_push_clone_pull_verify_and_repush_is_a_no_op(
    tmp_path: pathlib.Path, backend: Backend
) -> None:
    origin = origin_project(tmp_path, backend)
    pushed = ok(run(origin.root, "push", "--json"))
    doc = json.loads(pushed.stdout)
    # 3 single-file outputs, 3 shard files + manifest, 2 raw files + manifest, the big file.
    assert doc["uploaded"] == 11
    assert doc["skipped"] == 0
    assert doc["bytes"] >= BIG
    assert doc["runs_uploaded"] == 5

    clone = clone_of(origin, tmp_path / "clone", backend)
    pulled = ok(run(clone.root, "pull"))
    assert "Fetched 11 object(s)" in pulled.stderr, pulled.stderr
    assert_outputs_match(origin.root, clone.root)
    ok(run(clone.root, "verify"))
    ok(run(clone.root, "verify", "--cache"))
    cache_is_sound(clone.root)

    again = ok(run(origin.root, "push"))
    assert "Pushed 0 object(s) (0.0 MB), 11 already on the remote store" in again.stderr
    assert "0 run-cache entries" in again.stderr
    # A second pull has nothing to fetch.
    assert "Fetched 0 object(s)" in ok(run(clone.root, "pull")).stderr


def test_verify_fails_in_a_fresh_clone_until_pulled(tmp_path: pathlib.Path) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push"))
    clone = clone_of(origin, tmp_path / "clone", backend)
    assert run(clone.root, "verify").returncode == 1
    ok(run(clone.root, "fetch"))
    assert not (clone.root / "model.txt").exists(), "fetch leaves the workspace alone"
    ok(run(clone.root, "checkout"))
    ok(run(clone.root, "verify"))


def test_push_and_pull_of_named_stages_only(tmp_path: pathlib.Path) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    doc = json.loads(ok(run(origin.root, "push", "train", "--json")).stdout)
    assert doc["uploaded"] == 1
    assert doc["runs_uploaded"] == 1
    clone = clone_of(origin, tmp_path / "clone", backend)
    ok(run(clone.root, "pull", "train"))
    assert (clone.root / "model.txt").read_text() == "model of HELLO\n"
    assert not (clone.root / "shards").exists()
    bad = run(clone.root, "pull", "make_shards")
    assert bad.returncode == 1
    assert "is missing" in bad.stderr and "shards" in bad.stderr


def test_corrupt_remote_object_is_named_and_never_enters_the_cache(
    tmp_path: pathlib.Path,
) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push"))
    model = (origin.root / "model.txt").read_bytes()
    import blake3

    h = blake3.blake3(model).hexdigest()
    assert backend.directory is not None
    for idx in (backend.directory / "index").glob("*.idx"):
        for name, offset, _length in read_index(idx):
            if name == h:
                pack = backend.directory / "packs" / (idx.name[: -len(".idx")] + ".pack")
                data = bytearray(pack.read_bytes())
                data[offset] ^= 0x01
                pack.chmod(0o644)
                pack.write_bytes(bytes(data))
    clone = clone_of(origin, tmp_path / "clone", backend)
    res = run(clone.root, "pull")
    assert res.returncode == 1
    assert f"remote store: object {h} (model.txt) is corrupt" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert not (clone.root / ".pivot" / "cache" / "files" / h[:2] / h[2:]).exists()
    assert not (clone.root / "model.txt").exists()
    assert (clone.root / "other.txt").exists(), "the intact outputs are restored"
    cache_is_sound(clone.root)


def test_pack_without_index_is_invisible_and_a_repush_completes(tmp_path: pathlib.Path) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push"))
    assert backend.directory is not None
    # As if the pusher died between uploading the packs and their indexes.
    for idx in (backend.directory / "index").glob("*.idx"):
        idx.unlink()
    clone = clone_of(origin, tmp_path / "clone", backend)
    res = run(clone.root, "fetch")
    assert res.returncode == 1
    assert "is missing" in res.stderr and "Traceback" not in res.stderr
    cache_is_sound(clone.root)
    packs_before = sorted(p.name for p in (backend.directory / "packs").iterdir())
    doc = json.loads(ok(run(origin.root, "push", "--json")).stdout)
    assert doc["uploaded"] == 10, "everything but the loose big file is published again"
    assert sorted(p.name for p in (backend.directory / "packs").iterdir()) == packs_before
    remote_objects(backend.directory)
    ok(run(clone.root, "pull"))
    ok(run(clone.root, "verify"))


def test_unknown_remote_format_is_refused(tmp_path: pathlib.Path) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    assert backend.directory is not None
    backend.directory.mkdir()
    (backend.directory / "pivot-remote.json").write_text('{"format":2}\n')
    for cmd in ("push", "fetch"):
        res = run(origin.root, cmd)
        assert res.returncode == 1
        lines = res.stderr.strip().splitlines()
        assert lines[-1] == (
            f"Error: remote store ({backend.directory}): remote has format 2; "
            "this pivot understands 1: upgrade pivot"
        ), res.stderr
    assert not (backend.directory / "index").exists(), "nothing written"


def test_format_file_is_written_once(tmp_path: pathlib.Path) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push"))
    assert backend.directory is not None
    assert (backend.directory / "pivot-remote.json").read_text() == '{"format":1}\n'
    objects = remote_objects(backend.directory)
    assert len(objects) == 11


def test_s3_wrong_credentials_one_line_naming_the_remote(
    tmp_path: pathlib.Path, s3_server: S3Server
) -> None:
    backend = new_backend("s3", tmp_path, s3_server)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "remote", "modify", "store", "secret_access_key", "wrong"))
    res = run(origin.root, "push")
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"Error: remote store ({backend.url}): access denied"), lines[0]
    assert "credentials tried: access keys from .pivot/config.local" in lines[0]


def test_s3_missing_bucket_one_line(tmp_path: pathlib.Path, s3_server: S3Server) -> None:
    backend = new_backend("s3", tmp_path, s3_server)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "remote", "modify", "store", "url", "s3://no-such-bucket/x"))
    for cmd in ("push", "fetch"):
        res = run(origin.root, cmd)
        assert res.returncode == 1
        lines = res.stderr.strip().splitlines()
        assert lines == [
            "Error: remote store (s3://no-such-bucket/x): bucket 'no-such-bucket' does not exist"
        ], res.stderr


def test_s3_profile_credentials(tmp_path: pathlib.Path, s3_server: S3Server) -> None:
    backend = new_backend("s3", tmp_path, s3_server)
    origin = origin_project(tmp_path, backend)
    for key in ("access_key_id", "secret_access_key"):
        ok(run(origin.root, "remote", "modify", "store", key, "--unset"))
    creds = tmp_path / "aws-credentials"
    creds.write_text(
        f"[ci]\naws_access_key_id = {s3_server.access_key}\n"
        f"aws_secret_access_key = {s3_server.secret_key}\n"
    )
    ok(run(origin.root, "remote", "modify", "store", "profile", "ci"))
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(creds)}
    doc = json.loads(ok(run(origin.root, "push", "--json", env=env)).stdout)
    assert doc["uploaded"] == 11
    missing = run(origin.root, "push", env={"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no")})
    assert missing.returncode == 1
    assert "AWS profile 'ci' has no access keys" in missing.stderr


def test_verify_allow_missing_accepts_outputs_on_the_remote(tmp_path: pathlib.Path) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push", "train", "prepare", "other"))
    clone = clone_of(origin, tmp_path / "clone", backend)
    partial = run(clone.root, "verify", "--allow-missing")
    assert partial.returncode == 1
    # Only what was not pushed is reported.
    assert "shards not in cache" in partial.stdout
    assert "model.txt not in cache" not in partial.stdout
    ok(run(origin.root, "push"))
    ok(run(clone.root, "verify", "--allow-missing"))
    assert run(clone.root, "verify").returncode == 1, "without the flag the cache must hold them"


def test_status_cloud_lists_what_is_not_pushed(tmp_path: pathlib.Path) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    before = ok(run(origin.root, "status", "-c"))
    assert "Not on remote store:" in before.stdout
    assert "  model.txt" in before.stdout and "  raw" in before.stdout
    ok(run(origin.root, "push", "train"))
    doc = json.loads(ok(run(origin.root, "status", "--cloud", "--json")).stdout)
    assert doc["remote"]["name"] == "store"
    assert "model.txt" not in doc["remote"]["not_pushed"]
    assert "shards" in doc["remote"]["not_pushed"]
    assert run(origin.root, "status", "-c", "-q").returncode == 1
    ok(run(origin.root, "push"))
    after = ok(run(origin.root, "status", "-c"))
    assert "All cached outputs are on remote store" in after.stdout
    assert run(origin.root, "status", "-c", "-q").returncode == 0


def test_repro_pull_restores_from_the_remote_instead_of_running(tmp_path: pathlib.Path) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push"))
    clone = clone_of(origin, tmp_path / "clone", backend)
    res = ok(run(clone.root, "repro", "--pull", "--json"))
    summary = [json.loads(line) for line in res.stdout.splitlines() if line.strip()][-1]
    assert summary["ran"] == 0 and summary["failed"] == 0, res.stdout
    assert not (clone.root / "runs.log").exists(), "no stage body executed"
    assert (clone.root / "model.txt").read_text() == "model of HELLO\n"
    assert sorted(p.name for p in (clone.root / "shards").iterdir()) == [
        "part-0.txt",
        "part-1.txt",
        "part-2.txt",
    ]
    ok(run(clone.root, "verify", "prepare", "train", "evaluate", "other", "make_shards"))
    # Without the remote's help a changed input runs the stage as usual.
    clone.write("input.txt", "changed\n")
    res = ok(run(clone.root, "repro", "--pull", "--json"))
    summary = [json.loads(line) for line in res.stdout.splitlines() if line.strip()][-1]
    assert summary["failed"] == 0 and summary["ran"] >= 2
    assert {"prepare", "train"} <= set(clone.runs())
    assert (clone.root / "model.txt").read_text() == "model of CHANGED\n"


_READ_RAW = """

def read_raw(
    src: Annotated[str, outputs.Dep("raw/a.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("raw_copy.txt", loaders.Text())]:
    _mark("read_raw")
    return src.upper()


pipeline.register(read_raw)
"""


def _summary(res: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = [json.loads(line) for line in res.stdout.splitlines() if line.strip()][-1]
    return doc


def test_fresh_ci_clone_repro_pull_runs_nothing(tmp_path: pathlib.Path, backend: Backend) -> None:
    """The CI flow with the remote as the only shared thing: a fresh clone, `repro --pull`
    runs no stage, every output and tracked file is there with the origin's bytes, and
    `verify` passes. One stage reads a tracked file, which the clone lacks until pulled."""
    origin = origin_project(tmp_path, backend)
    with (origin.root / "pipeline.py").open("a") as f:
        f.write(_READ_RAW)
    with (origin.root / ".gitignore").open("a") as f:
        f.write("/raw_copy.txt\n")
    ok(run(origin.root, "repro"))
    git(origin.root, "add", "-A")
    git(origin.root, "commit", "-q", "-m", "read_raw")
    ok(run(origin.root, "push"))

    clone = clone_of(origin, tmp_path / "clone", backend)
    res = ok(run(clone.root, "repro", "--pull", "--json"))
    summary = _summary(res)
    assert summary["ran"] == 0 and summary["failed"] == 0, res.stdout
    assert not (clone.root / "runs.log").exists(), "no stage body executed"
    assert_outputs_match(origin.root, clone.root)
    assert (clone.root / "raw_copy.txt").read_text() == "RAW A\n"
    ok(run(clone.root, "verify"))
    cache_is_sound(clone.root)

    # Named stages pull only the tracked files they read.
    other = clone_of(origin, tmp_path / "other", backend)
    summary = _summary(ok(run(other.root, "repro", "--pull", "read_raw", "--json")))
    assert summary["ran"] == 0, summary
    assert (other.root / "raw" / "a.txt").read_text() == "raw a\n"
    assert not (other.root / "big.bin").exists()
