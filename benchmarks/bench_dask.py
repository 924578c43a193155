"""Dask executor benchmark: the `wide` pipeline (N independent trivial stages, default 200) run
by `pivot repro -j 2` locally, and by `pivot repro --executor dask://…` on a
`distributed.LocalCluster` of 2 single-threaded process workers whose only shared storage is a
SeaweedFS S3 server on 127.0.0.1 (docs/cluster.md). Reports the wall time of each and the
overhead per stage of the cluster run over the local one. Not part of the test suite.

    .venv/bin/python benchmarks/bench_dask.py              # 200 stages
    PIVOT_BENCH_STAGES=50 .venv/bin/python benchmarks/bench_dask.py

Runs under the machine-wide benchmark lock (`flock /tmp/pivot-bench.lock`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_execution import bench_lock  # noqa: E402
from bench_remote import BUCKET, KEY, SECRET, start_seaweed  # noqa: E402

N_STAGES = int(os.environ.get("PIVOT_BENCH_STAGES", "200"))
PIVOT = str(Path(sys.executable).parent / "pivot")


def wide_pipeline(n: int) -> str:
    """N independent stages, each with its own input file (as `wide` in run_dvc_compare)."""
    parts = [
        "from typing import Annotated\n",
        "from pivot import loaders, outputs",
        "from pivot.pipeline import Pipeline\n\n",
    ]
    for i in range(n):
        parts.append(
            textwrap.dedent(
                f"""\
                def s{i:04d}(
                    text: Annotated[str, outputs.Dep("data/in{i:04d}.txt", loaders.Text())],
                ) -> Annotated[str, outputs.Out("out/out{i:04d}.txt", loaders.Text())]:
                    return text.upper()

                """
            )
        )
    parts.append('pipeline = Pipeline("wide")')
    parts.extend(f"pipeline.register(s{i:04d})" for i in range(n))
    return "\n".join(parts) + "\n"


def make_project(root: Path, env: dict[str, str]) -> None:
    root.mkdir(parents=True)
    (root / "pipeline.py").write_text(wide_pipeline(N_STAGES))
    (root / "data").mkdir()
    for i in range(N_STAGES):
        (root / "data" / f"in{i:04d}.txt").write_text(f"input {i}\n")
    subprocess.run([PIVOT, "init"], cwd=root, env=env, check=True, capture_output=True)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"failed: {argv}\n{proc.stderr[-4000:]}")
    return dt


def main() -> int:
    from distributed import LocalCluster

    base = Path(tempfile.mkdtemp(prefix="pivot-bench-dask-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_CONFIG_FILE=os.devnull)
    (base / "s3").mkdir()
    weed, endpoint, _metrics = start_seaweed(base / "s3")
    try:
        with bench_lock():
            local = base / "local"
            make_project(local, env)
            t_local = timed([PIVOT, "repro", "-j", "2"], local, env)

            worker_env = {
                "AWS_ACCESS_KEY_ID": KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_CONFIG_FILE": os.devnull,
            }
            with LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",  # loopback, a free port (None still binds 8787)
                local_directory=str(base / "workers"),
                env=worker_env,
            ) as cluster:
                url = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
                proj = base / "dask"
                make_project(proj, env)
                for args in (
                    ["remote", "add", "store", f"s3://{BUCKET}/wide", "--default"],
                    ["remote", "modify", "store", "endpoint_url", endpoint],
                    ["remote", "modify", "store", "access_key_id", KEY],
                    ["remote", "modify", "store", "secret_access_key", SECRET],
                ):
                    subprocess.run([PIVOT, *args], cwd=proj, env=env, check=True)
                t_dask = timed([PIVOT, "repro", "--executor", url], proj, env)
                t_noop = timed([PIVOT, "repro", "--executor", url], proj, env)
        for a, b in zip(
            sorted((local / ".pivot" / "stages").iterdir()),
            sorted((proj / ".pivot" / "stages").iterdir()),
            strict=True,
        ):
            assert a.read_bytes() == b.read_bytes(), a.name
    finally:
        os.killpg(weed.pid, signal.SIGKILL)
        weed.wait()
        shutil.rmtree(base, ignore_errors=True)

    n = N_STAGES
    print(f"wide, {n} trivial stages, {os.cpu_count()} CPUs")
    print(
        f"  local  pivot repro -j 2                    {t_local:7.1f} s  {t_local / n * 1000:6.0f} ms/stage"
    )
    print(
        f"  dask   LocalCluster 2 workers x 1 thread   {t_dask:7.1f} s  {t_dask / n * 1000:6.0f} ms/stage"
    )
    print(f"  dask   no-op re-run                        {t_noop:7.1f} s")
    print(
        f"  overhead of the cluster per stage: {(t_dask - t_local) / n * 1000:.0f} ms "
        f"(x2 workers: {(t_dask - t_local) / n * 2000:.0f} ms of worker time per stage)"
    )
    print("  locks identical to the local run: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
