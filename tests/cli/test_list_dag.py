"""`pivot list` and `pivot dag` on a real temporary project (in-process and as a subprocess)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from pivot.cli import cli

PIPELINE = """
import pathlib
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def evaluate(
    model: Annotated[str, outputs.Dep("model.txt", loaders.Text())],
    data: Annotated[pathlib.Path, outputs.Dep("data/", loaders.PathOnly())],
) -> Annotated[dict, outputs.Metric("metrics.json")]:
    return {"n": len(model)}


def prepare(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("data/clean.txt", loaders.Text())]:
    return src.upper()


def train(
    data: Annotated[str, outputs.Dep("data/clean.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("model.txt", loaders.Text())]:
    return "model of " + data


pipeline = Pipeline("demo")
pipeline.register(evaluate)   # registered first on purpose: list keeps this order
pipeline.register(prepare)
pipeline.register(train)
"""

RunPivot = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def root(
    tmp_path: Path, make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> Path:
    # input.txt is deliberately absent: list and dag must work before data is pulled.
    path = make_project(tmp_path / "proj", {"pipeline.py": PIPELINE})
    monkeypatch.chdir(path)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list_registration_order(root: Path) -> None:
    code, out, err = invoke("list")
    assert code == 0, err
    assert out.splitlines() == ["evaluate", "prepare", "train"]


def test_list_deps(root: Path) -> None:
    code, out, err = invoke("list", "--deps")
    assert code == 0, err
    assert out.splitlines() == [
        "evaluate",
        "  deps: model.txt, data/",
        "  outs: metrics.json",
        "prepare",
        "  deps: input.txt",
        "  outs: data/clean.txt",
        "train",
        "  deps: data/clean.txt",
        "  outs: model.txt",
    ]


def test_list_json(root: Path) -> None:
    code, out, err = invoke("list", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert [s["name"] for s in data["stages"]] == ["evaluate", "prepare", "train"]
    train = data["stages"][2]
    assert train["deps"] == ["data/clean.txt"]
    assert [o["path"] for o in train["outs"]] == ["model.txt"]
    assert err == ""


def test_list_from_subdirectory(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (root / "sub").mkdir()
    monkeypatch.chdir(root / "sub")
    assert invoke("list")[1].splitlines() == ["evaluate", "prepare", "train"]


def test_dag_text(root: Path) -> None:
    code, out, err = invoke("dag")
    assert code == 0, err
    assert out.splitlines() == ["prepare", "train <- prepare", "evaluate <- prepare, train"]


def test_dag_dot(root: Path) -> None:
    code, out, _ = invoke("dag", "--dot")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "digraph pivot {" and lines[-1] == "}"
    assert '  "prepare" -> "train" [label="data/clean.txt"];' in lines
    assert '  "train" -> "evaluate" [label="model.txt"];' in lines
    assert '  "prepare" -> "evaluate" [label="data/clean.txt"];' in lines
    # every statement line is a node, an edge or a graph attribute, terminated by ';'
    for line in lines[1:-1]:
        assert re.fullmatch(
            r'  (".*"( -> ".*" \[label=".*"\])?|rankdir=LR|node \[shape=box\]);', line
        )


def test_dag_mermaid(root: Path) -> None:
    code, out, _ = invoke("dag", "--mermaid")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "flowchart TD"
    assert lines[1:4] == ['  s0["prepare"]', '  s1["train"]', '  s2["evaluate"]']
    assert set(lines[4:]) == {"  s0 --> s1", "  s0 --> s2", "  s1 --> s2"}


def test_dag_dot_and_mermaid_is_usage_error(root: Path) -> None:
    code, _, err = invoke("dag", "--dot", "--mermaid")
    assert code == 2
    assert "cannot be used together" in err


def test_dag_escapes_quotes() -> None:
    from pivot.cli.dag import _dot_quote, _mermaid_label

    assert _dot_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert _mermaid_label('say "hi"') == "say #quot;hi#quot;"


def test_list_and_dag_subprocess(root: Path, run_pivot: RunPivot) -> None:
    listed = run_pivot(["list"], cwd=root)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["evaluate", "prepare", "train"]
    dag = run_pivot(["dag"], cwd=root)
    assert dag.returncode == 0, dag.stderr
    assert dag.stdout.splitlines()[-1] == "evaluate <- prepare, train"


def test_invalid_pipeline_reports_one_line(
    tmp_path: Path, make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = PIPELINE.replace('Out("model.txt"', 'Out("data/clean.txt/model.txt"')
    monkeypatch.chdir(make_project(tmp_path / "bad", {"pipeline.py": bad}))
    code, out, err = invoke("dag")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "Error: stage 'prepare' output 'data/clean.txt' contains stage 'train' output "
        "'data/clean.txt/model.txt'"
    ]
