"""5xx faults between pivot and S3: retried with backoff; persistent ones end in a clean exit 1
naming the remote and the key. A small forwarding proxy on 127.0.0.1 injects the faults."""

from __future__ import annotations

import http.client
import http.server
import pathlib
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

import pytest
from _remote_helpers import clone_of, new_backend, ok, origin_project, run
from _s3 import S3Server

# (method, path, request number) -> inject a 503?
Rule = Callable[[str, str, int], bool]


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, rule: Rule) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        u = urlparse(upstream)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self.rule = rule
        self.count = 0
        self.injected = 0
        self.lock = threading.Lock()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Proxy

    def log_message(self, *_args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        with self.server.lock:
            self.server.count += 1
            n = self.server.count
        if self.server.rule(self.command, self.path, n):
            with self.server.lock:
                self.server.injected += 1
            msg = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Length", str(len(msg)))
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            self.wfile.write(msg)
            return
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        # Headers verbatim (Host included): the request's signature covers them.
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        # One request per connection: keeps keep-alive races of this small proxy out of the
        # picture (the client's own retry behaviour is what is under test).
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward


def _proxy(server: S3Server, rule: Rule) -> Iterator[_Proxy]:
    p = _Proxy(server.endpoint, rule)
    t = threading.Thread(target=p.serve_forever, daemon=True)
    t.start()
    try:
        yield p
    finally:
        p.shutdown()
        p.server_close()


@pytest.fixture
def flaky(s3_server: S3Server) -> Iterator[_Proxy]:
    """Every third request fails with 503 (a busy server)."""
    yield from _proxy(s3_server, lambda _m, _p, n: n % 3 == 0)


@pytest.fixture
def broken_puts(s3_server: S3Server) -> Iterator[_Proxy]:
    """Every upload of a pack fails with 503."""
    yield from _proxy(s3_server, lambda m, p, _n: m in ("PUT", "POST") and "/packs/" in p)


def _use_proxy(root: pathlib.Path, proxy: _Proxy, retries: int) -> None:
    host, port = proxy.server_address[:2]
    ok(run(root, "remote", "modify", "store", "endpoint_url", f"http://{host!s}:{port}"))
    ok(run(root, "remote", "modify", "store", "retries", str(retries)))


def test_transient_5xx_are_retried(
    tmp_path: pathlib.Path, s3_server: S3Server, flaky: _Proxy
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
    tmp_path: pathlib.Path, s3_server: S3Server, broken_puts: _Proxy
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
