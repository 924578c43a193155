"""`repro --watch --serve`: JSON-RPC 2.0 on a Unix socket for agents and editors (docs/serve.md).

Newline-delimited JSON both ways. Requests are answered on the connection's own thread; runs
and cancels are handed to the watch loop, which owns the pipeline. The server is also one of
the loop's observers: it forwards every event to the connections that subscribed, as
`{"jsonrpc": "2.0", "method": "event", "params": {...}}` notifications.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot.cli.output import JSONL_SCHEMA_VERSION, JsonlSink
from pivot.exceptions import PivotError, UnknownStageError

if TYPE_CHECKING:
    from pivot.engine.events import RunSummary, StageResult
    from pivot.engine.watch import WatchLoop

logger = logging.getLogger(__name__)

SOCKET_NAME = "serve.sock"
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_ERROR = -32000  # a pivot error (e.g. the pipeline does not load)
_MAX_MESSAGE = 1 << 20
_SEND_TIMEOUT_S = 5.0
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes with the NUL


class _ParamsError(Exception):
    pass


def socket_path(tmp_dir: Path) -> Path:
    return tmp_dir / SOCKET_NAME


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.subscribed = False
        self.alive = True

    def send(self, obj: Any) -> bool:
        data = (json.dumps(obj) + "\n").encode()
        with self.lock:
            if not self.alive:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.alive = False
                return False

    def close(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()


class _Events(JsonlSink):
    """The `--json` event shapes, with the run id added, sent to subscribers."""

    def __init__(self, broadcast: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(show_output=True)
        self._broadcast = broadcast
        self.run_id: int | None = None

    def emit(self, event: dict[str, Any]) -> None:
        if self.run_id is not None and event.get("type") != "schema_version":
            event = {**event, "run_id": self.run_id}
        self._broadcast(event)


class Server:
    """The socket, its connections, and the JSON-RPC methods."""

    def __init__(self, loop: WatchLoop, path: Path) -> None:
        self.loop = loop
        self.path = path
        self._listener: socket.socket | None = None
        self._inode: int | None = None
        self._conns: list[_Conn] = []
        self._conns_lock = threading.Lock()
        self._events = _Events(self._broadcast)
        self._last: dict[str, dict[str, Any]] = {}  # stage -> its last stage_complete
        self.methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "status": self.rpc_status,
            "run": self.rpc_run,
            "cancel": self.rpc_cancel,
        }

    # --- socket ----------------------------------------------------------------------------
    def start(self) -> None:
        path = str(self.path)
        if len(os.fsencode(path)) > _SUN_PATH_MAX:
            raise PivotError(
                f"socket path too long for a Unix socket ({len(path)} bytes): {path}; "
                "move the project to a shorter path"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket file is created 0600: only this user may connect
        try:
            sock.bind(path)
        except OSError as e:
            sock.close()
            raise PivotError(f"cannot listen on {path}: {e.strerror or e}") from e
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self._inode = os.stat(path).st_ino
        sock.listen(16)
        self._listener = sock
        threading.Thread(target=self._accept, name="pivot-serve", daemon=True).start()

    def _remove_stale(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise PivotError(f"{self.path} exists and is not a socket; remove it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.path))
        except OSError:  # nobody listens: left by a pivot that died
            os.unlink(self.path)
            return
        finally:
            probe.close()
        raise PivotError(f"another pivot is already serving on {self.path}")

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        try:
            if self._inode is not None and os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        except OSError:
            pass
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()

    def _accept(self) -> None:
        while self._listener is not None:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # closed
            # A client that stops reading is dropped after a while, never waited for forever.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(_SEND_TIMEOUT_S), 0)
            )
            conn = _Conn(sock)
            with self._conns_lock:
                self._conns.append(conn)
            threading.Thread(
                target=self._serve_conn, args=(conn,), name="pivot-serve-conn", daemon=True
            ).start()

    def _serve_conn(self, conn: _Conn) -> None:
        buf = b""
        try:
            while conn.alive:
                chunk = conn.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        self._handle_line(conn, line)
                if len(buf) > _MAX_MESSAGE:
                    conn.send(_error(None, INVALID_REQUEST, "message too large"))
                    break
        except OSError:
            pass
        finally:
            conn.close()
            with self._conns_lock:
                if conn in self._conns:
                    self._conns.remove(conn)

    # --- JSON-RPC --------------------------------------------------------------------------
    def _handle_line(self, conn: _Conn, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError as e:
            conn.send(_error(None, PARSE_ERROR, f"Parse error: {e}"))
            return
        if isinstance(msg, list):
            if not msg:
                conn.send(_error(None, INVALID_REQUEST, "Invalid Request: empty batch"))
                return
            replies = [r for m in msg if (r := self._handle_one(conn, m)) is not None]
            if replies:
                conn.send(replies)
            return
        reply = self._handle_one(conn, msg)
        if reply is not None:
            conn.send(reply)

    def _handle_one(self, conn: _Conn, msg: Any) -> dict[str, Any] | None:
        if not isinstance(msg, dict):
            return _error(None, INVALID_REQUEST, "Invalid Request: not an object")
        rid = msg.get("id")
        if isinstance(rid, bool) or (rid is not None and not isinstance(rid, (str, int))):
            return _error(None, INVALID_REQUEST, "Invalid Request: bad id")
        method = msg.get("method")
        if msg.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return _error(
                rid, INVALID_REQUEST, 'Invalid Request: needs "jsonrpc": "2.0" and a method'
            )
        notification = "id" not in msg
        params = msg.get("params", {})
        if isinstance(params, list) and not params:
            params = {}
        try:
            if not isinstance(params, dict):
                raise _ParamsError("params must be an object")
            if method == "subscribe":
                result: Any = self.rpc_subscribe(conn, params)
            elif method in self.methods:
                result = self.methods[method](params)
            else:
                return (
                    None
                    if notification
                    else _error(rid, METHOD_NOT_FOUND, f"Method not found: {method}")
                )
        except _ParamsError as e:
            return None if notification else _error(rid, INVALID_PARAMS, f"Invalid params: {e}")
        except UnknownStageError as e:
            return None if notification else _error(rid, INVALID_PARAMS, f"Invalid params: {e}")
        except PivotError as e:
            return None if notification else _error(rid, SERVER_ERROR, str(e))
        except Exception as e:  # a bug must not kill the connection thread silently
            logger.debug("serve: %s failed", method, exc_info=True)
            return None if notification else _error(rid, SERVER_ERROR, f"{type(e).__name__}: {e}")
        return None if notification else {"jsonrpc": "2.0", "id": rid, "result": result}

    def rpc_status(self, params: dict[str, Any]) -> dict[str, Any]:
        _no_params(params, set())
        from pivot.engine import plan
        from pivot.fingerprint import FingerprintCache

        loop = self.loop
        ctx = loop.ctx
        stages: dict[str, Any] = {}
        if ctx is not None:
            # A private fingerprint cache: the loop's thread may be planning at the same time.
            mine = dataclasses.replace(
                ctx, _fingerprints=FingerprintCache.load(ctx.project.state_dir)
            )
            order = ctx.graph.order(loop.targets or None)
            decisions = plan.decide(mine, order)
            for name in order:
                d = decisions[name]
                entry: dict[str, Any] = {
                    "stale": bool(d.stale),
                    "reason": d.reason,
                    "details": list(d.details),
                }
                last = self._last.get(name)
                if last is not None:
                    entry["last_result"] = last
                stages[name] = entry
        last_run = loop.last_summary
        return {
            "stages": stages,
            "running": loop.current_run,
            "pipeline_error": loop.error,
            "last_run": _counts(last_run) if last_run is not None else None,
        }

    def rpc_run(self, params: dict[str, Any]) -> dict[str, Any]:
        _no_params(params, {"stages", "force"})
        stages = params.get("stages")
        if stages is not None and (
            not isinstance(stages, list) or not all(isinstance(s, str) for s in stages)
        ):
            raise _ParamsError("stages must be a list of stage names")
        force = params.get("force", False)
        if not isinstance(force, bool):
            raise _ParamsError("force must be true or false")
        run_id = self.loop.request_run(stages or None, force)
        return {"run_id": run_id}

    def rpc_cancel(self, params: dict[str, Any]) -> dict[str, Any]:
        _no_params(params, set())
        run_id = self.loop.cancel()
        return {"cancelled": run_id is not None, "run_id": run_id}

    def rpc_subscribe(self, conn: _Conn, params: dict[str, Any]) -> dict[str, Any]:
        _no_params(params, set())
        conn.subscribed = True
        return {"subscribed": True, "schema_version": JSONL_SCHEMA_VERSION}

    # --- events (the watch loop's thread) ---------------------------------------------------
    def _broadcast(self, event: dict[str, Any]) -> None:
        note = {"jsonrpc": "2.0", "method": "event", "params": event}
        with self._conns_lock:
            subs = [c for c in self._conns if c.subscribed]
        for c in subs:
            if not c.send(note):
                c.close()

    def run_started(self, run_id: int, trigger: str, stages: list[str]) -> None:
        self._events.run_id = run_id
        self._events.emit({"type": "run_start", "trigger": trigger, "stages": stages})

    def stage_start(self, stage: str, index: int, total: int) -> None:
        self._events.stage_start(stage, index, total)

    def stage_output(self, stage: str, line: str) -> None:
        self._events.stage_output(stage, line)

    def stage_complete(self, result: StageResult, index: int, total: int) -> None:
        self._last[result.stage] = {
            "status": str(result.status),
            "reason": result.reason,
            "duration_ms": round(float(result.duration_ms), 3),
        }
        self._events.stage_complete(result, index, total)

    def run_finished(self, run_id: int, summary: RunSummary) -> None:
        self._events.finish(summary)
        self._events.run_id = None

    def pipeline_error(self, message: str, kept_last_good: bool) -> None:
        self._events.emit(
            {"type": "pipeline_error", "message": message, "kept_last_good": kept_last_good}
        )


def _counts(summary: RunSummary) -> dict[str, Any]:
    return {
        "ran": summary.ran,
        "skipped": summary.skipped,
        "failed": summary.failed,
        "blocked": summary.blocked,
        "total_duration_ms": round(float(summary.duration_ms), 3),
    }


def _no_params(params: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise _ParamsError(f"unknown parameter(s): {', '.join(unknown)}")


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}
