"""Real temp projects for the reliability suite (fixtures in conftest.py): a pipeline with a directory output of a few
hundred files (`produce`) and a downstream stage (`summarize`), run with real `pivot`
subprocesses. The invariants live in `_invariants.py`."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import _invariants as inv

NFILES = 200

# produce: input.txt -> data/out/ (NFILES files); summarize: data/out/ -> summary.txt.
# Hooks that do not change the code fingerprint: SLEEP_<stage> makes the stage write its pid to
# <stage>.pid and wait until the file is removed; FAIL_<stage> makes it write half its output
# and raise. Every body appends its name to runs.log.
PIPELINE = f"""
import os
import pathlib
import time
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline

NFILES = {NFILES}


def _mark(name):
    with open("runs.log", "a", encoding="utf-8") as f:
        f.write(name + "\\n")
    if pathlib.Path("SLEEP_" + name).exists():
        pathlib.Path(name + ".pid").write_text(str(os.getpid()), encoding="utf-8")
        deadline = time.monotonic() + 60
        while pathlib.Path("SLEEP_" + name).exists() and time.monotonic() < deadline:
            time.sleep(0.02)


def produce(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("data/out/", loaders.PathOnly())]:
    _mark("produce")
    out = pathlib.Path("data/out")
    out.mkdir(parents=True, exist_ok=True)
    for i in range(NFILES):
        if i == NFILES // 2 and pathlib.Path("FAIL_produce").exists():
            raise RuntimeError("intentional failure in produce")
        sub = out / ("d" + str(i % 4))
        sub.mkdir(exist_ok=True)
        (sub / ("f" + str(i).zfill(4) + ".txt")).write_text(
            str(i) + ":" + src * (1 + i % 7), encoding="utf-8"
        )
    return out


def summarize(
    out: Annotated[pathlib.Path, outputs.Dep("data/out/", loaders.PathOnly())],
) -> Annotated[str, outputs.Out("summary.txt", loaders.Text())]:
    _mark("summarize")
    files = sorted(p for p in pathlib.Path(out).rglob("*") if p.is_file())
    return str(len(files)) + " files, " + str(sum(p.stat().st_size for p in files)) + " bytes\\n"


pipeline = Pipeline("reliability")
pipeline.register(produce)
pipeline.register(summarize)
"""

OUTPUTS = ("data/out/", "summary.txt")


@dataclass
class Proj:
    root: Path

    def pivot(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return inv.pivot(list(args), self.root, **env)

    def ok(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        proc = self.pivot(*args, **env)
        assert proc.returncode == 0, f"pivot {' '.join(args)}: {inv.describe(proc)}"
        return proc

    def write(self, rel: str, text: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        return p

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def runs(self) -> list[str]:
        p = self.root / "runs.log"
        return p.read_text(encoding="utf-8").split() if p.exists() else []

    def clear_runs(self) -> None:
        (self.root / "runs.log").unlink(missing_ok=True)

    def snapshot(self) -> dict[str, str]:
        return inv.snapshot(self.root, OUTPUTS)

    def check(self, before: dict[str, str] | None = None) -> None:
        inv.check_all(self.root, before, OUTPUTS)

    def up_to_date(self) -> None:
        proc = self.pivot("status", "-q")
        assert proc.returncode == 0, f"not up to date: {inv.describe(self.pivot('status'))}"

    def expected_out(self, i: int) -> str:
        src = self.read("input.txt")
        return str(i) + ":" + src * (1 + i % 7)

    def out_file(self, i: int) -> Path:
        return self.root / "data" / "out" / f"d{i % 4}" / f"f{i:04d}.txt"

    def outputs_correct(self) -> None:
        """The workspace directory output holds exactly what `produce` writes for input.txt."""
        files = sorted(p for p in (self.root / "data" / "out").rglob("*") if p.is_file())
        assert len(files) == NFILES
        for i in range(NFILES):
            assert self.out_file(i).read_text(encoding="utf-8") == self.expected_out(i), i


def make(root: Path, link_modes: Sequence[str] = ("hardlink", "copy")) -> Proj:
    from pivot import project

    root.mkdir(parents=True, exist_ok=True)
    project.init(root)
    modes = ", ".join(link_modes)
    (root / ".pivot" / "config.yaml").write_text(
        f"cache:\n  link_modes: [{modes}]\n", encoding="utf-8"
    )
    p = Proj(root)
    p.write("pipeline.py", PIPELINE)
    p.write("input.txt", "hello\n")
    p.write("notes/user.txt", "user data, never touched\n")
    return p
