"""A pull onto a full disk: a real small filesystem (tmpfs with `size=`) holds the clone and
its cache. The pull fails with a clean error, stores no partial object and leaves no temp
file, the workspace is untouched, and once there is room a pull completes."""

from __future__ import annotations

import json
import pathlib
import subprocess
from collections.abc import Iterator

import pytest
from _remote_helpers import (
    BIG,
    cache_is_sound,
    clone_of,
    new_backend,
    ok,
    origin_project,
    run,
)


@pytest.fixture
def small_fs(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A 4 MiB tmpfs (less than the 9 MiB big object of the project)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        # Needs root (CAP_SYS_ADMIN); a full disk cannot be made otherwise without faking it.
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _workspace(root: pathlib.Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in (".git", ".pivot")
    }


def test_pull_onto_a_full_disk_fails_cleanly_and_a_pull_with_room_completes(
    tmp_path: pathlib.Path, small_fs: pathlib.Path
) -> None:
    backend = new_backend("dir", tmp_path, None)
    origin = origin_project(tmp_path, backend)
    ok(run(origin.root, "push"))
    clone = clone_of(origin, small_fs / "clone", backend)
    before = _workspace(clone.root)

    res = run(clone.root, "pull")
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.stderr
    assert "No space left on device" in errors[0], errors[0]
    files = clone.root / ".pivot" / "cache" / "files"
    assert not list(files.glob(".pvtmp-*")), "the failed fetch removed its temp files"
    cache_is_sound(clone.root)
    assert _workspace(clone.root) == before, "the workspace is untouched"

    # Room again: the same pull completes and brings what was missing.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
    doc = json.loads(ok(run(clone.root, "pull", "--json")).stdout)
    assert doc["fetched"] >= 1 and doc["bytes"] >= BIG, doc
    ok(run(clone.root, "verify"))
    cache_is_sound(clone.root)
    assert (clone.root / "big.bin").stat().st_size == BIG
