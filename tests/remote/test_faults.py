"""5xx faults between pivot and S3: retried with backoff; persistent ones end in a clean exit 1
naming the remote and the key. A small forwarding proxy on 127.0.0.1 injects the faults."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Iterator

import pytest
from _proxy import Proxy, Reply, Rule, Stall, running
from _remote_helpers import BIG, cache_is_sound, clone_of, new_backend, ok, origin_project, run
from _s3 import S3Server

SLOW_DOWN = Reply(503, "SlowDown")


def _proxy(server: S3Server, rule: Rule) -> Iterator[Proxy]:
    yield from running(server.endpoint, rule)


@pytest.fixture
def flaky(s3_server: S3Server) -> Iterator[Proxy]:
    """Every third request fails with 503 (a busy server)."""
    yield from _proxy(s3_server, lambda _m, _p, n: SLOW_DOWN if n % 3 == 0 else None)


@pytest.fixture
def broken_puts(s3_server: S3Server) -> Iterator[Proxy]:
    """Every upload of a pack fails with 503."""
    yield from _proxy(
        s3_server, lambda m, p, _n: SLOW_DOWN if m in ("PUT", "POST") and "/packs/" in p else None
    )


def _use_proxy(root: pathlib.Path, proxy: Proxy, retries: int) -> None:
    ok(run(root, "remote", "modify", "store", "endpoint_url", proxy.endpoint))
    ok(run(root, "remote", "modify", "store", "retries", str(retries)))


def test_transient_5xx_are_retried(
    tmp_path: pathlib.Path, s3_server: S3Server, flaky: Proxy
) -> None:
    backend = new_backend("s3", tmp_path, s3_server)
    origin = origin_project(tmp_path, backend)
    _use_proxy(origin.root, flaky, retries=5)
    ok(run(origin.root, "push"))
    clone = clone_of(origin, tmp_path / "clone", backend)
    _use_proxy(clone.root, flaky, retries=5)
    ok(run(clone.root, "pull"))
    ok(run(clone.root, "verify"))
    assert flaky.injected > 5, "faults were injected and survived"


def test_persistent_5xx_fail_cleanly_and_a_rerun_completes(
    tmp_path: pathlib.Path, s3_server: S3Server, broken_puts: Proxy
) -> None:
    backend = new_backend("s3", tmp_path, s3_server)
    origin = origin_project(tmp_path, backend)
    _use_proxy(origin.root, broken_puts, retries=1)
    res = run(origin.root, "push")
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"Error: remote store ({backend.url}): packs/"), lines[0]
    assert "Traceback" not in res.stderr
    # The server is healthy again: a plain re-run publishes everything.
    assert s3_server.endpoint
    ok(run(origin.root, "remote", "modify", "store", "endpoint_url", s3_server.endpoint))
    ok(run(origin.root, "push"))
    clone = clone_of(origin, tmp_path / "clone", backend)
    ok(run(clone.root, "pull"))
    ok(run(clone.root, "verify"))


# --- timeouts: a server that accepts a request and never answers ------------------------------

STALL = Stall(30)


def _first(pred: Callable[[str, str], bool], times: int = 1) -> Rule:
    """Stall the first `times` requests matching `pred`, forward everything else."""
    seen = [0]

    def rule(method: str, path: str, _n: int) -> Stall | None:
        if pred(method, path) and seen[0] < times:
            seen[0] += 1
            return STALL
        return None

    return rule


def _stalling(server: S3Server, rule: Rule) -> Iterator[Proxy]:
    return running(server.endpoint, rule)


def _use_stalling(root: pathlib.Path, proxy: Proxy, retries: int) -> None:
    """Through `proxy`, with a 1 s request timeout (a stalled request fails fast; a legitimate
    one slowed down by a loaded machine is retried like any other)."""
    _use_proxy(root, proxy, retries)
    ok(run(root, "remote", "modify", "store", "timeout", "1"))


def test_stalled_requests_time_out_and_are_retried(
    tmp_path: pathlib.Path, s3_server: S3Server
) -> None:
    backend = new_backend("s3", tmp_path, s3_server)
    origin = origin_project(tmp_path, backend)
    # Push: the first upload of an index (a create-only PUT), of a pack and of a part of the
    # big loose object each hang once, and so does the (create-only) completion of its upload.
    push_rule = _first(lambda m, p: m == "PUT" and "/index/" in p)
    pack_rule = _first(lambda m, p: m == "PUT" and "/packs/" in p)
    part_rule = _first(lambda m, p: m == "PUT" and "/objects/" in p and "uploadId" in p)
    done_rule = _first(lambda m, p: m == "POST" and "/objects/" in p and "uploadId" in p)

    def on_push(m: str, p: str, n: int) -> Stall | None:
        return (
            push_rule(m, p, n) or pack_rule(m, p, n) or part_rule(m, p, n) or done_rule(m, p, n)  # type: ignore[return-value]
        )

    gen = _stalling(s3_server, on_push)
    proxy = next(gen)
    try:
        _use_stalling(origin.root, proxy, retries=5)
        doc = json.loads(ok(run(origin.root, "push", "--json")).stdout)
        assert proxy.injected == 4
    finally:
        gen.close()
    assert (doc["uploaded"], doc["runs_uploaded"]) == (11, 5)

    # Pull: the first range read of a pack and the first read of the big object hang.
    clone = clone_of(origin, tmp_path / "clone", backend)
    pack_get = _first(lambda m, p: m == "GET" and "/packs/" in p)
    big_get = _first(lambda m, p: m == "GET" and "/objects/" in p)
    gen = _stalling(s3_server, lambda m, p, n: pack_get(m, p, n) or big_get(m, p, n))
    proxy = next(gen)
    try:
        _use_stalling(clone.root, proxy, retries=5)
        ok(run(clone.root, "pull"))
        assert proxy.injected == 2
    finally:
        gen.close()
    ok(run(clone.root, "verify"))


def test_persistent_stall_fails_cleanly_and_a_rerun_moves_only_what_is_missing(
    tmp_path: pathlib.Path, s3_server: S3Server
) -> None:
    backend = new_backend("s3", tmp_path, s3_server)
    origin = origin_project(tmp_path, backend)
    name = f"Error: remote store ({backend.url}): objects/"
    # Every part upload of the big loose object hangs; the packs go through.
    gen = _stalling(s3_server, lambda m, p, _n: STALL if m == "PUT" and "/objects/" in p else None)
    proxy = next(gen)
    try:
        _use_stalling(origin.root, proxy, retries=2)
        res = run(origin.root, "push")
        # Two parts (8 MiB + 1 MiB), each tried once and retried twice.
        assert proxy.injected == 6, proxy.injected
    finally:
        gen.close()
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(name), res.stderr
    ok(run(origin.root, "remote", "modify", "store", "endpoint_url", s3_server.endpoint))
    doc = json.loads(ok(run(origin.root, "push", "--json")).stdout)
    # The 8 files in the pack went through; the big object and the two directory manifests
    # (published only after all files) had not.
    assert (doc["uploaded"], doc["skipped"]) == (3, 8), doc
    assert BIG < doc["bytes"] < BIG + 4096, doc

    # The same on the way down: every read of the big object hangs.
    clone = clone_of(origin, tmp_path / "clone", backend)
    gen = _stalling(s3_server, lambda m, p, _n: STALL if m == "GET" and "/objects/" in p else None)
    proxy = next(gen)
    try:
        _use_stalling(clone.root, proxy, retries=1)
        res = run(clone.root, "pull")
    finally:
        gen.close()
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert any(line.startswith(name) for line in res.stderr.splitlines()), res.stderr
    assert not (clone.root / "big.bin").exists()
    cache_is_sound(clone.root)
    ok(run(clone.root, "remote", "modify", "store", "endpoint_url", s3_server.endpoint))
    doc = json.loads(ok(run(clone.root, "pull", "--json")).stdout)
    assert (doc["fetched"], doc["bytes"]) == (1, BIG), doc
    ok(run(clone.root, "verify"))
