"""Projects with a remote, clones, and a reader of the remote layout for invariant checks."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import struct
import subprocess
import uuid
from dataclasses import dataclass

import blake3
from _pivot_helpers import CHAIN_PIPELINE, DIR_PIPELINE, Project, git, make_project, pivot_argv
from _s3 import S3Server, clean_env, client

# The chain pipeline plus a stage writing a directory output (as in tests/e2e).
_DIR_STAGE = DIR_PIPELINE.split("from pivot.pipeline import Pipeline\n", 1)[1].split(
    "pipeline = Pipeline", 1
)[0]
PIPELINE = CHAIN_PIPELINE.replace("pipeline = Pipeline(", _DIR_STAGE + "\npipeline = Pipeline(")
PIPELINE += "pipeline.register(make_shards)\n"

BIG = 9 * 1024 * 1024  # above the loose-object threshold (8 MiB)


def run(root: pathlib.Path, *args: str, env: dict[str, str] | None = None, timeout: int = 180):
    """The real `pivot` console script in a subprocess, with a clean AWS environment."""
    full = clean_env()
    full.update(env or {})
    return subprocess.run(
        [*pivot_argv(), *args], cwd=root, capture_output=True, text=True, timeout=timeout, env=full
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@dataclass
class Backend:
    kind: str  # "dir" | "s3"
    url: str
    server: S3Server | None = None
    directory: pathlib.Path | None = None

    def configure(self, root: pathlib.Path, name: str = "store") -> None:
        ok(run(root, "remote", "add", name, self.url, "--default"))
        if self.server is not None:
            ok(run(root, "remote", "modify", name, "endpoint_url", self.server.endpoint))
            ok(run(root, "remote", "modify", name, "access_key_id", self.server.access_key))
            ok(run(root, "remote", "modify", name, "secret_access_key", self.server.secret_key))


def new_backend(kind: str, tmp: pathlib.Path, server: S3Server | None) -> Backend:
    if kind == "dir":
        d = tmp / "remote-dir"
        return Backend("dir", str(d), directory=d)
    assert server is not None
    return Backend("s3", f"s3://{server.bucket}/{uuid.uuid4().hex[:12]}", server=server)


def origin_project(tmp: pathlib.Path, backend: Backend) -> Project:
    """A git project that ran its pipeline and tracks a directory and a big file."""
    proj = make_project(tmp / "origin", PIPELINE, git_init=True)
    ok(run(proj.root, "repro"))
    proj.write("raw/a.txt", "raw a\n")
    proj.write("raw/sub/b.txt", "raw b\n")
    (proj.root / "big.bin").write_bytes(os.urandom(BIG))
    ok(run(proj.root, "track", "raw", "big.bin"))
    (proj.root / ".gitignore").write_text(
        "runs.log\n/data/prepared.txt\n/model.txt\n/other.txt\n/shards/\n/raw/\n/big.bin\n"
    )
    backend.configure(proj.root)
    git(proj.root, "add", "-A")
    git(proj.root, "commit", "-q", "-m", "pipeline")
    return proj


def clone_of(origin: Project, dest: pathlib.Path, backend: Backend) -> Project:
    """A fresh clone: the git-tracked files only (no cache, no config.local)."""
    git(dest.parent, "clone", "-q", str(origin.root), str(dest))
    clone = Project(dest)
    assert not (dest / ".pivot" / "cache").exists()
    if backend.server is not None:
        for key, value in (
            ("access_key_id", backend.server.access_key),
            ("secret_access_key", backend.server.secret_key),
        ):
            ok(run(dest, "remote", "modify", "store", key, value))
    return clone


OUTPUTS = ("data/prepared.txt", "model.txt", "other.txt", "shards", "raw", "big.bin")


def assert_outputs_match(a: pathlib.Path, b: pathlib.Path) -> None:
    def digest(p: pathlib.Path) -> str:
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file())
            h = hashlib.sha256()
            for q in files:
                h.update(str(q.relative_to(p)).encode() + b"\0" + q.read_bytes())
            return h.hexdigest()
        return hashlib.sha256(p.read_bytes()).hexdigest()

    for rel in OUTPUTS:
        assert (b / rel).exists(), f"{rel} missing in {b}"
        assert digest(a / rel) == digest(b / rel), rel


# --- reading a remote, for invariant checks --------------------------------------------------


def read_index(path: pathlib.Path) -> list[tuple[str, int, int]]:
    return parse_index(path.read_bytes(), path.name)


def parse_index(data: bytes, name: str) -> list[tuple[str, int, int]]:
    assert data[:8] == b"PVTPIDX\0"
    body, trailer = data[:-32], data[-32:]
    assert blake3.blake3(body).digest() == trailer
    assert trailer.hex() == name[: -len(".idx")]
    (count,) = struct.unpack_from("<Q", data, 16)
    out = []
    for i in range(count):
        off = 32 + 48 * i
        h = data[off : off + 32].hex()
        offset, length = struct.unpack_from("<QQ", data, off + 32)
        out.append((h, offset, length))
    return out


def remote_files(backend: Backend) -> dict[str, bytes]:
    """Every key of the remote (relative to its root) and its bytes."""
    if backend.directory is not None:
        root = backend.directory
        return {
            p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
        }
    assert backend.server is not None
    prefix = backend.url.split("/", 3)[3] + "/"
    s3 = client(backend.server)
    out: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=backend.server.bucket, Prefix=prefix
    ):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=backend.server.bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"][len(prefix) :]] = body
    return out


def remote_objects(where: pathlib.Path | dict[str, bytes]) -> dict[str, bytes]:
    """Every object a reader can see on a remote (a directory, or all its keys), checked:
    each index's pack exists and every record's bytes hash to its name; every loose object
    hashes to its name."""
    if isinstance(where, pathlib.Path):
        where = remote_files(Backend("dir", str(where), directory=where))
    files = where
    seen: dict[str, bytes] = {}
    for key in sorted(k for k in files if k.startswith("index/") and k.endswith(".idx")):
        name = key[len("index/") :]
        pack = "packs/" + name[: -len(".idx")] + ".pack"
        assert pack in files, f"{name} names a pack that is not there"
        data = files[pack]
        for h, offset, length in parse_index(files[key], name):
            blob = data[offset : offset + length]
            assert blake3.blake3(blob).hexdigest() == h, f"{h} in {pack} is corrupt"
            seen[h] = blob
    for key, data in files.items():
        parts = key.split("/")
        if parts[0] != "objects" or len(parts) != 3 or len(parts[2]) != 62:
            continue  # `<key>#<n>`: the staging file of an interrupted upload, never read
        name = parts[1] + parts[2]
        assert blake3.blake3(data).hexdigest() == name
        seen[name] = data
    return seen


def runs_name_only_published_objects(files: dict[str, bytes]) -> None:
    """I2: every run-cache entry on the remote names only objects a reader can get."""
    objects = remote_objects(files)
    for key, data in files.items():
        if not key.startswith("runs/"):
            continue
        doc = json.loads(data)
        for out in doc["outs"].values():
            if not out["cache"]:
                continue
            assert out["hash"] in objects, f"run entry {key} names an unpublished object"
            if out["is_dir"]:
                for line in objects[out["hash"]].decode().splitlines()[1:]:
                    assert json.loads(line)["hash"] in objects


def cache_is_sound(root: pathlib.Path) -> None:
    """I1: every object in the local cache hashes to its name."""
    files = root / ".pivot" / "cache" / "files"
    for obj in files.glob("*/*") if files.is_dir() else []:
        assert blake3.blake3(obj.read_bytes()).hexdigest() == obj.parent.name + obj.name, obj
