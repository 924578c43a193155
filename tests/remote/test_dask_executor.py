"""`pivot repro --executor dask://…` on a real `distributed.LocalCluster` (process workers)
with the S3 server as the only thing shared: every worker works in its own directory and
refuses, through the PIVOT_DASK_FORBID audit hook, to touch the coordinators' projects."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from _pivot_helpers import make_project, pivot_argv
from _remote_helpers import Backend, new_backend, ok, run
from _s3 import S3Server, clean_env

DIAMOND = """
import json
import os
import pathlib
import time
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def _mark(name: str) -> None:
    # Not an output: on a worker it lands in the task's scratch directory, never here.
    with open("runs.log", "a", encoding="utf-8") as f:
        f.write(name + "\\n")


def top(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("a.txt", loaders.Text())]:
    _mark("top")
    return src.upper()


def left(
    a: Annotated[str, outputs.Dep("a.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("b.txt", loaders.Text())]:
    _mark("left")
    return a + "left\\n"


def right(
    a: Annotated[str, outputs.Dep("a.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("parts/", loaders.PathOnly())]:
    _mark("right")
    out = pathlib.Path("parts")
    out.mkdir(exist_ok=True)
    for i in range(3):
        (out / f"p{i}.txt").write_text(f"{i}:{a}", encoding="utf-8")
    return out


def bottom(
    b: Annotated[str, outputs.Dep("b.txt", loaders.Text())],
    parts: Annotated[pathlib.Path, outputs.Dep("parts", loaders.PathOnly())],
) -> Annotated[dict, outputs.Metric("metrics.json")]:
    _mark("bottom")
    return {"b": len(b), "parts": sorted(p.name for p in parts.iterdir())}


def slow(
    a: Annotated[str, outputs.Dep("a.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("slow.txt", loaders.Text())]:
    # The kill test: the first attempt reports its Dask worker's pid and waits to be killed.
    kill_dir = pathlib.Path(os.environ["PIVOT_TEST_KILL_DIR"])
    if not (kill_dir / "go").exists():
        (kill_dir / "pid.tmp").write_text(os.environ["PIVOT_DASK_WORKER_PID"])
        (kill_dir / "pid.tmp").rename(kill_dir / "pid")
        time.sleep(120)
    return "slow " + a


def liar(
    a: Annotated[str, outputs.Dep("a.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("liar.txt", loaders.Text())]:
    return "honest " + a


def after_liar(
    x: Annotated[str, outputs.Dep("liar.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("after.txt", loaders.Text())]:
    return x


def peek() -> Annotated[str, outputs.Out("peek.txt", loaders.Text())]:
    # Reads the coordinators' directory: the worker's guard must refuse.
    return "\\n".join(os.listdir(os.environ["PIVOT_DASK_FORBID"]))


pipeline = Pipeline("diamond")
for f in (top, left, right, bottom, slow, liar, after_liar, peek):
    pipeline.register(f)
"""

DIAMOND_STAGES = ["top", "left", "right", "bottom"]


class Cluster:
    def __init__(self, address: str, projects: pathlib.Path, kill_dir: pathlib.Path) -> None:
        self.url = "dask://" + address.removeprefix("tcp://")
        self.projects = projects  # coordinator projects live here; workers may not touch it
        self.kill_dir = kill_dir


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Cluster]:
    from distributed import LocalCluster

    projects = tmp_path_factory.mktemp("coordinator")
    workers = tmp_path_factory.mktemp("workers")
    kill_dir = tmp_path_factory.mktemp("kill")
    env = {
        # The workers' own credentials: the coordinator never sends secrets (docs/cluster.md).
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        "PIVOT_DASK_FORBID": str(projects),
        "PIVOT_DASK_LIE": "liar",
        "PIVOT_TEST_KILL_DIR": str(kill_dir),
    }
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # loopback, a free port (None still binds 8787)
        local_directory=str(workers),
        env=env,
    ) as lc:
        yield Cluster(lc.scheduler_address, projects, kill_dir)


def _project(cluster: Cluster, name: str, s3_server: S3Server) -> tuple[pathlib.Path, Backend]:
    backend = new_backend("s3", cluster.projects, s3_server)
    proj = make_project(cluster.projects / name, DIAMOND)
    backend.configure(proj.root)
    return proj.root, backend


def _locks(root: pathlib.Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / ".pivot" / "stages").glob("*.lock"))}


def test_diamond_runs_on_the_cluster_like_a_local_run(
    cluster: Cluster, s3_server: S3Server, tmp_path: pathlib.Path
) -> None:
    root, _backend = _project(cluster, "diamond", s3_server)
    res = ok(run(root, "repro", "--executor", cluster.url, *DIAMOND_STAGES))
    assert "bottom" in res.stderr
    # The stages ran elsewhere: nothing they wrote besides their outputs reached this project.
    assert not (root / "runs.log").exists()

    local = make_project(tmp_path / "local", DIAMOND).root
    ok(run(local, "repro", "-j", "2", *DIAMOND_STAGES))
    assert (local / "runs.log").exists()
    assert _locks(root) == _locks(local)
    assert len(_locks(root)) == 4
    for rel in ("a.txt", "b.txt", "parts/p0.txt", "parts/p2.txt", "metrics.json"):
        assert (root / rel).read_bytes() == (local / rel).read_bytes(), rel
    # The metric is a plain writable file, as after a local run.
    assert os.access(root / "metrics.json", os.W_OK)
    # Locally everything is now up to date, and the outputs are in the local cache.
    plan = json.loads(ok(run(root, "repro", "--dry-run", "--json", *DIAMOND_STAGES)).stdout)
    assert {n: s["would_run"] for n, s in plan["stages"].items()} == dict.fromkeys(
        DIAMOND_STAGES, False
    )
    ok(run(root, "verify", *DIAMOND_STAGES))

    # A second cluster run skips everything without contacting a worker.
    again = ok(run(root, "repro", "--executor", cluster.url, *DIAMOND_STAGES))
    assert "Summary: 0 ran, 4 cached" in again.stderr

    # --no-commit: outputs come back, no lock or run-cache entry is written.
    nc_root, _ = _project(cluster, "nocommit", s3_server)
    ok(run(nc_root, "repro", "--executor", cluster.url, "--no-commit", "top", "left"))
    assert (nc_root / "b.txt").read_text() == "HELLO\nleft\n"
    assert _locks(nc_root) == {}
    assert not list((nc_root / ".pivot" / "cache").rglob("*"))
    assert not list((nc_root / ".pivot" / "tmp").glob(".pvtmp-*"))


def test_a_killed_worker_is_retried(cluster: Cluster, s3_server: S3Server) -> None:
    root, _backend = _project(cluster, "kill", s3_server)
    for p in cluster.kill_dir.iterdir():
        p.unlink()
    proc = subprocess.Popen(
        [*pivot_argv(), "repro", "--executor", cluster.url, "slow"],
        cwd=root,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pid_file = cluster.kill_dir / "pid"
        deadline = time.monotonic() + 120
        while not pid_file.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the stage never started"
            time.sleep(0.1)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)  # the Dask worker, mid-stage
        (cluster.kill_dir / "go").write_text("")
        _out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert (root / "slow.txt").read_text() == "slow HELLO\n"
    assert "slow.lock" in _locks(root)


def test_a_wrong_output_hash_is_refused(cluster: Cluster, s3_server: S3Server) -> None:
    root, _backend = _project(cluster, "liar", s3_server)
    res = run(root, "repro", "--executor", cluster.url, "after_liar")
    assert res.returncode == 1, res.stderr
    assert "liar" in res.stderr and "refused" in res.stderr, res.stderr
    assert "after_liar blocked (by liar)" in res.stderr, res.stderr
    locks = _locks(root)
    assert "top.lock" in locks
    assert "liar.lock" not in locks and "after_liar.lock" not in locks
    assert not (root / "liar.txt").exists()


def test_workers_cannot_read_the_coordinators_projects(
    cluster: Cluster, s3_server: S3Server
) -> None:
    root, _backend = _project(cluster, "peek", s3_server)
    res = run(root, "repro", "--executor", cluster.url, "peek")
    assert res.returncode == 1
    assert "PermissionError: PIVOT_DASK_FORBID" in res.stderr, res.stderr


def test_dask_needs_a_remote(tmp_path: pathlib.Path) -> None:
    root = make_project(tmp_path / "p", DIAMOND).root
    res = run(root, "repro", "--executor", "dask://127.0.0.1:1", "top")
    assert res.returncode == 2
    assert "needs a remote" in res.stderr, res.stderr
    bad = run(root, "repro", "--executor", "spark://x", "top")
    assert bad.returncode == 2 and "--executor" in bad.stderr
    # The config key picks the executor too; --executor local overrides it.
    assert "core.executor" in run(root, "config", "set", "core.executor", "spark://x").stderr
    ok(run(root, "config", "set", "core.executor", "dask://127.0.0.1:1"))
    res = run(root, "repro", "top")
    assert res.returncode == 2 and "needs a remote" in res.stderr, res.stderr
    watch = run(root, "repro", "--watch", "top")
    assert watch.returncode == 2 and "--executor local" in watch.stderr, watch.stderr
    ok(run(root, "repro", "--executor", "local", "top"))
    assert (root / "a.txt").read_text() == "HELLO\n"
