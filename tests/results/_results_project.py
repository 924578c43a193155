"""A git repository with several commits of a pivot project, for the result commands.

History (tags): v1 = train only, input "a b c", lr 0.1; v2 = input "a b c d", lr 0.2 and a new
stage `report`; the workspace then has input "a b c d e", lr 0.3, re-run and not committed.
Cached outputs (plots, shards/) are git-ignored, metrics are committed. A tracked directory
`data/raw` (`data/raw.pvt`) changes one file from v1 to v2.
"""

from __future__ import annotations

import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "cli"))  # _pivot_helpers

from _pivot_helpers import Project, git, make_project, run_ok

TRAIN = """
import csv
import json
import pathlib
from typing import Annotated, TypedDict

from pivot import loaders, outputs
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams


class TrainParams(StageParams):
    lr: float = 0.1
    epochs: int = 4
    opt: dict = {"name": "sgd", "momentum": 0.9}


class TrainOut(TypedDict):
    metrics: Annotated[dict, outputs.Metric("metrics.json")]
    curve: Annotated[
        pathlib.Path, outputs.Plot("plots/curve.csv", loaders.PathOnly(), x="step", y="loss")
    ]
    shards: Annotated[pathlib.Path, outputs.Out("shards/", loaders.PathOnly())]


def train(
    params: TrainParams, src: Annotated[str, outputs.Dep("input.txt", loaders.Text())]
) -> TrainOut:
    words = src.split()
    pathlib.Path("plots").mkdir(exist_ok=True)
    with open("plots/curve.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss"])
        for i in range(params.epochs):
            w.writerow([i, round(1.0 / (1 + params.lr * i * 10), 4)])
    out = pathlib.Path("shards")
    out.mkdir(exist_ok=True)
    for i, word in enumerate(words):
        (out / f"part-{i}.txt").write_text(word * 3)
    loss = round(1.0 / (1 + params.lr * params.epochs * 10), 6)
    return {
        "metrics": {"loss": loss, "eval": {"acc": len(words) / 10, "n": len(words)}, "name": "m"},
        "curve": pathlib.Path("plots/curve.csv"),
        "shards": out,
    }
"""

REPORT = """

class ReportParams(StageParams):
    title: str = "weekly"


def report(
    params: ReportParams, m: Annotated[dict, outputs.Dep("metrics.json", loaders.JSON())]
) -> Annotated[list, outputs.Plot("plots/bars.json", loaders.JSON(), x="word", y="count", template="bar")]:
    return [{"word": w, "count": i + 1} for i, w in enumerate(["x", "y", "z"][: m["eval"]["n"] - 1])]
"""

V1 = TRAIN + '\npipeline = Pipeline("results")\npipeline.register(train)\n'
V2 = (
    TRAIN
    + REPORT
    + '\npipeline = Pipeline("results")\npipeline.register(train)\npipeline.register(report)\n'
)
IGNORE = "runs.log\n/plots/\n/shards/\n/pivot_plots/\n/data/raw/\n"


def build(root: pathlib.Path) -> Project:
    """The repository described in the module docstring."""
    proj = make_project(root, V1, git_init=True)
    proj.write("input.txt", "a b c\n")
    proj.write(".gitignore", IGNORE)
    proj.write("data/raw/a.txt", "1")
    proj.write("data/raw/b.txt", "2")
    run_ok(proj.cli("track", "data/raw"))  # a tracked directory (data/raw.pvt)
    run_ok(proj.cli("repro"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v1")
    git(root, "tag", "v1")

    proj.write("pipeline.py", V2)
    proj.write("input.txt", "a b c d\n")
    proj.write("params.yaml", "train:\n  lr: 0.2\n")
    (root / "data/raw/b.txt").unlink()  # linked to a read-only cache object: replace it
    proj.write("data/raw/b.txt", "22")
    run_ok(proj.cli("track", "data/raw"))
    run_ok(proj.cli("repro"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v2")
    git(root, "tag", "v2")

    proj.write("input.txt", "a b c d e\n")
    proj.write("params.yaml", "train:\n  lr: 0.3\n")
    run_ok(proj.cli("repro"))
    return proj


def copy(src: Project, dest: pathlib.Path) -> Project:
    """A private copy (tests that damage the cache)."""
    shutil.copytree(src.root, dest, symlinks=True)
    return Project(dest)
