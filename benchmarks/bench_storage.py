"""Storage benchmark: hashing, manifests, stat index, cache insert and restore vs baselines.

Run with a release build (`pip install -e .`), from the repo root:

    .venv/bin/python benchmarks/bench_storage.py

Env: PIVOT_BENCH_FILES (default 100000 files of 4 KiB), PIVOT_BENCH_BIG_MB (default 2048, in 4
files), PIVOT_BENCH_DIR (where the data goes; default /work, never a tmpfs). Prints one table
with ratios and PASS/FAIL per target. Not part of the test suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3

from _report import Row, print_table
from pivot import _native

N_FILES = int(os.environ.get("PIVOT_BENCH_FILES", "100000"))
BIG_MB = int(os.environ.get("PIVOT_BENCH_BIG_MB", "2048"))
FILE_SIZE = 4096
PER_DIR = 1000


def fs_type(path: Path) -> str:
    """Filesystem type of the mount holding `path` (from /proc/mounts)."""
    best, kind = "", "?"
    real = str(path.resolve())
    with open("/proc/mounts") as fh:
        for line in fh:
            _, mnt, typ, *_ = line.split()
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                best, kind = mnt, typ
    return kind


def drop_caches() -> bool:
    """Flush dirty data and drop the page cache (root only); False if not possible."""
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


COLD = False  # set in main(): whether drop_caches works


def prepare() -> None:
    """Before a measured step: same page-cache state for pivot and its baseline."""
    if COLD:
        drop_caches()
    else:
        subprocess.run(["sync"], check=True)


def timed(fn: Callable[[], object]) -> float:
    prepare()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def best_of(n: int, fn: Callable[[], object]) -> float:
    return min(timed(fn) for _ in range(n))


def warm_best_of(n: int, fn: Callable[[], object]) -> float:
    """Page cache kept warm: measures hashing, not the disk (the big files fit in RAM)."""
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


def make_big_files(d: Path) -> list[str]:
    d.mkdir()
    paths = []
    per = BIG_MB // 4
    chunk = os.urandom(1 << 20)
    for i in range(4):
        p = d / f"big{i}.bin"
        with open(p, "wb") as fh:
            for j in range(per):
                fh.write(chunk[j % 7 :] + chunk[: j % 7])  # distinct-ish blocks, cheap to make
        paths.append(str(p))
    return paths


def make_tree(root: Path) -> None:
    for i in range(N_FILES):
        d = root / f"d{i // PER_DIR:04d}"
        if i % PER_DIR == 0:
            d.mkdir(parents=True)
        (d / f"f{i:06d}.bin").write_bytes(os.urandom(FILE_SIZE))


def all_files(root: Path) -> list[str]:
    out: list[str] = []
    for dirpath, _, names in os.walk(root):
        out.extend(os.path.join(dirpath, n) for n in names)
    return out


def pypi_hash_file(p: str) -> str:
    with open(p, "rb") as fh:
        return blake3.blake3(fh.read()).hexdigest()


def pypi_threadpool(root: Path) -> None:
    with ThreadPoolExecutor() as ex:
        list(ex.map(pypi_hash_file, all_files(root), chunksize=256))


def plain_read_loop(root: Path) -> None:
    for p in all_files(root):
        with open(p, "rb") as fh:
            fh.read()


def pypi_big(paths: list[str]) -> None:
    for p in paths:
        h = blake3.blake3(max_threads=blake3.blake3.AUTO)
        h.update_mmap(p)
        h.hexdigest()


# (step, pivot seconds, baseline name, baseline seconds, max ratio)


def main() -> int:
    global COLD
    base = Path(os.environ.get("PIVOT_BENCH_DIR", "/work" if Path("/work").is_dir() else "."))
    work = Path(tempfile.mkdtemp(prefix="pivot-bench-", dir=base))
    kind = fs_type(work)
    if kind in ("tmpfs", "ramfs"):
        print(f"refusing to benchmark on {kind} ({work}); set PIVOT_BENCH_DIR", file=sys.stderr)
        return 2
    COLD = drop_caches()
    print(f"data in {work} ({kind}); {N_FILES} x {FILE_SIZE} B files, {BIG_MB} MiB in 4 files")
    print(f"cpus: {os.cpu_count()}; page cache: {'dropped before each step' if COLD else 'warm'}")
    rows: list[Row] = []
    try:
        # (a) big files
        paths = make_big_files(work / "big")
        native = _native.hash_files(paths)
        h = blake3.blake3(max_threads=blake3.blake3.AUTO)
        h.update_mmap(paths[0])
        assert native[0] == h.hexdigest()
        t_nat = warm_best_of(3, lambda: _native.hash_files(paths))
        t_py = warm_best_of(3, lambda: pypi_big(paths))
        # throughput ratio = t_py / t_nat; expressed as time ratio t_nat/t_py <= 1/0.9
        rows.append(("hash 4 big files", t_nat, "PyPI blake3 AUTO mmap", t_py, 1 / 0.9))
        shutil.rmtree(work / "big")

        # (b) manifests
        tree = work / "tree"
        t0 = time.perf_counter()
        make_tree(tree)
        sh("sync")
        print(f"generated tree in {time.perf_counter() - t0:.1f}s")
        state = work / "state"
        time.sleep(2.2)  # files older than the index's racily-clean window
        t_cold = timed(lambda: _native.hash_path(str(tree), str(state)))
        t_pool = timed(lambda: pypi_threadpool(tree))
        t_loop = timed(lambda: plain_read_loop(tree))
        rows.append(("manifest, cold index", t_cold, "PyPI blake3 thread pool", t_pool, 1.0))
        rows.append(("manifest, cold index", t_cold, "python read-only loop", t_loop, 1.5))
        stats = _native._debug_stats  # type: ignore[attr-defined]
        read0 = stats()["files_read"]
        t_warm = best_of(3, lambda: _native.hash_path(str(tree), str(state)))
        assert stats()["files_read"] == read0, "warm index re-read files"
        t_find = best_of(
            3,
            lambda: subprocess.run(
                f"find {tree} -type f -printf '%s %T@\\n' >/dev/null", shell=True, check=True
            ),
        )
        rows.append(("manifest, warm index", t_warm, "find -printf", t_find, 2.0))

        # (c) insert with hardlinks vs cold manifest + cp -al
        t_cpal = timed(lambda: sh("cp", "-al", str(tree), str(work / "cpal")))
        shutil.rmtree(work / "cpal")
        cache = work / "cache"
        info: dict[str, object] = {}

        def insert() -> None:
            info.update(
                _native.cache_insert(str(tree), str(cache), str(work / "st2"), ["hardlink"])
            )

        t_ins = timed(insert)
        assert info["nfiles"] == N_FILES
        rows.append(("insert (hardlink)", t_ins, "cold manifest + cp -al", t_cold + t_cpal, 1.5))

        # (d) restore
        h_dir = str(info["hash"])
        read0 = stats()["files_read"]
        t_rh = timed(
            lambda: _native.cache_restore(
                h_dir, True, str(work / "r1"), str(cache), ["hardlink"], str(work / "st2")
            )
        )
        # objects inserted > 2 s after they were written are vouched for by the stat index
        assert stats()["files_read"] == read0, "hardlink restore read objects"
        t_cpal2 = timed(lambda: sh("cp", "-al", str(tree), str(work / "c1")))
        rows.append(("restore (hardlink)", t_rh, "cp -al", t_cpal2, 1.5))
        t_rc = timed(
            lambda: _native.cache_restore(
                h_dir, True, str(work / "r2"), str(cache), ["copy"], str(work / "st2")
            )
        )
        t_cpr = timed(lambda: sh("cp", "-r", str(tree), str(work / "c2")))
        rows.append(("restore (copy)", t_rc, "cp -r", t_cpr, 1.5))
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(work)], check=False)
        shutil.rmtree(work, ignore_errors=True)

    return (
        1
        if print_table(
            rows,
            "ratio = pivot time / baseline time (hashing target <= 1.11 == throughput >= 0.9x)",
            step_width=24,
        )
        else 0
    )


if __name__ == "__main__":
    sys.exit(main())
