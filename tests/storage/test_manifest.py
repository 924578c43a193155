"""Directory manifests: canonical bytes, order independence, links, special files, names."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import blake3
import pytest
from _storage_helpers import (
    manifest_bytes,
    run_unprivileged,
    shared_tmpdir,
    store_object,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivot import _native
from pivot.exceptions import (
    CacheCorruptError,
    CacheMissingError,
    ManifestError,
    UnsafePathError,
)


def test_manifest_bytes_match_documented_format(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "a" / "b").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a" / "b" / "x.txt").write_bytes(b"hello")
    (root / "a-c").write_bytes(b"")
    (root / "run.sh").write_bytes(b"#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    os.symlink("b/x.txt", root / "a" / "link")
    expected = manifest_bytes(
        [
            (b"a/b/x.txt", b"hello", False, None),
            (b"a-c", b"", False, None),
            (b"run.sh", b"#!/bin/sh\n", True, None),
            (b"a/link", b"b/x.txt", False, b"b/x.txt"),
        ]
    )
    info = _native.hash_path(str(root))
    assert info["hash"] == blake3.blake3(expected).hexdigest()
    assert info["is_dir"] and info["nfiles"] == 4 and info["size"] == 5 + 10 + 7
    # The manifest read back from the cache is the parsed form of those bytes.
    cache = tmp_path / "cache"
    h = store_object(cache, expected)
    entries = _native.read_manifest(str(cache), h)
    assert [e["path"] for e in entries] == ["a-c", "a/b/x.txt", "a/link", "run.sh"]
    link = entries[2]
    assert link["link"] == "b/x.txt" and link["hash"] == blake3.blake3(b"b/x.txt").hexdigest()
    assert entries[3]["exec"] and not entries[1]["exec"] and entries[1]["link"] is None


NAMES = st.sampled_from(["a", "b", "a-b", "a.b", "B", "é", "z z", "_", "0"])
TREES = st.dictionaries(
    st.lists(NAMES, min_size=1, max_size=3).map(tuple), st.binary(max_size=64), max_size=12
)


def _build(root: Path, files: dict[tuple[str, ...], bytes], order: list[tuple[str, ...]]) -> None:
    for rel in order:
        p = root.joinpath(*rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(files[rel])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(files=TREES, seed=st.randoms())
def test_same_tree_in_any_creation_order_gives_same_manifest(
    tmp_path: Path, files: dict[tuple[str, ...], bytes], seed
) -> None:
    # Drop paths that would need a file to also be a directory.
    keys = sorted(files)
    files = {k: v for k, v in files.items() if not any(o[: len(k)] == k and o != k for o in keys)}
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    order = list(files)
    _build(a, files, order)
    seed.shuffle(order)
    _build(b, files, order)
    ha, hb = _native.hash_path(str(a)), _native.hash_path(str(b))
    assert ha == hb
    rows = [("/".join(k).encode(), v, False, None) for k, v in files.items()]
    assert ha["hash"] == blake3.blake3(manifest_bytes(rows)).hexdigest()


def test_symlink_outside_is_error_naming_link(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    os.symlink("../../secret", root / "sub" / "leak")
    with pytest.raises(ManifestError, match="sub/leak"):
        _native.hash_path(str(root))
    (root / "sub" / "leak").unlink()
    os.symlink(str(tmp_path / "secret"), root / "abs")
    with pytest.raises(ManifestError, match="abs"):
        _native.hash_path(str(root))


def test_fifo_is_error_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    os.mkfifo(root / "pipe")
    with pytest.raises(ManifestError, match=r"pipe.*fifo"):
        _native.hash_path(str(root))


def test_unreadable_file_is_permission_error_naming_it() -> None:
    # Root reads anything, so the hashing runs in a child that has dropped to an ordinary uid.
    d = shared_tmpdir()
    try:
        (d / "tree").mkdir()
        (d / "tree" / "ok").write_text("ok")
        secret = d / "tree" / "secret"
        secret.write_text("x")
        secret.chmod(0)
        code = (
            "try:\n    pivot._native.hash_path(sys.argv[1])\n"
            "except PermissionError as e:\n    print('PERM', e.filename)\n"
        )
        r = run_unprivileged(code, str(d / "tree"))
        assert r.stdout.strip() == f"PERM {secret}", r.stderr
    finally:
        shutil.rmtree(d)


def test_non_utf8_name_round_trips(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    raw = b"caf\xe9-\xff\n.txt"
    (root / os.fsdecode(raw)).write_bytes(b"data")
    expected = manifest_bytes([(raw, b"data", False, None)])
    assert b'"caf\\udce9-\\udcff\\n.txt"' in expected
    info = _native.hash_path(str(root))
    assert info["hash"] == blake3.blake3(expected).hexdigest()
    cache = tmp_path / "cache"
    entries = _native.read_manifest(str(cache), store_object(cache, expected))
    assert os.fsencode(entries[0]["path"]) == raw


def test_read_manifest_rejects_missing_corrupt_and_unsafe(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(CacheMissingError, match="files/"):
        _native.read_manifest(str(cache), "ab" * 32)
    good = manifest_bytes([(b"a", b"x", False, None)])
    h = store_object(cache, good)
    obj = cache / "files" / h[:2] / h[2:]
    obj.write_bytes(good.replace(b'"a"', b'"b"'))
    with pytest.raises(CacheCorruptError, match=h):
        _native.read_manifest(str(cache), h)
    for bad in [b"../a", b"/etc/passwd", b"a//b", b"a/./b"]:
        h = store_object(cache, manifest_bytes([(bad, b"x", False, None)]))
        with pytest.raises(UnsafePathError, match=h[2:]):
            _native.read_manifest(str(cache), h)
    one = manifest_bytes([(b"a", b"", False, None)])
    dup = one + one[len(b'{"pivot_manifest":1}\n') :]
    h = store_object(cache, dup)
    with pytest.raises(ManifestError):
        _native.read_manifest(str(cache), h)
    with pytest.raises(ValueError):
        _native.read_manifest(str(cache), "not-a-hash")
