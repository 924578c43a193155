"""`pivot gc --remote`: roots from every clone's pushes, pack rewrites, the leased lock, and
SIGKILL at every step (docs/remote.md "Garbage collection")."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import time

import blake3
import pytest
from _pivot_helpers import Project, git
from _remote_helpers import (
    Backend,
    clone_of,
    new_backend,
    ok,
    origin_project,
    remote_objects,
    run,
)

GC = ("gc", "--remote", "store", "--grace-minutes", "0", "--roots-days", "0", "--json")


def _h(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def _track(proj: Project, files: dict[str, bytes], msg: str) -> None:
    for rel, data in files.items():
        path = proj.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    ok(run(proj.root, "track", *files))
    git(proj.root, "add", "-A")
    git(proj.root, "commit", "-q", "-m", msg)


# Contents: `stale` and `old-x` become garbage; `y` shares a pack with `old-x`.
STALE = b"stale version\n" * 50
OLD_X = b"x, first version\n" * 200
NEW_X = b"x, second version\n"
Y = b"y stays\n"
FEAT = b"feature data only clone B has seen\n"


def _shared_remote(tmp: pathlib.Path, backend: Backend) -> tuple[Project, Project]:
    """Clone A (origin) and clone B push to one remote; B pushes a branch A never sees; A then
    replaces two of its tracked files, leaving garbage no current record names."""
    a = origin_project(tmp, backend)
    ok(run(a.root, "push"))
    b = clone_of(a, tmp / "b", backend)
    ok(run(b.root, "pull"))
    git(b.root, "checkout", "-q", "-b", "feature")
    _track(b, {"feat.txt": FEAT}, "feature data")
    ok(run(b.root, "push"))
    _track(a, {"stale.txt": STALE}, "stale")
    ok(run(a.root, "push"))
    _track(a, {"stale.txt": b"fresh\n", "x.txt": OLD_X, "y.txt": Y}, "x and y")
    ok(run(a.root, "push"))
    _track(a, {"x.txt": NEW_X}, "x again")
    ok(run(a.root, "push"))
    return a, b


@pytest.fixture(params=["dir", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Backend:
    server = request.getfixturevalue("s3_server") if request.param == "s3" else None
    return new_backend(request.param, tmp_path, server)


def test_gc_from_one_clone_keeps_what_another_clone_pushed(
    tmp_path: pathlib.Path, backend: Backend
) -> None:
    a, b = _shared_remote(tmp_path, backend)
    dry = json.loads(ok(run(a.root, *GC, "--dry-run")).stdout)
    assert dry["dry_run"] and dry["removed"]["objects"] >= 2
    if backend.directory is not None:
        before = remote_objects(backend.directory)
        assert _h(STALE) in before and _h(OLD_X) in before
    doc = json.loads(ok(run(a.root, *GC)).stdout)
    assert doc["removed"] == dry["removed"], "the dry run announced exactly what went"
    assert doc["packs_rewritten"] >= 1, doc  # old x's pack still holds y
    assert doc["roots_records"]["removed"] >= 1, doc  # A's superseded records
    if backend.directory is not None:
        after = remote_objects(backend.directory)  # also: no index names a missing pack
        assert _h(STALE) not in after and _h(OLD_X) not in after
        assert {_h(FEAT), _h(Y), _h(NEW_X)} <= set(after)
        assert not (backend.directory / "gc.lock").exists()
    # B's branch, which A never saw, can still be pulled by a fresh clone of it.
    c = clone_of(b, tmp_path / "c", backend)
    git(c.root, "checkout", "-q", "feature")
    ok(run(c.root, "pull"))
    ok(run(c.root, "verify"))
    assert (c.root / "feat.txt").read_bytes() == FEAT
    # And A's own current state too.
    d = clone_of(a, tmp_path / "d", backend)
    ok(run(d.root, "pull"))
    ok(run(d.root, "verify"))
    assert (d.root / "x.txt").read_bytes() == NEW_X
    # Nothing more to collect.
    again = json.loads(ok(run(a.root, *GC)).stdout)
    assert again["removed"]["objects"] == 0


def test_the_grace_period_keeps_recent_records_and_garbage(tmp_path: pathlib.Path) -> None:
    backend = new_backend("dir", tmp_path, None)
    a, _b = _shared_remote(tmp_path, backend)
    doc = json.loads(
        ok(run(a.root, "gc", "--remote", "store", "--roots-days", "0", "--json")).stdout
    )
    # Records superseded moments ago still count, and nothing is old enough to go.
    assert doc["removed"]["objects"] == 0 and doc["roots_records"]["removed"] == 0, doc
    assert backend.directory is not None
    assert _h(OLD_X) in remote_objects(backend.directory)
    dry = ("gc", "-r", "store", "--dry-run", "--grace-minutes", "0", "--roots-days", "0")
    text = ok(run(a.root, *dry)).stdout
    assert text.startswith("Would remove 2 object(s)") and "from remote store" in text, text
    assert "3 push record(s) to remove" in text
    assert _h(OLD_X) in remote_objects(backend.directory), "a dry run removes nothing"


# --- the lock ---------------------------------------------------------------------------------


def _write_lock(root: pathlib.Path, holder: str, expires: float) -> None:
    doc = {"holder": holder, "token": "t", "created": 0, "expires": int(expires)}
    (root / "gc.lock").write_text(json.dumps(doc))


def test_a_held_lock_refuses_gc_and_push_and_an_expired_one_is_broken(
    tmp_path: pathlib.Path,
) -> None:
    backend = new_backend("dir", tmp_path, None)
    a = origin_project(tmp_path, backend)
    ok(run(a.root, "push"))
    assert backend.directory is not None
    _write_lock(backend.directory, "carol@ci pid 4242", time.time() + 3600)
    refused = run(a.root, *GC)
    assert refused.returncode == 1
    assert "carol@ci pid 4242" in refused.stderr and "Traceback" not in refused.stderr
    pushed = run(a.root, "push")
    assert pushed.returncode == 1 and "carol@ci pid 4242" in pushed.stderr, pushed.stderr
    # An expired lease is broken by the next gc.
    _write_lock(backend.directory, "carol@ci pid 4242", time.time() - 5)
    ok(run(a.root, *GC))
    assert not (backend.directory / "gc.lock").exists()
    # A live one only with --break-lock.
    _write_lock(backend.directory, "dave@laptop pid 7", time.time() + 3600)
    ok(run(a.root, *GC, "--break-lock"))
    ok(run(a.root, "push"))


# --- SIGKILL at every step --------------------------------------------------------------------

KILL_POINTS = [
    "remote_gc_roots",
    "remote_gc_record",
    "remote_gc_run",
    "remote_gc_pack_put",
    "remote_gc_index_put",
    "remote_gc_index_delete",
    "remote_gc_pack_delete",
    "remote_gc_object",
]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Two clones and their remote (a relative directory URL, so a copy is self-contained),
    with garbage of every kind: superseded records, a dead pack, a mostly dead pack, a dead
    loose object."""
    base = tmp_path_factory.mktemp("gc-template")
    backend = Backend("dir", "../remote-dir", directory=base / "remote-dir")
    a, _b = _shared_remote(base, backend)
    for _ in range(2):  # the first of these two big files is loose garbage nobody saw
        (a.root / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))
        ok(run(a.root, "track", "big.bin"))
        git(a.root, "commit", "-q", "-am", "new big")
        ok(run(a.root, "push"))
    return base


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_each_gc_step_leaves_a_readable_remote(
    tmp_path: pathlib.Path, template: pathlib.Path, point: str
) -> None:
    base = tmp_path / "w"
    shutil.copytree(template, base, symlinks=True)
    a = Project(base / "origin")
    remote = base / "remote-dir"
    killed = run(a.root, *GC, "--run-cache-days", "0", env={"PIVOT_KILL_AT": point})
    assert killed.returncode == -9, f"{point} not reached:\n{killed.stdout}\n{killed.stderr}"
    remote_objects(remote)  # every index names a complete pack
    refused = run(a.root, *GC)
    assert refused.returncode == 1 and "already running" in refused.stderr
    ok(run(a.root, *GC, "--run-cache-days", "0", "--break-lock"))
    after = remote_objects(remote)
    assert _h(STALE) not in after and _h(OLD_X) not in after
    assert not list((remote / "runs").glob("*/*"))
    for proj, branch in ((a, None), (Project(base / "b"), "feature")):
        fresh = base / f"fresh-{proj.root.name}"
        git(base, "clone", "-q", str(proj.root), str(fresh))
        if branch:
            git(fresh, "checkout", "-q", branch)
        ok(run(fresh, "pull"))
        ok(run(fresh, "verify"))


def test_a_recent_push_whose_directory_is_not_published_yet_stops_gc(
    tmp_path: pathlib.Path,
) -> None:
    backend = new_backend("dir", tmp_path, None)
    a = origin_project(tmp_path, backend)
    ok(run(a.root, "push"))
    b = clone_of(a, tmp_path / "b", backend)
    ok(run(b.root, "pull"))
    (b.root / "newdir").mkdir()
    (b.root / "newdir" / "f.txt").write_text("in a directory a push has not published yet\n")
    ok(run(b.root, "track", "newdir"))
    # The push dies right after its roots record: its directory's manifest is not on the remote.
    killed = run(b.root, "push", env={"PIVOT_KILL_AT": "remote_roots_put"})
    assert killed.returncode == -9, killed.stderr
    stopped = run(a.root, "gc", "--remote", "store", "--roots-days", "0")
    assert stopped.returncode == 1, stopped.stdout
    assert "a push in progress?" in stopped.stderr and "nothing removed" in stopped.stderr
    # Once the record is older than the grace period the push is taken as dead: only a note.
    doc = json.loads(ok(run(a.root, *GC)).stdout)
    assert any("is not on the remote" in n for n in doc["notes"]), doc["notes"]
    ok(run(b.root, "push"))
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(b.root), str(fresh))
    shutil.copy(b.root / "newdir.pvt", fresh / "newdir.pvt")
    ok(run(fresh, "pull"))
    assert (fresh / "newdir" / "f.txt").read_text().startswith("in a directory")


@pytest.mark.parametrize("kind", ["moto", "seaweedfs"])
def test_unfinished_multipart_uploads_are_aborted_after_the_grace_period(
    tmp_path: pathlib.Path, request: pytest.FixtureRequest, kind: str
) -> None:
    """A push killed inside a big upload leaves an S3 multipart upload open: invisible to
    listings, its parts still stored. gc aborts it once it is older than the grace period; an
    upload under another prefix (not this remote's) is left alone."""
    from _s3 import S3Server, client

    server: S3Server = request.getfixturevalue("moto_server" if kind == "moto" else "s3_server")
    backend = new_backend("s3", tmp_path, server)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push"))
    prefix = backend.url.split("/", 3)[3]
    s3 = client(server)
    mine = s3.create_multipart_upload(Bucket=server.bucket, Key=f"{prefix}/objects/ab/{'c' * 62}")
    s3.upload_part(
        Bucket=server.bucket, Key=mine["Key"], UploadId=mine["UploadId"], PartNumber=1, Body=b"p"
    )
    other = s3.create_multipart_upload(Bucket=server.bucket, Key=f"elsewhere-{prefix}/x")

    def open_ids() -> set[str]:
        ups = s3.list_multipart_uploads(Bucket=server.bucket).get("Uploads", [])
        return {u["UploadId"] for u in ups}

    if kind == "seaweedfs":
        # (moto reports every upload as started in 2010, so only SeaweedFS can show this.)
        young = ok(run(origin.root, "gc", "--remote", "store", "--json"))
        assert mine["UploadId"] in open_ids(), "younger than the grace period: kept"
        assert not any("multipart" in n for n in json.loads(young.stdout)["notes"])
    doc = json.loads(ok(run(origin.root, *GC)).stdout)
    assert any("removed 1 unfinished multipart upload" in n for n in doc["notes"]), doc["notes"]
    assert open_ids() & {mine["UploadId"], other["UploadId"]} == {other["UploadId"]}
    clone = clone_of(origin, tmp_path / "clone", backend)
    ok(run(clone.root, "pull"))
    ok(run(clone.root, "verify"))
    s3.abort_multipart_upload(Bucket=server.bucket, Key=other["Key"], UploadId=other["UploadId"])
