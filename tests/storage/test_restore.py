"""Restore from the cache: exact trees, permissions per mode, atomic swap, refusals."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from _cache_helpers import SAMPLE, b3, listing, objects, temps, write_tree

from pivot.exceptions import CacheCorruptError, CacheMissingError, UnsafePathError
from pivot.storage.cache import Cache
from pivot.types import HashInfo


def _insert_sample(
    cache: Cache, project: Path
) -> tuple[HashInfo, dict[str, tuple[str, bytes | str, bool]]]:
    src = write_tree(project / "src", SAMPLE)
    want = listing(src)
    info = Cache(cache.cache_dir, None, ("copy",)).insert(src)
    return info, want


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_restore_into_dir_with_extra_file_yields_exact_tree(
    cache: Cache, project: Path, mode: str
) -> None:
    info, want = _insert_sample(cache, project)
    dest = write_tree(project / "dest", {"extra.txt": b"junk", "sub/b.bin": b"old", "a.txt": b"x"})
    assert cache.restore(info, dest, [mode]) == mode
    assert listing(dest) == want
    assert temps(project) == []


def test_copy_restore_gives_writable_files_and_exec_bit(cache: Cache, project: Path) -> None:
    info, _ = _insert_sample(cache, project)
    dest = project / "dest"
    assert cache.restore(info, dest, ["copy"]) == "copy"
    assert stat.S_IMODE((dest / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "run.sh").stat().st_mode) == 0o755
    obj = objects(cache.cache_dir)[b3(b"alpha\n")]
    assert (dest / "a.txt").stat().st_ino != obj.stat().st_ino
    (dest / "a.txt").write_bytes(b"edited")  # a copy: editing it leaves the cache intact
    assert obj.read_bytes() == b"alpha\n"


def test_hardlink_restore_shares_read_only_objects(cache: Cache, project: Path) -> None:
    info, _ = _insert_sample(cache, project)
    dest = project / "dest"
    assert cache.restore(info, dest, ["hardlink"]) == "hardlink"
    obj = objects(cache.cache_dir)[b3(b"alpha\n")]
    assert (dest / "a.txt").stat().st_ino == obj.stat().st_ino
    assert stat.S_IMODE((dest / "a.txt").stat().st_mode) == 0o444
    # exec files are copies (objects are never executable)
    assert stat.S_IMODE((dest / "run.sh").stat().st_mode) == 0o755


def test_restore_file_replaces_dir_and_dir_replaces_file(cache: Cache, project: Path) -> None:
    info, want = _insert_sample(cache, project)
    f = project / "f.txt"
    f.write_bytes(b"file content")
    finfo = Cache(cache.cache_dir, None, ("copy",)).insert(f)
    dest = project / "dest"
    dest.write_bytes(b"i am a file")
    cache.restore(info, dest, ["copy"])
    assert listing(dest) == want
    cache.restore(finfo, dest, ["copy"])
    assert dest.read_bytes() == b"file content"
    assert temps(project) == []


def test_restore_creates_missing_parents(cache: Cache, project: Path) -> None:
    info, want = _insert_sample(cache, project)
    dest = project / "x" / "y" / "z"
    cache.restore(info, dest, ["hardlink", "copy"])
    assert listing(dest) == want


@pytest.mark.parametrize("is_dir", [False, True])
def test_copy_restore_refuses_corrupt_object(cache: Cache, project: Path, is_dir: bool) -> None:
    info, _ = _insert_sample(cache, project)
    if not is_dir:
        info = {"hash": b3(b"alpha\n"), "size": 6, "nfiles": 1, "is_dir": False}
    obj = objects(cache.cache_dir)[b3(b"alpha\n")]
    obj.chmod(0o644)
    obj.write_bytes(b"ALPHA\n")  # same size, different bytes
    dest = write_tree(project / "dest", {"old": b"old"})
    with pytest.raises(CacheCorruptError) as e:
        cache.restore(info, dest, ["copy"])
    assert str(obj) in str(e.value)
    assert listing(dest) == {"old": ("file", b"old", False)}
    assert temps(project) == []


def test_hardlink_restore_checks_object_size(cache: Cache, project: Path) -> None:
    info, _ = _insert_sample(cache, project)
    obj = objects(cache.cache_dir)[b3(bytes(range(256)) * 40)]
    obj.chmod(0o644)
    obj.write_bytes(b"truncated")
    with pytest.raises(CacheCorruptError, match=str(obj)):
        cache.restore(info, project / "dest", ["hardlink"])
    assert not (project / "dest").exists()
    assert temps(project) == []


def test_missing_object(cache: Cache, project: Path) -> None:
    info, _ = _insert_sample(cache, project)
    objects(cache.cache_dir)[b3(b"alpha\n")].unlink()
    with pytest.raises(CacheMissingError):
        cache.restore(info, project / "dest", ["copy"])
    absent: HashInfo = {"hash": "1" * 64, "size": 1, "nfiles": 1, "is_dir": True}
    with pytest.raises(CacheMissingError):
        cache.restore(absent, project / "dest2", ["copy"])
    assert temps(project) == []


def test_refuses_parent_symlink_leaving_project(
    cache: Cache, project: Path, tmp_path: Path
) -> None:
    info, want = _insert_sample(cache, project)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, project / "evil")
    with pytest.raises(UnsafePathError, match="evil"):
        cache.restore(info, project / "evil" / "dest", ["copy"])
    assert list(outside.iterdir()) == []
    (project / "inside").mkdir()
    os.symlink("inside", project / "ok")
    cache.restore(info, project / "ok" / "dest", ["copy"])
    assert listing(project / "inside" / "dest") == want


def test_dest_symlink_is_replaced_not_followed(cache: Cache, project: Path) -> None:
    info, want = _insert_sample(cache, project)
    target = write_tree(project / "target", {"keep": b"keep"})
    dest = project / "dest"
    os.symlink(target, dest)
    cache.restore(info, dest, ["copy"])
    assert not dest.is_symlink()
    assert listing(dest) == want
    assert listing(target) == {"keep": ("file", b"keep", False)}


def test_stale_temps_of_dead_processes_are_removed(cache: Cache, project: Path) -> None:
    info, want = _insert_sample(cache, project)
    dead = 2**22 + 12345  # above the default pid_max, never a live process
    stale_dir = write_tree(project / f".pvtmp-{dead}-0-deadbeef", {"half": b"x"})
    stale_old = project / f".pvold-{dead}-1-deadbeef"
    stale_old.write_bytes(b"y")
    live = project / f".pvtmp-{os.getpid()}-999-cafe"
    live.write_bytes(b"in use by a live process")
    cache.restore(info, project / "dest", ["copy"])
    assert not stale_dir.exists() and not stale_old.exists()
    assert live.exists()
    assert listing(project / "dest") == want
