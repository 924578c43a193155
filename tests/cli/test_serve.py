"""`pivot repro --watch --serve`: JSON-RPC 2.0 over the Unix socket, with a real client."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import stat
import subprocess
import textwrap
import time
from typing import Any

import pytest
from _pivot_helpers import Project, make_project, pivot_argv
from _watch_helpers import HELPERS, PIPELINE, TIMEOUT_S, WatchProc


class Client:
    """A line-oriented JSON-RPC client on the project's socket."""

    def __init__(self, path: pathlib.Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT_S)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rb")
        self.notes: list[dict[str, Any]] = []
        self._ids = iter(range(1, 1 << 30))

    def send_raw(self, data: bytes) -> Any:
        self.sock.sendall(data + b"\n")
        return self._reply()

    def _reply(self) -> Any:
        while True:
            line = self.file.readline()
            assert line, "server closed the connection"
            msg = json.loads(line)
            if isinstance(msg, dict) and msg.get("method") == "event" and "id" not in msg:
                self.notes.append(msg["params"])
                continue
            return msg

    def call(self, method: str, params: Any = None) -> Any:
        req: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            req["params"] = params
        reply = self.send_raw(json.dumps(req).encode())
        assert reply["id"] == req["id"]
        return reply

    def event(self, pred: Any, what: str) -> dict[str, Any]:
        """The next notification matching `pred` (earlier ones are dropped)."""
        while True:
            while self.notes:
                e = self.notes.pop(0)
                if pred(e):
                    return e
            line = self.file.readline()
            assert line, f"connection closed before {what}"
            msg = json.loads(line)
            assert msg.get("method") == "event", msg
            self.notes.append(msg["params"])

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    p = make_project(tmp_path / "p", PIPELINE)
    p.write("helpers.py", textwrap.dedent(HELPERS))
    return p


def _sock(proj: Project) -> pathlib.Path:
    return proj.root / ".pivot" / "tmp" / "serve.sock"


def _serving(proj: Project, *args: str) -> WatchProc:
    w = WatchProc(proj.root, "--serve", *args)
    deadline = time.monotonic() + TIMEOUT_S
    while not _sock(proj).exists():
        assert w.proc.poll() is None, w.stderr()
        assert time.monotonic() < deadline, w.stderr()
        time.sleep(0.05)
    return w


def test_serve_status_run_subscribe_and_errors(proj: Project) -> None:
    w = _serving(proj)
    try:
        w.next_run()  # the initial run
        mode = os.stat(_sock(proj)).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        c = Client(_sock(proj))

        status = c.call("status")["result"]
        assert status["stages"]["shout"]["stale"] is False
        assert status["stages"]["shout"]["reason"] == "unchanged"
        assert status["stages"]["shout"]["last_result"]["status"] == "ran"
        assert status["running"] is None and status["pipeline_error"] is None
        proj.write("input.txt", "stale now\n")  # status sees the workspace as it is
        w.next_run()
        assert c.call("status")["result"]["last_run"]["ran"] == 2

        # protocol errors
        assert c.send_raw(b"{not json")["error"]["code"] == -32700
        assert c.send_raw(b'{"id": 7, "method": "status"}')["error"]["code"] == -32600
        assert c.call("frobnicate")["error"]["code"] == -32601
        assert c.call("run", {"stages": "shout"})["error"]["code"] == -32602
        bad = c.call("run", {"stages": ["nope"]})["error"]
        assert bad["code"] == -32602 and "nope" in bad["message"]
        assert c.call("run", {"force": "yes"})["error"]["code"] == -32602
        assert c.call("status", {"extra": 1})["error"]["code"] == -32602
        # a notification (no id) gets no reply; the next request still works
        c.sock.sendall(b'{"jsonrpc": "2.0", "method": "status"}\n')
        assert "result" in c.call("status")

        # subscribe, then a forced run of one stage: its events arrive as notifications
        assert c.call("subscribe")["result"]["subscribed"] is True
        run_id = c.call("run", {"stages": ["shout"], "force": True})["result"]["run_id"]
        start = c.event(lambda e: e["type"] == "run_start", "run_start")
        assert start["run_id"] == run_id and start["stages"] == ["shout"]
        done = c.event(lambda e: e["type"] == "stage_complete", "stage_complete")
        assert done == {**done, "stage": "shout", "status": "ran", "reason": "Forced"}
        result = c.event(lambda e: e["type"] == "execution_result", "execution_result")
        assert result["run_id"] == run_id and result["ran"] == 1
        # the requested run is in the history like any other (docs/cli.md, "Run history")
        shown = subprocess.run(
            [*pivot_argv(), "history", "--json", "-n", "1"],
            cwd=proj.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        newest = json.loads(shown.stdout)["runs"][0]
        assert newest["args"]["trigger"] == "requested"
        assert [(s["stage"], s["status"]) for s in newest["stages"]] == [("shout", "ran")]

        # a batch
        replies = c.send_raw(
            b'[{"jsonrpc": "2.0", "id": "a", "method": "status"},'
            b' {"jsonrpc": "2.0", "id": "b", "method": "nope"}]'
        )
        assert [r["id"] for r in replies] == ["a", "b"]
        assert "result" in replies[0] and replies[1]["error"]["code"] == -32601
        c.close()
    finally:
        code = w.interrupt()
    assert code == 130
    assert not _sock(proj).exists()  # removed on exit


def test_serve_cancel_stale_socket_and_second_server(proj: Project) -> None:
    w = _serving(proj)
    try:
        w.next_run()
        c = Client(_sock(proj))
        assert c.call("cancel")["result"] == {"cancelled": False, "run_id": None}
        assert c.call("subscribe")["result"]["subscribed"]

        # a second server on the same project is refused
        second = subprocess.run(
            [*pivot_argv(), "repro", "--watch", "--serve"],
            cwd=proj.root,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert second.returncode == 1
        assert "already serving" in second.stderr and "serve.sock" in second.stderr

        # cancel a run whose stage never ends on its own: the worker is killed, the
        # dependent is not started, and the run reports both
        proj.write("BLOCK", "")
        run_id = c.call("run", {"force": True})["result"]["run_id"]
        c.event(lambda e: e["type"] == "stage_start" and e["stage"] == "shout", "shout start")
        deadline = time.monotonic() + TIMEOUT_S
        while not proj.exists("started"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.call("cancel")["result"] == {"cancelled": True, "run_id": run_id}
        by_stage = {}
        while len(by_stage) < 2:
            e = c.event(lambda e: e["type"] == "stage_complete", "stage_complete")
            by_stage[e["stage"]] = e
        assert (
            by_stage["shout"]["status"] == "failed" and by_stage["shout"]["reason"] == "cancelled"
        )
        assert by_stage["count"]["status"] == "blocked"
        result = c.event(lambda e: e["type"] == "execution_result", "execution_result")
        assert result["run_id"] == run_id and result["failed"] == 1 and result["blocked"] == 1
        c.close()
        (proj.root / "BLOCK").unlink()
    finally:
        w.proc.kill()  # dies without clean-up: the socket file stays behind
        w.close()
    assert _sock(proj).exists()

    # a new server replaces the stale socket of the dead one
    w = _serving(proj)
    try:
        w.next_run()
        c = Client(_sock(proj))
        assert "result" in c.call("status")
        c.close()
    finally:
        assert w.interrupt() == 130
