"""SIGKILL at every write step of insert and restore: no partial object or tree is ever visible,
and the next call succeeds (and removes the dead process's temps)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _cache_helpers import (
    SAMPLE,
    assert_objects_valid,
    listing,
    objects,
    run_child,
    temps,
    write_tree,
)

from pivot.storage.cache import Cache

INSERT = (
    "import sys\n"
    "from pivot import _native\n"
    "_native.cache_insert(sys.argv[1] if len(sys.argv) > 1 else {path!r}, {cache!r}, None, {modes!r})\n"
)

RESTORE = (
    "from pivot import _native\n"
    "_native.cache_restore({hash!r}, True, {dest!r}, {cache!r}, {modes!r})\n"
)


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
@pytest.mark.parametrize("step", ["object_write", "object_rename", "manifest_write"])
def test_insert_killed_leaves_no_partial_object(project: Path, step: str, mode: str) -> None:
    cache_dir = project / ".pivot" / "cache"
    root = write_tree(project / "out", SAMPLE)
    want = listing(root)
    code = INSERT.format(path=str(root), cache=str(cache_dir), modes=[mode])
    r = run_child(code, {"PIVOT_KILL_AT": step})
    assert r.returncode == -9, r.stderr
    assert_objects_valid(cache_dir)  # whatever is under a final name is whole and correct
    if step != "manifest_write":
        assert objects(cache_dir) == {}
    else:
        assert len(objects(cache_dir)) == 4  # the files, not the manifest
    assert listing(root) == want
    # the next call succeeds and cleans the dead process's temp
    info = Cache(cache_dir, None, (mode,)).insert(root)
    assert Cache(cache_dir, None).contains(info)
    assert_objects_valid(cache_dir)
    assert temps(cache_dir / "files") == []


@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_restore_killed_at_swap_leaves_old_tree(project: Path, mode: str) -> None:
    cache_dir = project / ".pivot" / "cache"
    c = Cache(cache_dir, None, ("copy",))
    old_info = c.insert(write_tree(project / "v1", {"a": b"old a", "only_old": b"1"}))
    new_info = c.insert(write_tree(project / "v2", SAMPLE))
    dest = project / "work" / "dest"
    c.restore(old_info, dest)
    old = listing(dest)
    code = RESTORE.format(hash=new_info["hash"], dest=str(dest), cache=str(cache_dir), modes=[mode])
    r = run_child(code, {"PIVOT_KILL_AT": "restore_swap"})
    assert r.returncode == -9, r.stderr
    assert listing(dest) == old  # entirely the old tree
    assert len(temps(dest.parent)) == 1  # the fully built new tree, not yet swapped in
    assert Cache(cache_dir, None, (mode,)).restore(new_info, dest) == mode
    assert listing(dest) == listing(project / "v2")
    assert temps(dest.parent) == []
    assert_objects_valid(cache_dir)
