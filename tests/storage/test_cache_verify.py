"""Verify: re-hash objects, report corrupt (content != name) and missing ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from _cache_helpers import SAMPLE, b3, objects, write_tree

from pivot.storage.cache import Cache


def _corrupt(p: Path) -> None:
    data = p.read_bytes()
    p.chmod(0o644)
    p.write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])  # same size


def test_clean_cache_reports_nothing(cache: Cache, project: Path) -> None:
    info = cache.insert(write_tree(project / "out", SAMPLE))
    n = len(objects(cache.cache_dir))
    assert cache.verify() == {"checked": n, "corrupt": [], "missing": []}
    assert cache.verify([info["hash"]]) == {"checked": n, "corrupt": [], "missing": []}


def test_corrupt_and_missing_objects_are_reported(cache: Cache, project: Path) -> None:
    info = cache.insert(write_tree(project / "out", SAMPLE))
    objs = objects(cache.cache_dir)
    bad = b3(bytes(range(256)) * 40)
    gone = b3(b"alpha\n")
    _corrupt(objs[bad])
    objs[gone].unlink()
    n = len(objs) - 1
    for report in (cache.verify(), cache.verify([info["hash"]])):
        assert report == {"checked": n, "corrupt": [bad], "missing": [gone]}
    # a file hash alone: only that object
    assert cache.verify([bad]) == {"checked": 1, "corrupt": [bad], "missing": []}


def test_corrupt_manifest_is_reported(cache: Cache, project: Path) -> None:
    info = cache.insert(write_tree(project / "out", SAMPLE))
    _corrupt(objects(cache.cache_dir)[info["hash"]])
    report = cache.verify([info["hash"]])
    assert report["corrupt"] == [info["hash"]]
    assert report["checked"] == 1


def test_absent_hash_and_empty_cache(tmp_path: Path) -> None:
    c = Cache(tmp_path / "cache", None)
    assert c.verify() == {"checked": 0, "corrupt": [], "missing": []}
    assert c.verify(["f" * 64]) == {"checked": 0, "corrupt": [], "missing": ["f" * 64]}
    with pytest.raises(ValueError, match="not a 64-hex"):
        c.verify(["xyz"])
