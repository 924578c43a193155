"""A fault-injecting forwarding proxy between pivot and an S3 server, on 127.0.0.1.

A rule sees each request (method, path, request number) and answers with a fault or None
(forward). Faults: an S3 error response (`Reply`) or a stall (`Stall`: the request is read and
then nothing is answered for a while, as a hung server or a dead connection looks to a client).
"""

from __future__ import annotations

import http.client
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlparse


@dataclass(frozen=True)
class Reply:
    status: int
    code: str = ""  # the S3 error code of the XML error body
    body: str | None = None  # a whole body instead (e.g. a listing)


@dataclass(frozen=True)
class Stall:
    seconds: float


Fault = Reply | Stall
Rule = Callable[[str, str, int], Fault | None]


class Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, rule: Rule) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        u = urlparse(upstream)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self.rule = rule
        self.count = 0
        self.injected = 0
        self.lock = threading.Lock()
        # Set on shutdown: stalled handlers stop waiting.
        self.closing = threading.Event()

    @property
    def endpoint(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Proxy

    def log_message(self, *_args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        with self.server.lock:
            self.server.count += 1
            n = self.server.count
        fault = self.server.rule(self.command, self.path, n)
        if fault is not None:
            with self.server.lock:
                self.server.injected += 1
        if isinstance(fault, Stall):
            deadline = time.monotonic() + fault.seconds
            while time.monotonic() < deadline and not self.server.closing.is_set():
                time.sleep(0.05)
            self.close_connection = True
            return  # no response at all: the client's timeout is what ends the request
        if isinstance(fault, Reply):
            msg = (
                fault.body
                if fault.body is not None
                else f"<Error><Code>{fault.code}</Code><Message>injected</Message></Error>"
            ).encode()
            self.send_response(fault.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(msg)))
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
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


def running(upstream: str, rule: Rule) -> Iterator[Proxy]:
    """A proxy serving in a thread for the duration of the generator (a fixture body)."""
    p = Proxy(upstream, rule)
    t = threading.Thread(target=p.serve_forever, daemon=True)
    t.start()
    try:
        yield p
    finally:
        p.closing.set()
        p.shutdown()
        p.server_close()
