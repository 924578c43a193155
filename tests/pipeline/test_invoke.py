"""run_stage end to end: a generated pipeline.py, real files in, real files out."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import pytest
from _pipeline_support import (  # noqa: F401  (fixtures)
    isolate_imports_fixture,
    modname_fixture,
    project_fixture,
    write_fixture,
)

from pivot.exceptions import DependencyMissingError, ExecutionError, OutputMissingError
from pivot.pipeline import Pipeline, load_pipeline, run_stage

Write = Callable[[pathlib.Path, str], pathlib.Path]

HEADER = """
import pathlib
from typing import Annotated, TypedDict

from pivot import loaders, outputs
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams
"""

PIPELINE = (
    HEADER
    + """
class P(StageParams):
    factor: int = 2


class TrainOutputs(TypedDict):
    model: Annotated[dict, outputs.Out("models/model.pkl", loaders.Pickle())]
    metrics: Annotated[dict, outputs.Metric("metrics/train.json")]
    report: Annotated[str, outputs.Plot("plots/r.yaml", loaders.YAML(), x="a")]
    written: Annotated[pathlib.Path, outputs.Out("written.txt", loaders.PathOnly())]


def train(
    params: P,
    rows: Annotated[list, outputs.Dep("data/rows.jsonl", loaders.JSONL())],
    texts: Annotated[list, outputs.Dep(["a.txt", "b.txt"], loaders.Text())],
    pair: Annotated[tuple, outputs.Dep(("a.txt", "b.txt"), loaders.Text())],
    raw: Annotated[pathlib.Path, outputs.Dep("data/rows.jsonl", loaders.PathOnly())],
) -> TrainOutputs:
    assert isinstance(texts, list) and isinstance(pair, tuple) and isinstance(raw, pathlib.Path)
    pathlib.Path("written.txt").write_text("by the stage")
    return {
        "model": {"n": len(rows) * params.factor},
        "metrics": {"rows": len(rows), "texts": texts, "pair": list(pair), "raw": raw.name},
        "report": {"b": 1, "a": 2},
        "written": pathlib.Path("written.txt"),
    }


def single(
    src: Annotated[str, outputs.Dep("a.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("out/single.txt", loaders.Text())]:
    return src.upper()


def shards(n: Annotated[dict, outputs.Dep("n.json", loaders.JSON())]) -> Annotated[
    dict, outputs.DirectoryOut("shards/", loaders.JSON())
]:
    return {f"part/{i}.json": {"i": i} for i in range(n["n"])}


class IncOut(TypedDict):
    log: Annotated[list, outputs.IncrementalOut("log.jsonl", loaders.JSONL())]


def grow(log: Annotated[list, outputs.IncrementalOut("log.jsonl", loaders.JSONL())]) -> IncOut:
    return {"log": [*log, len(log)]}


def nothing() -> None:
    pathlib.Path("side.txt").write_text("x")


pipeline = Pipeline("inv")
pipeline.register(train)
pipeline.register(single)
pipeline.register(shards)
pipeline.register(grow)
pipeline.register(nothing)
"""
)


@pytest.fixture
def loaded(project: pathlib.Path, write: Write, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    write(project / "pipeline.py", PIPELINE)
    write(project / "data/rows.jsonl", '{"x": 1}\n{"x": 2}\n{"x": 3}\n')
    write(project / "a.txt", "alpha")
    write(project / "b.txt", "beta")
    write(project / "n.json", '{"n": 3}')
    monkeypatch.chdir(project)  # workers run with cwd = project root
    return load_pipeline(project)


def test_typed_dict_outputs_written(loaded: Pipeline, project: pathlib.Path) -> None:
    import pickle

    run_stage(loaded.get("train"), project)
    assert pickle.loads((project / "models/model.pkl").read_bytes()) == {"n": 6}
    metrics = json.loads((project / "metrics/train.json").read_text())
    assert metrics == {
        "rows": 3,
        "texts": ["alpha", "beta"],
        "pair": ["alpha", "beta"],
        "raw": "rows.jsonl",
    }
    assert (project / "plots/r.yaml").read_text() == "a: 2\nb: 1\n"
    assert (project / "written.txt").read_text() == "by the stage"


def test_single_output_and_none(loaded: Pipeline, project: pathlib.Path) -> None:
    run_stage(loaded.get("single"), project)
    assert (project / "out/single.txt").read_text() == "ALPHA"
    run_stage(loaded.get("nothing"), project)
    assert (project / "side.txt").exists()


def test_directory_out(loaded: Pipeline, project: pathlib.Path) -> None:
    run_stage(loaded.get("shards"), project)
    files = sorted(
        p.relative_to(project / "shards").as_posix() for p in (project / "shards").rglob("*.json")
    )
    assert files == ["part/0.json", "part/1.json", "part/2.json"]
    assert json.loads((project / "shards/part/2.json").read_text()) == {"i": 2}


def test_incremental_first_run_gets_empty_then_previous(
    loaded: Pipeline, project: pathlib.Path
) -> None:
    stage = loaded.get("grow")
    run_stage(stage, project)
    assert (project / "log.jsonl").read_text() == "0\n"
    run_stage(stage, project)
    run_stage(stage, project)
    assert (project / "log.jsonl").read_text() == "0\n1\n2\n"


def test_params_yaml_reaches_the_function(
    project: pathlib.Path, write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project / "pipeline.py", PIPELINE)
    write(project / "params.yaml", "train:\n  factor: 10\n")
    write(project / "data/rows.jsonl", '{"x": 1}\n')
    write(project / "a.txt", "a")
    write(project / "b.txt", "b")
    monkeypatch.chdir(project)
    run_stage(load_pipeline(project).get("train"), project)
    import pickle

    assert pickle.loads((project / "models/model.pkl").read_bytes()) == {"n": 10}


def test_missing_dep(loaded: Pipeline, project: pathlib.Path) -> None:
    (project / "a.txt").unlink()
    with pytest.raises(DependencyMissingError, match=r"stage 'single'.*'a.txt'.*'src'"):
        run_stage(loaded.get("single"), project)


def test_unreadable_dep(loaded: Pipeline, project: pathlib.Path) -> None:
    (project / "n.json").write_text("{not json")
    with pytest.raises(ExecutionError, match=r"stage 'shards'.*'n.json'.*argument 'n'"):
        run_stage(loaded.get("shards"), project)


BROKEN = (
    HEADER
    + """
class Two(TypedDict):
    a: Annotated[str, outputs.Out("a.out", loaders.Text())]
    b: Annotated[pathlib.Path, outputs.Out("b.out", loaders.PathOnly())]


def missing_key() -> Two:
    return {"a": "x"}  # type: ignore


def not_written() -> Two:
    return {"a": "x", "b": pathlib.Path("b.out")}


def extra_key() -> Two:
    return {"a": "x", "b": None, "c": 1}  # type: ignore


def not_a_dict() -> Two:
    return "x"  # type: ignore


def returns_none() -> Annotated[str, outputs.Out("n.out", loaders.Text())]:
    return None  # type: ignore


def bad_value() -> Annotated[str, outputs.Out("bad.out", loaders.Text())]:
    return 5  # type: ignore


def raises() -> None:
    raise KeyError("boom")


def make_dir(names: Annotated[list, outputs.Dep("names.json", loaders.JSON())]) -> Annotated[
    dict, outputs.DirectoryOut("d/", loaders.Text())
]:
    return {n: "x" for n in names}


pipeline = Pipeline("broken")
for f in (missing_key, not_written, extra_key, not_a_dict, returns_none, bad_value, raises, make_dir):
    pipeline.register(f)
"""
)


@pytest.fixture
def broken(project: pathlib.Path, write: Write, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    write(project / "pipeline.py", BROKEN)
    monkeypatch.chdir(project)
    return load_pipeline(project)


@pytest.mark.parametrize(
    ("stage", "error", "match"),
    [
        (
            "missing_key",
            OutputMissingError,
            r"stage 'missing_key': output 'b' \(b.out\) is missing",
        ),
        (
            "not_written",
            OutputMissingError,
            r"stage 'not_written': output 'b' \(b.out\) was not created",
        ),
        ("extra_key", ExecutionError, r"stage 'extra_key'.*undeclared.*c"),
        ("not_a_dict", OutputMissingError, r"stage 'not_a_dict' must return a dict.*a, b"),
        ("returns_none", OutputMissingError, r"stage 'returns_none': output 'return' \(n.out\)"),
        ("bad_value", ExecutionError, r"stage 'bad_value'.*'return'.*bad.out.*Text"),
        ("raises", KeyError, "boom"),
    ],
)
def test_output_errors(
    broken: Pipeline, project: pathlib.Path, stage: str, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        run_stage(broken.get(stage), project)


@pytest.mark.parametrize(
    ("names", "match"),
    [
        ([], "empty"),
        (["../escape"], r"'\.\./escape'.*'\.\.'"),
        (["/abs"], "relative"),
        (["a/./b"], r"'\.'"),
        (["a//b"], "empty"),
        (["trailing/"], "empty"),
        (["a\\b"], "backslash"),
        (["a\u0000b"], "NUL"),
        (["a", "a/b"], "inside 'a'"),
    ],
)
def test_directory_out_names_validated(
    broken: Pipeline, project: pathlib.Path, names: list[str], match: str
) -> None:
    (project / "names.json").write_text(json.dumps(names))
    with pytest.raises(
        ExecutionError, match=r"stage 'make_dir': directory output 'return' \(d/\).*" + match
    ):
        run_stage(broken.get("make_dir"), project)
    assert not (project / "escape").exists() and not pathlib.Path("/abs").exists()
