"""Selecting stages: matrix groups (`train` -> every `train@…`), patterns, close matches."""

from __future__ import annotations

import json
import pathlib
import textwrap

import pytest
from _pivot_helpers import Project, make_project, run_ok

from pivot.exceptions import UnknownStageError
from pivot.selection import expand_stages

STAGES_PY = """
import pathlib
from typing import Annotated

from pivot import loaders, outputs


def _mark(name: str) -> None:
    with open("runs.log", "a", encoding="utf-8") as f:
        f.write(name + "\\n")


def prepare(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("prep.txt", loaders.Text())]:
    _mark("prepare")
    return src


def train(
    src: Annotated[str, outputs.Dep("prep.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("models/model.txt", loaders.Text())]:
    _mark("train")
    return src
"""

PIVOT_YAML = """
stages:
  prepare:
    python: stages.prepare
  train:
    python: stages.train
    outs: {"return": "models/${size}-${opt}.txt"}
    matrix:
      size: [small, large]
      opt: [sgd, adam]
"""

VARIANTS = ["train@small_sgd", "train@small_adam", "train@large_sgd", "train@large_adam"]


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    p = make_project(tmp_path / "p")
    (p.root / "pipeline.py").unlink()
    p.write("stages.py", textwrap.dedent(STAGES_PY))
    p.write("pivot.yaml", textwrap.dedent(PIVOT_YAML))
    return p


def test_expand_stages_rules() -> None:
    known = ["prepare", *VARIANTS, "eval"]
    assert expand_stages(["train"], known) == VARIANTS
    assert expand_stages(["train@*"], known) == VARIANTS
    assert expand_stages(["*@small_*", "prepare"], known) == [*VARIANTS[:2], "prepare"]
    assert expand_stages(["eval", "train@large_sgd", "train"], known) == [
        "eval",
        "train@large_sgd",
        *[v for v in VARIANTS if v != "train@large_sgd"],
    ]
    # a stage literally named like the group wins
    assert expand_stages(["a"], ["a", "a@x"]) == ["a"]
    with pytest.raises(UnknownStageError, match=r"'trian'.*did you mean 'train'"):
        expand_stages(["trian"], known)
    with pytest.raises(UnknownStageError, match=r"no stage matches 'trian@\*'.*did you mean"):
        expand_stages(["trian@*"], known)


def test_list_and_status_accept_groups_and_patterns(proj: Project) -> None:
    listed = run_ok(proj.cli("list", "train")).stdout.split()
    assert listed == VARIANTS
    assert run_ok(proj.cli("list", "*@large_*")).stdout.split() == VARIANTS[2:]
    doc = json.loads(run_ok(proj.cli("list", "--json", "train@*")).stdout)
    assert [s["name"] for s in doc["stages"]] == VARIANTS
    status = json.loads(run_ok(proj.cli("status", "--json", "train@small_*")).stdout)
    assert set(status["stages"]) == {"prepare", "train@small_sgd", "train@small_adam"}


def test_repro_group_runs_every_variant(proj: Project) -> None:
    run_ok(proj.cli("repro", "train"))
    assert sorted(proj.runs()) == sorted(["prepare", *["train"] * 4])
    for v in ("small-sgd", "small-adam", "large-sgd", "large-adam"):
        assert proj.exists(f"models/{v}.txt")


def test_checkout_accepts_groups(proj: Project) -> None:
    run_ok(proj.cli("repro", "train"))
    (proj.root / "models" / "small-sgd.txt").unlink()
    (proj.root / "models" / "large-adam.txt").unlink()
    result = run_ok(proj.cli("checkout", "train"))
    assert "restored models/small-sgd.txt" in result.stderr
    assert proj.exists("models/large-adam.txt")
    (proj.root / "models" / "small-adam.txt").unlink()
    run_ok(proj.cli("checkout", "*@small_*"))
    assert proj.exists("models/small-adam.txt")


def test_run_pattern_runs_only_matches(proj: Project) -> None:
    run_ok(proj.cli("repro", "prepare"))
    proj.clear_runs()
    run_ok(proj.cli("run", "*@large_*"))
    assert proj.runs() == ["train", "train"]
    assert proj.exists("models/large-adam.txt") and not proj.exists("models/small-sgd.txt")


def test_unknown_name_lists_close_matches(proj: Project) -> None:
    result = run_ok(proj.cli("repro", "trian"), 1)
    assert "did you mean 'train'?" in result.stderr
    result = run_ok(proj.cli("run", "train@smal_sgd"), 1)
    assert "did you mean 'train@small_sgd'" in result.stderr
    assert "Traceback" not in result.output
    result = run_ok(proj.cli("status", "nothing@*"), 1)
    assert "no stage matches 'nothing@*'" in result.stderr
