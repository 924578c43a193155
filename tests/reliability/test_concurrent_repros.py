"""Case 10: two and three concurrent `pivot repro` processes on one project, 20 rounds: every
stage body runs exactly once per needed change, locks and cache stay consistent, all exit 0."""

from __future__ import annotations

from pathlib import Path

import _invariants as inv
from _project import make

CHAIN = """
import pathlib
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def _mark(name):
    with open("runs.log", "a", encoding="utf-8") as f:
        f.write(name + "\\n")


def a(src: Annotated[str, outputs.Dep("input.txt", loaders.Text())]) -> Annotated[
    str, outputs.Out("a.txt", loaders.Text())
]:
    _mark("a")
    return src.upper()


def b(src: Annotated[str, outputs.Dep("a.txt", loaders.Text())]) -> Annotated[
    str, outputs.Out("b.txt", loaders.Text())
]:
    _mark("b")
    return src + "b"


def c(src: Annotated[str, outputs.Dep("b.txt", loaders.Text())]) -> Annotated[
    str, outputs.Out("c.txt", loaders.Text())
]:
    _mark("c")
    return src + "c"


pipeline = Pipeline("concurrency")
pipeline.register(a)
pipeline.register(b)
pipeline.register(c)
"""

ROUNDS = 20


def test_concurrent_repros_run_each_stage_once_per_change(tmp_path: Path) -> None:
    p = make(tmp_path / "p")
    p.write("pipeline.py", CHAIN)
    outs = ("a.txt", "b.txt", "c.txt")
    before = inv.snapshot(p.root, outs)
    for r in range(ROUNDS):
        n = 2 if r % 2 == 0 else 3
        p.write("input.txt", f"round {r}\n")
        p.clear_runs()
        procs = [inv.pivot_popen(["repro"], p.root) for _ in range(n)]
        results = [(proc, *proc.communicate(timeout=120)) for proc in procs]
        for proc, out, err in results:
            assert proc.returncode == 0, f"round {r}: rc={proc.returncode}\n{out}\n{err}"
        assert sorted(p.runs()) == ["a", "b", "c"], f"round {r} (n={n}): {p.runs()}"
        assert p.read("c.txt") == f"ROUND {r}\nbc"
        inv.check_i1(p.root)
        inv.check_i2(p.root)
    before["input.txt"] = inv.file_hash(p.root / "input.txt")
    inv.check_i3(before, p.root, outs)
    p.up_to_date()
