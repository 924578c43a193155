"""Hardlink restores trust objects the stat index vouches for (no read), read and record the
others, and never restore an object whose bytes changed (docs/formats.md, "Stat index")."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from _cache_helpers import listing, objects, write_tree

from pivot import _native
from pivot.exceptions import CacheCorruptError
from pivot.storage.cache import Cache
from pivot.types import HashInfo

N = 40
RACY_S = 2.1  # index.rs RACY_WINDOW_NS (2 s) plus margin


def _stats() -> dict[str, int]:
    return dict(_native._debug_stats())  # type: ignore[attr-defined]


def _files_read_during(fn: object) -> int:
    before = _stats()["files_read"]
    fn()  # type: ignore[operator]
    return _stats()["files_read"] - before


def _flip_in_place(obj: Path) -> None:
    """Same-size in-place edit (chmod u+w, write, restore perms), like an edit through a
    hard-linked workspace file."""
    mode = stat.S_IMODE(obj.stat().st_mode)
    os.chmod(obj, mode | stat.S_IWUSR)
    data = obj.read_bytes()
    with open(obj, "r+b") as f:
        f.write(bytes([data[0] ^ 0x01]))
    os.chmod(obj, mode)


@pytest.fixture
def old_tree(project: Path) -> Path:
    """A tree whose files were last changed more than the racy window ago."""
    src = write_tree(project / "src", {f"d{i % 4}/f{i:03d}.bin": os.urandom(64) for i in range(N)})
    time.sleep(RACY_S)
    return src


def _insert(cache: Cache, src: Path) -> HashInfo:
    return Cache(cache.cache_dir, cache.state_dir, ("hardlink",)).insert(src)


def test_hardlink_restore_after_insert_reads_nothing(
    cache: Cache, project: Path, old_tree: Path
) -> None:
    want = listing(old_tree)
    info = _insert(cache, old_tree)
    hits = _stats()["index_hits"]
    n = _files_read_during(lambda: cache.restore(info, project / "r1", ["hardlink"]))
    assert n == 0
    assert _stats()["index_hits"] - hits == N
    assert listing(project / "r1") == want
    # The restore recorded the links' new stat (linking moved the ctime): hashing the restored
    # tree, as the next `status` does, reads nothing either.
    assert _files_read_during(lambda: cache.hash(project / "r1")) == 0
    # Replacing the restored tree unlinks its hard links (object ctime moves): still trusted.
    n = _files_read_during(lambda: cache.restore(info, project / "r1", ["hardlink"]))
    assert n == 0
    assert listing(project / "r1") == want


def test_objects_read_once_are_recorded(cache: Cache, project: Path, old_tree: Path) -> None:
    info = Cache(cache.cache_dir, None, ("hardlink",)).insert(old_tree)  # no index
    assert _files_read_during(lambda: cache.restore(info, project / "r1", ["hardlink"])) == N
    assert _files_read_during(lambda: cache.restore(info, project / "r2", ["hardlink"])) == 0
    # a copy restore reads (hash-while-copy) but leaves the trusted entries alone
    assert _files_read_during(lambda: cache.restore(info, project / "r3", ["copy"])) == N
    assert _files_read_during(lambda: cache.restore(info, project / "r4", ["hardlink"])) == 0


def test_object_flipped_in_place_is_refused(cache: Cache, project: Path, old_tree: Path) -> None:
    info = _insert(cache, old_tree)
    cache.restore(info, project / "r1", ["hardlink"])
    victim = next(p for h, p in objects(cache.cache_dir).items() if h != info["hash"])
    _flip_in_place(victim)
    dest = write_tree(project / "dest", {"keep.txt": b"old"})
    with pytest.raises(CacheCorruptError, match=victim.name):
        cache.restore(info, dest, ["hardlink"])
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]
    assert (dest / "keep.txt").read_bytes() == b"old"
    assert not [p for p in project.iterdir() if p.name.startswith((".pvtmp-", ".pvold-"))]


def test_corrupt_object_without_index_entry_is_refused(
    cache: Cache, project: Path, old_tree: Path
) -> None:
    info = _insert(cache, old_tree)
    victim = next(p for h, p in objects(cache.cache_dir).items() if h != info["hash"])
    _flip_in_place(victim)
    fresh = Cache(cache.cache_dir, project / "fresh-state", ("hardlink",))
    dest = project / "dest"
    with pytest.raises(CacheCorruptError, match=victim.name):
        fresh.restore(info, dest)
    assert not dest.exists()
    # single-file restore of the same object: refused too, nothing left behind
    h = victim.parent.name + victim.name
    one: HashInfo = {"hash": h, "size": 64, "nfiles": 1, "is_dir": False}
    with pytest.raises(CacheCorruptError):
        fresh.restore(one, project / "one.bin")
    assert not (project / "one.bin").exists()
