"""Execution benchmark: no-op `pivot repro` and `pivot commit` through real `pivot` processes.

Run with a release build (`pip install -e .`), from the repo root:

    .venv/bin/python benchmarks/bench_execution.py                      # full size, a few minutes
    PIVOT_BENCH_FILES=10000 PIVOT_BENCH_STAGES=50 .venv/bin/python benchmarks/bench_execution.py

Env:
  PIVOT_BENCH_FILES    files (4 KiB each) the tree stage writes into its DirectoryOut (100000)
  PIVOT_BENCH_STAGES   independent tiny stages in the second project (200)
  PIVOT_BENCH_REPEATS  timed repetitions per side; the table shows medians (5; commit: 3)
  PIVOT_BENCH_DIR      where the projects go (default /work; a tmpfs is refused)
  PIVOT_BENCH_PIVOT    the pivot executable (default: `pivot` next to this Python)

Steps (ratio = pivot median / baseline median; both sides measured in this one run):
  1. no-op `pivot repro`, one stage that wrote PIVOT_BENCH_FILES files
       vs `python -c pass` + `find TREE -type f -printf '%s %T@\\n'`            target <= 2x
  2. no-op `pivot repro` of PIVOT_BENCH_STAGES independent tiny stages
       vs `pivot list` on the same project                                         target <= 3x
  3. `pivot commit` after `pivot repro --no-commit` of the tree, link_modes [hardlink, copy]
       vs PyPI blake3 over every file in a thread pool + `cp -al TREE`             target <= 1.5x

Racily clean: the stat index trusts an entry only when the file's mtime/ctime are more than 2 s
older than the moment its stat was recorded (rust/index.rs RACY_WINDOW_NS). Right after files
are written, every no-op would therefore re-hash them. The script sleeps RACY_WAIT (> 2 s) after
generating/recording and before the first no-op, then does one untimed warm-up no-op (which
records trusted entries); only the no-ops after it are timed. `pivot commit` is timed after the
same wait, as a user would run it some time after `repro --no-commit`.

Subprocesses run without PYTHONDONTWRITEBYTECODE, so .pyc files are used as in a real install.
The page cache is warm on both sides (nothing is dropped); `sync` runs before every timed
command, so a step does not pay for writing back data an earlier step left dirty. Every measured section holds
`flock /tmp/pivot-bench.lock` so concurrent benchmarks on the machine do not overlap.
Not part of the test suite.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3

from _report import Row, print_table

N_FILES = int(os.environ.get("PIVOT_BENCH_FILES", "100000"))
N_STAGES = int(os.environ.get("PIVOT_BENCH_STAGES", "200"))
REPEATS = int(os.environ.get("PIVOT_BENCH_REPEATS", "5"))
COMMIT_REPEATS = int(os.environ.get("PIVOT_BENCH_COMMIT_REPEATS", str(min(REPEATS, 3))))
FILE_SIZE = 4096
PER_DIR = 1000
RACY_WAIT = 2.2  # seconds; > the stat index's 2 s racily-clean window
LOCK_FILE = "/tmp/pivot-bench.lock"
PIVOT = os.environ.get("PIVOT_BENCH_PIVOT", str(Path(sys.executable).parent / "pivot"))
PYTHON = sys.executable
# Real installs keep .pyc files; PYTHONDONTWRITEBYTECODE (set in some CI/sandbox shells) would
# make every `pivot` process compile its modules from source, which no user pays.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


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


@contextlib.contextmanager
def bench_lock() -> Iterator[None]:
    """Exclusive machine-wide benchmark lock (same file as `flock /tmp/pivot-bench.lock`)."""
    with open(LOCK_FILE, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run(cmd: list[str] | str, cwd: Path, *, shell: bool = False) -> None:
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        shell=shell,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {cmd}\n{proc.stderr}")


def timed(fn: Callable[[], object]) -> float:
    # Flush dirty pages first (the stage's 400 MB of fresh output, the other side's writes), so
    # neither side pays writeback it did not cause; pivot's own syncfs is still timed.
    subprocess.run(["sync"], check=True)
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def pivot(cwd: Path, *args: str) -> Callable[[], None]:
    return lambda: run([PIVOT, *args], cwd)


# --- projects ---------------------------------------------------------------------------------

TREE_PIPELINE = '''\
"""Benchmark: one stage writing {n} files of {size} B into a directory output."""

from __future__ import annotations

import os
import pathlib
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline

N_FILES = {n}
PER_DIR = {per_dir}


def make_tree() -> Annotated[pathlib.Path, outputs.DirectoryOut("out/tree/", loaders.PathOnly())]:
    root = pathlib.Path("out/tree")
    block = os.urandom({size} - 8)
    for i in range(N_FILES):
        d = root / f"d{{i // PER_DIR:04d}}"
        if i % PER_DIR == 0:
            d.mkdir(parents=True, exist_ok=True)
        # distinct content per file, so the cache really holds N_FILES objects
        (d / f"f{{i:06d}}.bin").write_bytes(i.to_bytes(8, "little") + block)
    return root


pipeline = Pipeline("bench_tree")
pipeline.register(make_tree)
'''


def make_tree_project(root: Path) -> None:
    root.mkdir()
    run(["git", "init", "-q"], root)
    run([PIVOT, "init"], root)
    (root / ".pivot" / "config.yaml").write_text("cache:\n  link_modes: [hardlink, copy]\n")
    (root / "pipeline.py").write_text(
        TREE_PIPELINE.format(n=N_FILES, size=FILE_SIZE, per_dir=PER_DIR)
    )


def make_stages_project(root: Path) -> None:
    root.mkdir()
    run(["git", "init", "-q"], root)
    run([PIVOT, "init"], root)
    (root / "data").mkdir()
    parts = [
        '"""Benchmark: independent tiny stages."""\n',
        "from __future__ import annotations\n",
        "from typing import Annotated\n",
        "from pivot import loaders, outputs",
        "from pivot.pipeline import Pipeline\n\n",
    ]
    for i in range(N_STAGES):
        (root / "data" / f"in{i:04d}.txt").write_text(f"input {i}\n")
        parts.append(
            textwrap.dedent(
                f"""\
                def stage{i:04d}(
                    text: Annotated[str, outputs.Dep("data/in{i:04d}.txt", loaders.Text())],
                ) -> Annotated[str, outputs.Out("out/out{i:04d}.txt", loaders.Text())]:
                    return text.upper() + "{i}\\n"

                """
            )
        )
    parts.append('pipeline = Pipeline("bench_stages")')
    parts.extend(f"pipeline.register(stage{i:04d})" for i in range(N_STAGES))
    (root / "pipeline.py").write_text("\n".join(parts) + "\n")


# --- baselines --------------------------------------------------------------------------------


def all_files(root: Path) -> list[str]:
    out: list[str] = []
    for dirpath, _, names in os.walk(root):
        out.extend(os.path.join(dirpath, n) for n in names)
    return out


def _blake3_file(p: str) -> str:
    with open(p, "rb") as fh:
        return blake3.blake3(fh.read()).hexdigest()


def blake3_tree(root: Path) -> None:
    with ThreadPoolExecutor() as ex:
        list(ex.map(_blake3_file, all_files(root), chunksize=256))


def startup_plus_find(tree: Path) -> Callable[[], None]:
    def go() -> None:
        run([PYTHON, "-c", "pass"], tree.parent)
        run(f"find {tree} -type f -printf '%s %T@\\n' >/dev/null", tree.parent, shell=True)

    return go


def medians(
    n: int, pivot_fn: Callable[[], object], base_fn: Callable[[], object]
) -> tuple[float, float, list[float], list[float]]:
    """Alternate pivot and baseline `n` times each; medians and raw times."""
    tp: list[float] = []
    tb: list[float] = []
    for _ in range(n):
        tp.append(timed(pivot_fn))
        tb.append(timed(base_fn))
    return statistics.median(tp), statistics.median(tb), tp, tb


# (step, pivot s, baseline name, baseline s, max ratio)


def fmt(ts: list[float]) -> str:
    return " ".join(f"{t:.3f}" for t in ts)


def main() -> int:
    base = Path(os.environ.get("PIVOT_BENCH_DIR", "/work" if Path("/work").is_dir() else "."))
    work = Path(tempfile.mkdtemp(prefix="pivot-bench-exec-", dir=base))
    kind = fs_type(work)
    if kind in ("tmpfs", "ramfs"):
        print(f"refusing to benchmark on {kind} ({work}); set PIVOT_BENCH_DIR", file=sys.stderr)
        return 2
    print(f"projects in {work} ({kind}); {N_FILES} x {FILE_SIZE} B files; {N_STAGES} stages")
    print(f"cpus: {os.cpu_count()}; repeats: {REPEATS} (commit: {COMMIT_REPEATS}); pivot: {PIVOT}")
    rows: list[Row] = []
    try:
        # --- tree project: commit, then no-op repro ---------------------------------------
        tproj = work / "tree"
        tree = tproj / "out" / "tree"
        make_tree_project(tproj)
        t_commit: list[float] = []
        t_base3: list[float] = []
        cpal = work / "cpal"
        with bench_lock():
            for i in range(COMMIT_REPEATS):
                t0 = time.perf_counter()
                # untimed: run the stage, hash its outputs, record nothing
                run([PIVOT, "repro", "--no-commit", *(["-f"] if i else [])], tproj)
                print(f"  repro --no-commit #{i + 1}: {time.perf_counter() - t0:.1f}s")
                time.sleep(RACY_WAIT)
                t_commit.append(timed(pivot(tproj, "commit")))
                t_base3.append(
                    timed(lambda: blake3_tree(tree))
                    + timed(lambda: run(["cp", "-al", str(tree), str(cpal)], work))
                )
                shutil.rmtree(cpal)
                print(f"  commit #{i + 1}: pivot {t_commit[-1]:.3f}s, baseline {t_base3[-1]:.3f}s")
                if i + 1 < COMMIT_REPEATS:
                    # next round starts from "ran, not recorded" again
                    shutil.rmtree(tproj / ".pivot" / "cache")
                    for lock in (tproj / ".pivot" / "stages").glob("*.lock"):
                        lock.unlink()
            n_files = sum(1 for _ in all_files(tree))
            assert n_files == N_FILES, f"tree has {n_files} files, expected {N_FILES}"

            time.sleep(RACY_WAIT)
            run([PIVOT, "repro"], tproj)  # untimed warm-up no-op (records trusted index entries)
            p1, b1, tp, tb = medians(REPEATS, pivot(tproj, "repro"), startup_plus_find(tree))
            print(f"  no-op repro (tree): pivot {fmt(tp)} | baseline {fmt(tb)}")
        rows.append((f"no-op repro, {N_FILES} files", p1, "python -c pass + find", b1, 2.0))
        rows.append(
            (
                f"commit, {N_FILES} files",
                statistics.median(t_commit),
                "blake3 threads + cp -al",
                statistics.median(t_base3),
                1.5,
            )
        )

        # --- many tiny stages ---------------------------------------------------------------
        sproj = work / "stages"
        make_stages_project(sproj)
        with bench_lock():
            t0 = time.perf_counter()
            run([PIVOT, "repro"], sproj)  # untimed: first real run
            print(f"  first repro of {N_STAGES} stages: {time.perf_counter() - t0:.1f}s")
            time.sleep(RACY_WAIT)
            run([PIVOT, "repro"], sproj)  # untimed warm-up no-op
            p2, b2, tp, tb = medians(REPEATS, pivot(sproj, "repro"), pivot(sproj, "list"))
            print(f"  no-op repro ({N_STAGES} stages): pivot {fmt(tp)} | list {fmt(tb)}")
        rows.append((f"no-op repro, {N_STAGES} stages", p2, "pivot list", b2, 3.0))
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(work)], check=False)
        shutil.rmtree(work, ignore_errors=True)

    return (
        1 if print_table(rows, "medians; ratio = pivot time / baseline time", step_width=30) else 0
    )


if __name__ == "__main__":
    sys.exit(main())
