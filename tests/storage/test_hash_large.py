"""Big files are hashed through a guarded mmap: same hashes as PyPI blake3, and a file truncated
while it is hashed gives SourceChangedError, never a SIGBUS death."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import blake3
import pytest

from pivot import _native

# rust/hash.rs MMAP_THRESHOLD (= PARALLEL_THRESHOLD): files this large are mapped.
THRESHOLD = 4 << 20


def _data(n: int) -> bytes:
    return (bytes(range(251)) * (n // 251 + 1))[:n]


@pytest.mark.parametrize("size", [THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 3 * THRESHOLD + 7])
def test_sizes_around_the_mmap_threshold_equal_pypi_blake3(tmp_path: Path, size: int) -> None:
    data = _data(size)[::-1]
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    expected = blake3.blake3(data).hexdigest()
    assert _native.hash_file(str(p)) == expected
    assert _native.hash_files([str(p), str(p)]) == [expected, expected]
    assert _native.hash_path(str(p))["hash"] == expected


# Runs in a child process: without the guard, a load past the new end of file kills it (SIGBUS).
_CHILD = textwrap.dedent(
    """
    import os, sys, threading
    import blake3
    from pivot import _native
    from pivot.exceptions import SourceChangedError

    path, size, head_len = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(path, "rb") as fh:
        head = fh.read(head_len)
    full = blake3.blake3(head + bytes(size - head_len)).hexdigest()
    short = blake3.blake3(head).hexdigest()
    stop, running = threading.Event(), threading.Event()

    def truncate_loop() -> None:
        fd = os.open(path, os.O_WRONLY)
        while not stop.is_set():
            os.ftruncate(fd, head_len)
            os.ftruncate(fd, size)  # sparse again: zeros, a different inode state
            running.set()
        os.close(fd)

    t = threading.Thread(target=truncate_loop)
    t.start()
    running.wait()
    changed = ok = 0
    try:
        for _ in range(6):
            try:
                h = _native.hash_file(path)
            except SourceChangedError as e:
                assert path in str(e), e
                changed += 1
            else:
                assert h in (full, short), "hash of content that never existed"
                ok += 1
    finally:
        stop.set()
        t.join()
    print(f"changed={changed} ok={ok}")
    """
)


def test_truncated_while_hashing_never_kills_the_process(tmp_path: Path) -> None:
    p = tmp_path / "big.bin"
    size, head_len = 512 << 20, 1 << 20
    with open(p, "wb") as fh:
        fh.write(os.urandom(head_len))
        fh.truncate(size)  # 512 MiB, sparse: cheap on disk, zeros past the head
    changed = 0
    for _ in range(3):
        r = subprocess.run(
            [sys.executable, "-c", _CHILD, str(p), str(size), str(head_len)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        # A SIGBUS death would be returncode -7.
        assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
        changed += int(r.stdout.split("changed=")[1].split()[0])
    assert changed > 0, "the truncation loop never overlapped a hash"


def test_insert_progress_counts_files_and_bytes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for i, n in enumerate([0, 10, THRESHOLD + 1]):
        (out / f"f{i}").write_bytes(_data(n))
    files0, bytes0 = _native.insert_progress()
    _native.cache_insert(str(out), str(tmp_path / "cache"), None, ["copy"])
    files1, bytes1 = _native.insert_progress()
    assert (files1 - files0, bytes1 - bytes0) == (3, THRESHOLD + 11)
