"""Deterministic data generator shared by the pivot and DVC sides of the comparison suite.

The same function writes the same bytes whichever tool calls it: DVC runs it as a command
(`python gen.py tree OUT --files N --size 4096 --seed S --seed0 P`), pivot imports it from a
Python stage. Only the standard library is used so that any interpreter can run it.

Workloads:
- `tree OUT --files N --size B --seed S --seed0 P`: N files of B bytes in OUT/dNNNN/fNNNNNNN.bin
  (1,000 files per sub-directory). Every file is distinct; only file 0 depends on P
  (`seed_for_file_0`), so changing P changes exactly one output file.
- `big OUT --files N --mb M --seed S --seed0 P`: N files of M MiB each; only file 0 depends on P.
- `tiny OUT --seed S [--dep PATH ...]`: one small file whose bytes depend on S and the deps'
  bytes (one stage of `wide`/`chain`).
- `wide OUT --stages N --seed S --seed0 P` / `chain OUT --stages N --seed S --seed0 P`: all the
  outputs of the `wide`/`chain` pipelines computed in one process (the "generator alone" baseline).

If the environment variable PIVOT_DVC_BENCH_RUNLOG names a file, every generator call appends
one line to it, so the suite can count how many stages really executed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import struct
from collections.abc import Sequence

PER_DIR = 1000
MIB = 1 << 20


def _log(kind: str, out: str) -> None:
    path = os.environ.get("PIVOT_DVC_BENCH_RUNLOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{kind} {out}\n")


def _fresh_dir(out: str) -> None:
    # Never write into an existing file: it may be a (read-only) hard link into a cache.
    if os.path.lexists(out):
        if os.path.isdir(out) and not os.path.islink(out):
            shutil.rmtree(out)
        else:
            os.unlink(out)
    os.makedirs(out)


def _block(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def tree(out: str, files: int, size: int = 4096, seed: int = 1, seed0: int = 0) -> None:
    """`files` distinct files of `size` bytes; only file 0 depends on `seed0`."""
    _log("tree", out)
    _fresh_dir(out)
    head = struct.Struct("<QQ")
    body = _block(seed, max(size, head.size))[head.size : size]
    first = _block(seed0 + 1_000_003, max(size, head.size))[head.size : size]
    for d in range(0, files, PER_DIR):
        sub = os.path.join(out, f"d{d // PER_DIR:04d}")
        os.mkdir(sub)
        for i in range(d, min(d + PER_DIR, files)):
            data = head.pack(i, seed0 if i == 0 else seed) + (first if i == 0 else body)
            with open(os.path.join(sub, f"f{i:07d}.bin"), "wb") as fh:
                fh.write(data[:size])


def big(out: str, files: int, mb: int, seed: int = 1, seed0: int = 0) -> None:
    """`files` files of `mb` MiB; only file 0 depends on `seed0`."""
    _log("big", out)
    _fresh_dir(out)
    for i in range(files):
        block = bytearray(_block((seed0 + 1_000_003) if i == 0 else (seed * 1000 + i), MIB))
        with open(os.path.join(out, f"part{i:02d}.bin"), "wb") as fh:
            for j in range(mb):
                block[:8] = struct.pack("<Q", j)
                fh.write(block)


def tiny_bytes(seed: int, deps: Sequence[str] = ()) -> bytes:
    h = hashlib.sha256(str(seed).encode())
    for dep in deps:
        with open(dep, "rb") as fh:
            h.update(fh.read())
    return (h.hexdigest() + "\n").encode()


def tiny(out: str, seed: int, deps: Sequence[str] = ()) -> None:
    """One stage of `wide`/`chain`: a small file from the seed and the deps' bytes."""
    _log("tiny", out)
    data = tiny_bytes(seed, deps)
    if os.path.lexists(out):
        os.unlink(out)
    parent = os.path.dirname(out)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(out, "wb") as fh:
        fh.write(data)


def wide(out: str, stages: int, seed: int = 1, seed0: int = 0) -> None:
    """All outputs of the wide pipeline (N independent stages + `agg`) in one process."""
    paths = [os.path.join(out, f"w{i:03d}.txt") for i in range(stages)]
    for i, p in enumerate(paths):
        tiny(p, seed * 1000 + i)
    tiny(os.path.join(out, "agg.txt"), seed0, paths)


def chain(out: str, stages: int, seed: int = 1, seed0: int = 0) -> None:
    """All outputs of the chain pipeline (c0 -> c1 -> ...; the last one uses seed0)."""
    prev: list[str] = []
    for i in range(stages):
        p = os.path.join(out, f"c{i:03d}.txt")
        tiny(p, seed0 if i == stages - 1 else seed * 1000 + i, prev)
        prev = [p]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["tree", "big", "tiny", "wide", "chain"])
    ap.add_argument("out")
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--stages", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seed0", type=int, default=0)
    ap.add_argument("--dep", action="append", default=[])
    a = ap.parse_args(argv)
    if a.kind == "tree":
        tree(a.out, a.files, a.size, a.seed, a.seed0)
    elif a.kind == "big":
        big(a.out, a.files, a.mb, a.seed, a.seed0)
    elif a.kind == "tiny":
        tiny(a.out, a.seed, a.dep)
    elif a.kind == "wide":
        wide(a.out, a.stages, a.seed, a.seed0)
    else:
        chain(a.out, a.stages, a.seed, a.seed0)


if __name__ == "__main__":
    main()
