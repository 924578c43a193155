"""The stat index: unchanged files cost a stat and no read; any change is noticed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import blake3

from pivot import _native

RACY_WINDOW_S = 2.0  # rust/index.rs RACY_WINDOW_NS


def _tree(root: Path, n: int = 50) -> None:
    for i in range(n):
        p = root / f"d{i % 5}" / f"f{i}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"content {i}\n".encode() * (i + 1))


def _reads() -> int:
    return _native._debug_stats()["files_read"]


def _child_stats(path: Path, state: Path, **env: str) -> dict[str, object]:
    """Hash in a fresh process (no in-memory snapshot): proves what is on disk."""
    code = (
        "import json, sys, pivot._native as n\n"
        "info = n.hash_path(sys.argv[1], sys.argv[2])\n"
        "print(json.dumps({'info': info, 'stats': n._debug_stats()}))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(path), str(state)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    out: dict[str, object] = __import__("json").loads(r.stdout)
    out["stderr"] = r.stderr
    return out


def test_unchanged_tree_is_not_read_again_and_edits_are_seen(tmp_path: Path) -> None:
    root, state = tmp_path / "t", tmp_path / "state"
    _tree(root)
    time.sleep(RACY_WINDOW_S + 0.2)  # let the files stop being "racily clean"
    first = _native.hash_path(str(root), str(state))
    assert first == _native.hash_path(str(root))  # same answer with and without the index

    before = _reads()
    assert _native.hash_path(str(root), str(state)) == first
    assert _reads() == before, "second hash of an unchanged tree read files"
    child = _child_stats(root, state)
    assert child["info"] == first
    assert child["stats"] == {  # type: ignore[comparison-overlap]
        "files_read": 0,
        "bytes_read": 0,
        "index_hits": 50,
        "index_rebuilt": 0,
    }

    # Same-size edit with the mtime put back: only ctime tells, and it must.
    f = root / "d0" / "f0.txt"
    st = f.stat()
    f.write_bytes(b"CONTENT 0\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    before = _reads()
    third = _native.hash_path(str(root), str(state))
    assert _reads() == before + 1
    assert third["hash"] != first["hash"]
    assert third == _native.hash_path(str(root))
    assert (
        _native.hash_path(str(f), str(state))["hash"] == blake3.blake3(b"CONTENT 0\n").hexdigest()
    )


def test_racily_clean_entry_is_rehashed_until_old_enough(tmp_path: Path) -> None:
    f, state = tmp_path / "f", tmp_path / "state"
    f.write_bytes(b"abc")
    # An mtime in the future is racy whatever the window and however slow this machine is.
    future = time.time_ns() + 3_600 * 10**9
    os.utime(f, ns=(future, future))
    _native.hash_path(str(f), str(state))
    before = _reads()
    _native.hash_path(str(f), str(state))
    assert _reads() == before + 1, "an entry racily clean when recorded must not be trusted"
    os.utime(f, ns=(future - 7_200 * 10**9, future - 7_200 * 10**9))  # an hour ago
    time.sleep(RACY_WINDOW_S + 0.2)  # and the ctime that utime just moved
    _native.hash_path(str(f), str(state))  # now recorded long after the last change
    before = _reads()
    _native.hash_path(str(f), str(state))
    assert _reads() == before


def test_corrupt_index_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    root, state = tmp_path / "t", tmp_path / "state"
    _tree(root, 5)
    expected = _native.hash_path(str(root))
    idx = state / "index" / "stat.idx"
    idx.parent.mkdir(parents=True)
    for garbage in [b"", b"garbage" * 100, b"PVTSTAT\x00" + b"\x01" * 100]:
        idx.write_bytes(garbage)
        child = _child_stats(root, state, PIVOT_VERBOSE="1")
        assert child["info"] == expected
        assert child["stats"]["index_rebuilt"] == 1  # type: ignore[index]
        assert "stat index" in str(child["stderr"]) and "rebuilding" in str(child["stderr"])
        assert idx.read_bytes().startswith(b"PVTSTAT\x00")
        assert _child_stats(root, state)["stats"]["index_rebuilt"] == 0  # type: ignore[index]
    # A truncated valid index is also refused.
    idx.write_bytes(idx.read_bytes()[:-1])
    assert _child_stats(root, state)["stats"]["index_rebuilt"] == 1  # type: ignore[index]


def test_concurrent_processes_never_corrupt_or_lose_entries(tmp_path: Path) -> None:
    state = tmp_path / "state"
    roots = [tmp_path / f"t{i}" for i in range(4)]
    for r in roots:
        _tree(r, 40)
    time.sleep(RACY_WINDOW_S + 0.2)
    code = (
        "import sys, pivot._native as n\n"
        "for _ in range(5):\n"
        "    for r in sys.argv[2:]:\n"
        "        n.hash_path(r, sys.argv[1])\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(state), str(r), str(roots[0])])
        for r in roots
    ]
    assert [p.wait() for p in procs] == [0] * len(procs)
    # Every file of every tree is in the index: a fresh process reads nothing.
    for r in roots:
        child = _child_stats(r, state)
        assert child["stats"]["files_read"] == 0  # type: ignore[index]
        assert child["stats"]["index_rebuilt"] == 0  # type: ignore[index]


def test_killed_index_write_leaves_old_index_usable(tmp_path: Path) -> None:
    root, state = tmp_path / "t", tmp_path / "state"
    _tree(root, 5)
    good = _native.hash_path(str(root), str(state))
    (root / "new").write_text("new")
    code = "import sys, pivot._native as n; n.hash_path(sys.argv[1], sys.argv[2])"
    r = subprocess.run(
        [sys.executable, "-c", code, str(root), str(state)],
        env={**os.environ, "PIVOT_KILL_AT": "index_write"},
        check=False,
    )
    assert r.returncode == -9
    child = _child_stats(root, state)
    assert child["stats"]["index_rebuilt"] == 0  # type: ignore[index]
    assert child["info"]["nfiles"] == good["nfiles"] + 1  # type: ignore[index]


def test_files_hashed_a_clock_tick_after_their_last_write_are_trusted_next_time(
    tmp_path: Path,
) -> None:
    """On a local filesystem the racy test uses the filesystem's own clock (docs/formats.md,
    "Racily clean"): outputs hashed right after a stage wrote them are not read again by the
    next command, and a later same-size edit is still seen."""
    root, state = tmp_path / "t", tmp_path / "state"
    _tree(root, n=20)
    time.sleep(0.05)  # several ticks of the kernel's coarse clock (≤ 10 ms each)
    first = _native.hash_path(str(root), str(state))
    child = _child_stats(root, state)
    assert child["info"] == first
    assert child["stats"]["files_read"] == 0  # type: ignore[index]
    # A same-size edit after that lands in a later tick: its mtime moved, so it is re-read.
    edited = root / "d0" / "f0.txt"
    edited.write_bytes(edited.read_bytes().upper())
    child = _child_stats(root, state)
    assert child["stats"]["files_read"] == 1  # type: ignore[index]
    assert child["info"] != first
