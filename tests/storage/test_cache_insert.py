"""Cache insert through the Python API: object layout, link modes, dedup, races, fallback."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest
from _cache_helpers import (
    SAMPLE,
    assert_objects_valid,
    b3,
    listing,
    objects,
    run_child,
    temps,
    write_tree,
)

from pivot import _native
from pivot.exceptions import SourceChangedError
from pivot.storage.cache import Cache


def _cache(project: Path, *modes: str) -> Cache:
    return Cache(project / ".pivot" / "cache", project / ".pivot" / "state", modes)


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_insert_file_object_named_by_blake3(project: Path, mode: str) -> None:
    c = _cache(project, mode)
    f = project / "data.bin"
    data = os.urandom(100_000)
    f.write_bytes(data)
    f.chmod(0o644)
    info = c.insert(f)
    assert info == {"hash": b3(data), "size": len(data), "nfiles": 1, "is_dir": False}
    obj = c.cache_dir / "files" / info["hash"][:2] / info["hash"][2:]
    assert obj.read_bytes() == data
    assert stat.S_IMODE(obj.stat().st_mode) == 0o444
    assert f.read_bytes() == data
    if mode == "hardlink":
        assert f.stat().st_ino == obj.stat().st_ino  # the workspace IS the object
        assert stat.S_IMODE(f.stat().st_mode) == 0o444
    else:
        assert f.stat().st_ino != obj.stat().st_ino
        assert stat.S_IMODE(f.stat().st_mode) == 0o644
    assert c.contains(info)
    assert assert_objects_valid(c.cache_dir) == 1
    assert temps(c.cache_dir / "files") == []


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_insert_dir_stores_files_and_manifest(project: Path, mode: str) -> None:
    c = _cache(project, mode)
    root = write_tree(project / "out", SAMPLE)
    expected = _native.hash_path(str(root))
    before = listing(root)
    info = c.insert(root)
    assert info == expected
    assert info["is_dir"] and info["nfiles"] == len(SAMPLE)
    # a.txt and dup.txt share one object; the link has none; + the manifest object
    file_contents = {v for v in SAMPLE.values() if isinstance(v, bytes)}
    file_contents.add(b"#!/bin/sh\necho hi\n")
    assert set(objects(c.cache_dir)) == {b3(d) for d in file_contents} | {info["hash"]}
    assert_objects_valid(c.cache_dir)
    # workspace content unchanged (exec bit kept: exec files are copied, never hard-linked)
    after = listing(root)
    assert after == before
    entries = {e["path"]: e for e in c.manifest(info["hash"])}
    assert entries["run.sh"]["exec"] is True
    assert entries["a.txt"]["exec"] is False
    assert entries["link"]["link"] == "sub/b.bin"
    assert c.contains(info)
    if mode == "hardlink":
        ino = (root / "a.txt").stat().st_ino
        assert ino == (root / "dup.txt").stat().st_ino
        assert ino == objects(c.cache_dir)[b3(b"alpha\n")].stat().st_ino


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_reinsert_does_not_rewrite_objects(project: Path, mode: str) -> None:
    c = _cache(project, mode)
    root = write_tree(project / "out", SAMPLE)
    c.insert(root)
    first = {h: p.stat() for h, p in objects(c.cache_dir).items()}
    c.insert(root)
    second = {h: p.stat() for h, p in objects(c.cache_dir).items()}
    assert first.keys() == second.keys()
    for h, st in first.items():
        assert (st.st_ino, st.st_mtime_ns) == (second[h].st_ino, second[h].st_mtime_ns)
        if mode == "copy":
            assert st.st_ctime_ns == second[h].st_ctime_ns


def test_unchanged_tree_reinsert_reads_nothing(project: Path) -> None:
    c = _cache(project, "copy")
    root = write_tree(project / "out", {f"f{i}": str(i).encode() for i in range(50)})
    time.sleep(2.2)  # leave the stat index's racily-clean window (index.rs RACY_WINDOW_NS)
    info = c.insert(root)
    stats = _native._debug_stats  # type: ignore[attr-defined]
    read_before = stats()["files_read"]
    assert c.insert(root) == info
    assert c.hash(root) == info
    assert stats()["files_read"] == read_before


@pytest.mark.parametrize("modes", [("hardlink",), ("reflink", "hardlink", "copy")])
def test_insert_of_a_file_the_index_knows_reads_nothing(
    project: Path, modes: tuple[str, ...]
) -> None:
    """`repro --no-commit` hashes an output, `commit` then caches it: with a hard link the
    object is the workspace inode, so the file is not read a second time, even when it is the
    first file of the operation (which decides the link mode)."""
    c = _cache(project, *modes)
    f = project / "out.bin"
    data = os.urandom(3 << 20)
    f.write_bytes(data)
    time.sleep(0.05)  # a few ticks of the kernel's coarse clock: trusted on a local filesystem
    stats = _native._debug_stats  # type: ignore[attr-defined]
    assert c.hash(f)["hash"] == b3(data)
    read_before = stats()["bytes_read"]
    info = c.insert(f)
    assert stats()["bytes_read"] == read_before
    obj = objects(c.cache_dir)[b3(data)]
    assert info["hash"] == b3(data) and obj.read_bytes() == data
    assert os.stat(obj).st_ino == os.stat(f).st_ino  # hard-linked, as the mode says
    assert not temps(c.cache_dir / "files")
    # A file the index does not know yet is read (and hashed) as usual.
    g = project / "other.bin"
    g.write_bytes(data[::-1])
    assert c.insert(g)["hash"] == b3(data[::-1])
    assert stats()["bytes_read"] == read_before + len(data)


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_file_modified_during_insert_is_rejected(project: Path, mode: str) -> None:
    cache_dir = project / ".pivot" / "cache"
    f = project / "big.bin"
    original = os.urandom(1 << 20)
    f.write_bytes(original)
    code = (
        "import sys\n"
        "from pivot import _native\n"
        "from pivot.exceptions import SourceChangedError\n"
        "try:\n"
        f"    _native.cache_insert({str(f)!r}, {str(cache_dir)!r}, None, [{mode!r}])\n"
        "except SourceChangedError as e:\n"
        "    print('SourceChangedError:', e); sys.exit(3)\n"
    )

    def modify() -> None:
        time.sleep(0.5)
        with open(f, "ab") as fh:
            fh.write(b"more")

    t = threading.Thread(target=modify)
    t.start()
    # The hook sleeps between the "before" stat and the hash, so the append lands inside.
    r = run_child(code, {"PIVOT_TEST_INSERT_SLEEP_MS": "1500"})
    t.join()
    assert r.returncode == 3, r.stderr
    assert str(f) in r.stdout
    assert objects(cache_dir) == {}
    assert temps(cache_dir / "files") == []
    assert f.read_bytes() == original + b"more"


def test_source_changed_error_class_is_storage_error() -> None:
    from pivot.exceptions import StorageError

    assert issubclass(SourceChangedError, StorageError)


def test_default_modes_fall_back_on_this_filesystem(project: Path) -> None:
    c = Cache(project / ".pivot" / "cache", None)  # default: reflink, hardlink, copy
    assert c.link_modes == ("reflink", "hardlink", "copy")
    root = write_tree(project / "out", SAMPLE)
    want = listing(root)
    info = c.insert(root)
    assert listing(root) == want
    dest = project / "restored"
    used = c.restore(info, dest)
    assert used in ("reflink", "hardlink")
    assert listing(dest) == want
    assert_objects_valid(c.cache_dir)


def test_cache_on_other_filesystem_falls_back_to_copy(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a different filesystem than the tmp dir")
    import tempfile

    with tempfile.TemporaryDirectory(dir=shm) as other:
        c = Cache(Path(other) / "cache", None, ("hardlink", "copy"))
        root = write_tree(tmp_path / "out", SAMPLE)
        want = listing(root)
        info = c.insert(root)
        a_obj = objects(c.cache_dir)[b3(b"alpha\n")]
        assert (root / "a.txt").stat().st_ino != a_obj.stat().st_ino
        assert stat.S_IMODE((root / "a.txt").stat().st_mode) != 0o444  # untouched copy source
        assert c.restore(info, tmp_path / "back") == "copy"
        assert listing(tmp_path / "back") == want
        assert_objects_valid(c.cache_dir)


def test_contains_needs_every_file(cache: Cache, project: Path) -> None:
    root = write_tree(project / "out", SAMPLE)
    info = cache.insert(root)
    assert cache.contains(info)
    objects(cache.cache_dir)[b3(b"alpha\n")].unlink()
    assert not cache.contains(info)
    missing = {"hash": "0" * 64, "size": 0, "nfiles": 1, "is_dir": False}
    assert not cache.contains(missing)  # type: ignore[arg-type]


def test_errors_name_the_path(cache: Cache, project: Path) -> None:
    with pytest.raises(FileNotFoundError) as e:
        cache.insert(project / "nope")
    assert e.value.filename == str(project / "nope")
    with pytest.raises(ValueError, match="bogus"):
        Cache(cache.cache_dir, None, ("bogus",)).insert(project)


def test_insert_refuses_link_leaving_the_tree(cache: Cache, project: Path) -> None:
    from pivot.exceptions import ManifestError

    root = write_tree(project / "out", {"a": b"x", "esc": ("link", "../../etc/passwd")})
    with pytest.raises(ManifestError, match="esc"):
        cache.insert(root)
