"""S3 protocol edge cases, against moto's threaded server and SeaweedFS: create-only writes
(a key that already exists is never overwritten, whoever wrote it) and error responses
(403, 404 NoSuchBucket, 5xx) ending in one clean line naming the remote, exit 1."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import pytest
from _proxy import Reply, Rule, running
from _remote_helpers import (
    BIG,
    assert_outputs_match,
    clone_of,
    new_backend,
    ok,
    origin_project,
    remote_files,
    run,
)
from _s3 import S3Server, client

# An empty ListObjectsV2 answer: the remote looks empty to whoever lists through the proxy.
_EMPTY_LISTING = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    "<Name>pivot</Name><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
    "<IsTruncated>false</IsTruncated></ListBucketResult>"
)


@pytest.fixture(params=["moto", "seaweedfs"])
def server(request: pytest.FixtureRequest) -> S3Server:
    fixture = "moto_server" if request.param == "moto" else "s3_server"
    server: S3Server = request.getfixturevalue(fixture)
    return server


def _through(proxy_endpoint: str, root: pathlib.Path, retries: int | None = None) -> None:
    ok(run(root, "remote", "modify", "store", "endpoint_url", proxy_endpoint))
    if retries is not None:
        ok(run(root, "remote", "modify", "store", "retries", str(retries)))


def _one_line_error(res: object, start: str) -> str:
    import subprocess

    assert isinstance(res, subprocess.CompletedProcess)
    assert res.returncode == 1, f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(start), lines[0]
    return str(lines[0])


def test_a_key_that_exists_is_never_overwritten(tmp_path: pathlib.Path, server: S3Server) -> None:
    """A second writer that did not see the first one's keys (its HEADs and listing raced
    ahead of the first writer's PUTs) writes the same keys create-only: the server refuses
    each (412) and pivot takes that as "already there"; no byte of the first writer's keys
    changes. The first writer's keys hold planted bytes here, so an overwrite would show."""
    backend = new_backend("s3", tmp_path, server)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push"))
    prefix = backend.url.split("/", 3)[3]
    first = remote_files(backend)
    kinds = {k.split("/")[0] for k in first}
    assert {"packs", "index", "runs", "objects", "pivot-remote.json"} <= kinds, kinds
    s3 = client(server)
    planted: dict[str, bytes] = {}
    for key in first:
        if key == "pivot-remote.json":
            continue
        # A roots record has a name of its own per push (docs/formats.md): never written
        # again, so nothing to race on; it is still checked below to keep its bytes.
        if key.startswith("roots/"):
            planted[key] = b"planted by another writer: " + key.encode()
            s3.put_object(Bucket=server.bucket, Key=f"{prefix}/{key}", Body=planted[key])
            continue
        planted[key] = b"planted by another writer: " + key.encode()
        s3.put_object(Bucket=server.bucket, Key=f"{prefix}/{key}", Body=planted[key])
    assert len(planted) >= 7, planted.keys()

    puts: list[str] = []

    def blind(method: str, path: str, _n: int) -> Reply | None:
        if method == "PUT":
            puts.append(path.split("?")[0])
        if method == "HEAD":
            return Reply(404, "NoSuchKey")
        if method == "GET" and "list-type=2" in path:
            return Reply(200, body=_EMPTY_LISTING)
        return None

    rule: Rule = blind
    gen: Iterator = running(server.endpoint, rule)
    proxy = next(gen)
    try:
        _through(proxy.endpoint, origin.root)
        res = ok(run(origin.root, "push", "--json"))
    finally:
        gen.close()
    for key in planted:
        if not key.startswith("roots/"):
            assert f"/{server.bucket}/{prefix}/{key}" in puts, f"{key} was not written again"
    doc = json.loads(res.stdout)
    assert doc["runs_uploaded"] == 0, "every run entry was already there (412)"
    after = remote_files(backend)
    for key, data in planted.items():
        assert after[key] == data, f"{key} was overwritten"
    # The loose object (>= 8 MiB) went up again as a multipart upload, and its create-only
    # completion was refused: the planted bytes stand, and no upload is left open.
    big = [k for k in first if k.startswith("objects/")]
    assert len(big) == 1 and len(first[big[0]]) == BIG
    assert f"/{server.bucket}/{prefix}/{big[0]}" in puts, "the big object was sent again"
    s3 = client(server)
    open_uploads = s3.list_multipart_uploads(Bucket=server.bucket, Prefix=prefix)
    assert not open_uploads.get("Uploads"), open_uploads


def test_error_responses_are_one_line_naming_the_remote(
    tmp_path: pathlib.Path, moto_server: S3Server
) -> None:
    backend = new_backend("s3", tmp_path, moto_server)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push"))
    clone = clone_of(origin, tmp_path / "clone", backend)
    name = f"Error: remote store ({backend.url}): "

    # 404 NoSuchBucket from the server itself.
    ok(run(clone.root, "remote", "modify", "store", "url", "s3://no-such-bucket/x"))
    for cmd in ("push", "pull"):
        line = _one_line_error(
            run(clone.root, cmd), "Error: remote store (s3://no-such-bucket/x): "
        )
        assert line.endswith("bucket 'no-such-bucket' does not exist"), line
    ok(run(clone.root, "remote", "modify", "store", "url", backend.url))

    faults: dict[str, Reply] = {}

    def rule(_m: str, _p: str, _n: int) -> Reply | None:
        return faults.get("now")

    gen: Iterator = running(moto_server.endpoint, rule)
    proxy = next(gen)
    try:
        _through(proxy.endpoint, clone.root, retries=1)
        faults["now"] = Reply(403, "AccessDenied")
        for cmd in ("push", "pull"):
            line = _one_line_error(run(clone.root, cmd), name + "access denied")
            assert "credentials tried: access keys from .pivot/config.local" in line
        faults["now"] = Reply(500, "InternalError")
        for cmd in ("push", "pull"):
            line = _one_line_error(run(clone.root, cmd), name)
            assert "500" in line, line
        # The server answers again: the same clone pulls everything (a round trip on moto).
        faults.clear()
        ok(run(clone.root, "pull"))
    finally:
        gen.close()
    assert_outputs_match(origin.root, clone.root)
    ok(run(clone.root, "verify"))
