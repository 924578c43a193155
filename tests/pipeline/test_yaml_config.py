"""pivot.yaml: stages by import path, overrides, params, matrix and vars."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest
from _pipeline_support import (  # noqa: F401  (fixtures)
    isolate_imports_fixture,
    modname_fixture,
    project_fixture,
    write_fixture,
)

from pivot.exceptions import ConfigError, DiscoveryError, ParamsError, StageDefinitionError
from pivot.pipeline import load_pipeline, run_stage

Write = Callable[[pathlib.Path, str], pathlib.Path]

STAGES = """
import pathlib
from typing import Annotated, TypedDict

from pivot import loaders, outputs
from pivot.stage_def import StageParams


class Params(StageParams):
    lr: float = 0.01
    model: str = "base"
    sizes: list[int] = []


class Outs(TypedDict):
    model: Annotated[dict, outputs.Out("model.json", loaders.JSON())]
    score: Annotated[dict, outputs.Metric("score.json")]
    curve: Annotated[list, outputs.Plot("curve.json", loaders.JSON())]


def train(
    params: Params,
    data: Annotated[str, outputs.Dep("data.txt", loaders.Text())],
) -> Outs:
    return {"model": params.model_dump(), "score": {"lr": params.lr}, "curve": [data]}


def prep(src: Annotated[str, outputs.PlaceholderDep(loaders.Text())]) -> Annotated[
    str, outputs.Out("prep.txt", loaders.Text())
]:
    return src
"""


@pytest.fixture
def stages_module(project: pathlib.Path, write: Write, modname: str) -> str:
    write(project / f"{modname}.py", STAGES)
    return modname


def test_basic_yaml(
    project: pathlib.Path, write: Write, stages_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        project / "pivot.yaml",
        f"""
        vars:
          data_dir: inputs
        stages:
          prep:
            python: {stages_module}.prep
            deps: {{src: "${{data_dir}}/raw.txt"}}
          train:
            function: "{stages_module}:train"
            deps: {{data: prep.txt}}
            outs: {{model: "models/${{data_dir}}.json"}}
            metrics: {{score: m/score.json}}
            plots: {{curve: p/curve.json}}
            params: {{lr: 0.5}}
            mutex: gpu
        """,
    )
    p = load_pipeline(project)
    assert list(p.stages) == ["prep", "train"]
    assert p.get("prep").dep_paths == ["inputs/raw.txt"]
    train = p.get("train")
    assert train.dep_paths == ["prep.txt"]
    assert train.out_paths == ["models/inputs.json", "m/score.json", "p/curve.json"]
    assert train.params is not None and train.params.model_dump()["lr"] == 0.5
    assert train.mutex == ("gpu",)
    assert p.source == (project / "pivot.yaml").resolve()

    write(project / "inputs/raw.txt", "hello")
    monkeypatch.chdir(project)
    run_stage(p.get("prep"), project)
    run_stage(train, project)
    assert (project / "m/score.json").read_text() == '{\n  "lr": 0.5\n}\n'


def test_params_precedence(project: pathlib.Path, write: Write, stages_module: str) -> None:
    write(
        project / "pivot.yaml",
        f"""
        stages:
          train:
            python: {stages_module}.train
            params: {{lr: 0.5, model: from-yaml}}
        """,
    )
    write(project / "params.yaml", "train:\n  lr: 0.9\n")
    params = load_pipeline(project).get("train").params
    assert params is not None
    assert params.model_dump() == {"lr": 0.9, "model": "from-yaml", "sizes": []}


def test_invalid_params_name_stage_and_field(
    project: pathlib.Path, write: Write, stages_module: str
) -> None:
    write(
        project / "pivot.yaml",
        f"stages:\n  train:\n    python: {stages_module}.train\n    params: {{lr: fast}}\n",
    )
    with pytest.raises(ParamsError, match=r"pivot.yaml.*stage 'train'.*'lr'.*from .*pivot.yaml"):
        load_pipeline(project)
    write(project / "pivot.yaml", f"stages:\n  train:\n    python: {stages_module}.train\n")
    write(project / "params.yaml", "train:\n  sizes: [1, x]\n")
    with pytest.raises(ParamsError, match=r"stage 'train'.*'sizes.1'.*params.yaml"):
        load_pipeline(project)


def test_matrix(project: pathlib.Path, write: Write, stages_module: str) -> None:
    write(
        project / "pivot.yaml",
        f"""
        vars: {{root: out}}
        stages:
          train:
            python: {stages_module}.train
            deps: {{data: "data/${{model}}.txt"}}
            outs: {{model: "${{root}}/${{model}}/${{lr}}.json"}}
            metrics: {{score: "${{root}}/${{model}}-${{lr}}-score.json"}}
            plots: {{curve: "${{root}}/${{model}}-${{lr}}-curve.json"}}
            params:
              lr: ${{lr}}
              model: ${{model}}
              sizes: ${{shape.sizes}}
            matrix:
              model: [small, large]
              lr: {{slow: 0.01, fast: 0.1}}
              shape:
                narrow: {{sizes: [1, 2]}}
        """,
    )
    write(
        project / "params.yaml",
        "train:\n  model: overridden\ntrain@large_fast_narrow:\n  lr: 1.5\n",
    )
    p = load_pipeline(project)
    assert list(p.stages) == [
        "train@small_slow_narrow",
        "train@small_fast_narrow",
        "train@large_slow_narrow",
        "train@large_fast_narrow",
    ]
    s = p.get("train@small_fast_narrow")
    assert s.dep_paths == ["data/small.txt"]
    assert s.out_paths[0] == "out/small/0.1.json"
    assert s.params is not None
    # a whole-string ${x} keeps x's type; params.yaml falls back to the base name
    assert s.params.model_dump() == {"lr": 0.1, "model": "overridden", "sizes": [1, 2]}
    big = p.get("train@large_fast_narrow").params
    assert big is not None and big.model_dump() == {"lr": 1.5, "model": "large", "sizes": [1, 2]}


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        ("stages: {{}}\nextra: 1\n", ConfigError, r"pivot.yaml: unknown key 'extra'"),
        ("stages: []\n", ConfigError, r"pivot.yaml: 'stages' must be a mapping"),
        (
            "stages:\n  t:\n    python: {m}.train\n    dpes: {{}}\n",
            ConfigError,
            r"pivot.yaml: stage 't': unknown key 'dpes'",
        ),
        ("stages:\n  t:\n    deps: {{}}\n", ConfigError, r"stage 't': missing 'python"),
        (
            "stages:\n  t:\n    python: {m}.nope\n",
            ConfigError,
            r"stage 't': .* no attribute 'nope'",
        ),
        (
            "stages:\n  t:\n    python: nonexistent_mod_q.f\n",
            DiscoveryError,
            r"pivot.yaml: stage 't': cannot import 'nonexistent_mod_q'",
        ),
        (
            "stages:\n  t:\n    python: {m}.train\n    deps: {{data: '${{nope}}'}}\n",
            ConfigError,
            r"stage 't': unknown variable '\$\{nope\}'",
        ),
        (
            "stages:\n  t:\n    python: {m}.train\n    deps: {{nope: x}}\n",
            StageDefinitionError,
            r"pivot.yaml: stage 't'.*'nope'",
        ),
        (
            "stages:\n  t:\n    python: {m}.train\n    metrics: {{model: x.json}}\n",
            ConfigError,
            r"stage 't': metrics 'model'.*kind 'out'",
        ),
        (
            "stages:\n  t:\n    python: {m}.train\n    matrix: {{a: []}}\n",
            ConfigError,
            r"stage 't': matrix 'a' has no values",
        ),
        (
            "stages:\n  t:\n    python: {m}.train\n    matrix: {{a: [[1]]}}\n",
            ConfigError,
            r"stage 't': matrix 'a'.*scalars",
        ),
        (
            "stages:\n  t:\n    python: {m}.train\n    matrix: {{a: ['x/y']}}\n",
            StageDefinitionError,
            r"invalid stage name 't@x/y'",
        ),
        (
            "stages:\n  t:\n    python: {m}.prep\n",
            StageDefinitionError,
            r"pivot.yaml: stage 't'.*PlaceholderDep",
        ),
        (
            "stages:\n  a: &x {{python: {m}.prep}}\n  b: *x\n",
            ConfigError,
            r"pivot.yaml: line 2: .*anchor",
        ),
        (
            "stages:\n  t:\n    python: {m}.prep\n    deps: {{src: x}}\n    params: {{a: 1}}\n",
            StageDefinitionError,
            r"stage 't'.*no StageParams",
        ),
    ],
)
def test_config_errors(
    project: pathlib.Path, write: Write, stages_module: str, body: str, error: type, match: str
) -> None:
    write(project / "pivot.yaml", body.format(m=stages_module))
    with pytest.raises(error, match=match):
        load_pipeline(project)


def test_duplicate_matrix_names(project: pathlib.Path, write: Write, stages_module: str) -> None:
    write(
        project / "pivot.yaml",
        f"stages:\n  t:\n    python: {stages_module}.train\n    matrix:\n      a: [x_y, x]\n      b: [z, y_z]\n",
    )
    with pytest.raises(Exception, match=r"duplicate stage name 't@x_y_z'"):
        load_pipeline(project)
