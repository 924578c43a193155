"""Results benchmark: `pivot diff` on a 10^6-entry directory output (the Rust manifest diff).

Run with a release build (`pip install -e .`), from the repo root:

    .venv/bin/python benchmarks/bench_results.py

Env: PIVOT_BENCH_ENTRIES (default 1000000), PIVOT_BENCH_DIR (default: the system temp dir).
Two manifests of that many entries (1% modified, 0.1% deleted, 0.1% added) are written as
cache objects; the step times `storage.revision_io.diff_manifests` (read both objects, check
their hashes, strict parse, merge pass, build the Python lists), best of 3, against a target
of 1 s. Not part of the test suite.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import blake3

from _report import Row, print_table
from pivot.storage.revision_io import diff_manifests, object_path

N = int(os.environ.get("PIVOT_BENCH_ENTRIES", "1000000"))
TARGET_S = 1.0
HEADER = '{"pivot_manifest":1}\n'


def _line(path: str, digest: str, size: int) -> str:
    return f'{{"path":"{path}","hash":"{digest}","size":{size},"exec":false}}\n'


def manifests(n: int) -> tuple[bytes, bytes, tuple[int, int, int]]:
    """Old and new manifest bytes (canonical, sorted) and the expected (added, modified,
    deleted) counts."""
    old, new = [HEADER], [HEADER]
    added = modified = deleted = 0
    for i in range(n):
        path = f"d{i // 1000:04d}/f{i % 1000:04d}.bin"
        digest = f"{i:064x}"
        old.append(_line(path, digest, 4096))
        if i % 1000 == 7:
            deleted += 1
            continue
        if i % 100 == 3:
            modified += 1
            digest = f"{i + n:064x}"
        new.append(_line(path, digest, 4096))
        if i % 1000 == 11:
            added += 1
            new.append(_line(path + "x", f"{i + 2 * n:064x}", 10))
    return "".join(old).encode(), "".join(new).encode(), (added, modified, deleted)


def store(cache: Path, data: bytes) -> str:
    digest = blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()
    path = object_path(cache, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def main() -> int:
    base = os.environ.get("PIVOT_BENCH_DIR") or None
    with tempfile.TemporaryDirectory(prefix="pivot-bench-results-", dir=base) as tmp:
        cache = Path(tmp) / "cache"
        t0 = time.perf_counter()
        old, new, expected = manifests(N)
        a, b = store(cache, old), store(cache, new)
        print(
            f"generated 2 manifests of {N:,} entries ({len(old) / 2**20:.0f} MiB each) "
            f"in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            d = diff_manifests(cache, a, b)
            best = min(best, time.perf_counter() - t)
        got = (len(d["added"]), len(d["modified"]), len(d["deleted"]))
        assert got == expected, f"diff found {got}, expected {expected}"
    rows: list[Row] = [(f"manifest diff, {N:,} entries", best, "target", TARGET_S, 1.0)]
    return min(
        1,
        print_table(
            rows,
            f"changes found: {got[0]:,} added, {got[1]:,} modified, {got[2]:,} deleted "
            f"(best of 3; PIVOT_THREADS={os.environ.get('PIVOT_THREADS', 'all CPUs')})",
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
