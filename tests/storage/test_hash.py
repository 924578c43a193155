"""Hashes from pivot._native equal the PyPI blake3 package's, for bytes, files and many files."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest

from pivot import _native

SIZES = [0, 1, 1023, 1024, (1 << 20) + 1, (4 << 20) + 7, (16 << 20) + 3]


def _data(n: int) -> bytes:
    return (bytes(range(251)) * (n // 251 + 1))[:n]


@pytest.mark.parametrize("size", SIZES)
def test_file_and_bytes_hash_equal_pypi_blake3(tmp_path: Path, size: int) -> None:
    data = _data(size)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    expected = blake3.blake3(data).hexdigest()
    assert _native.blake3_bytes(data) == expected
    assert _native.hash_file(str(p)) == expected
    info = _native.hash_path(str(p))
    assert info == {"hash": expected, "size": size, "nfiles": 1, "is_dir": False}


def test_hash_files_parallel_keeps_order(tmp_path: Path) -> None:
    paths = []
    for i, n in enumerate(SIZES * 3):
        p = tmp_path / f"f{i}"
        p.write_bytes(_data(n)[::-1] + bytes([i]))
        paths.append(str(p))
    got = _native.hash_files(paths)
    assert got == [blake3.blake3(Path(p).read_bytes()).hexdigest() for p in paths]


def test_missing_file_is_file_not_found_naming_it(tmp_path: Path) -> None:
    p = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError) as ei:
        _native.hash_file(str(p))
    assert ei.value.filename == str(p)
    assert str(p) in str(ei.value)
    with pytest.raises(FileNotFoundError):
        _native.hash_files([str(p)])


def test_directory_given_to_hash_file(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as ei:
        _native.hash_file(str(tmp_path))
    assert ei.value.filename == str(tmp_path)


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    p = tmp_path / ("n" * 255)
    _native.write_atomic(str(p), b"one")
    _native.write_atomic(str(p), b"two", "not-a-kill-point")
    assert p.read_bytes() == b"two"
    assert os.listdir(tmp_path) == [p.name]
    with pytest.raises(FileNotFoundError):
        _native.write_atomic(str(tmp_path / "missing" / "x"), b"")


def test_kill_point_kills_only_when_named(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import pivot._native as n; n.kill_point('lock_write'); print('alive')"
    env = dict(os.environ, PIVOT_KILL_AT="lock_write")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=False)
    assert r.returncode == -9
    env["PIVOT_KILL_AT"] = "other"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=False)
    assert r.stdout.strip() == b"alive"
