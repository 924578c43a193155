"""Pipeline.register: annotations -> StageInfo, with errors naming stage and field."""

from __future__ import annotations

import pathlib
from typing import Annotated, TypedDict

import pytest

from pivot import loaders, outputs
from pivot.exceptions import ParamsError, StageDefinitionError, UnknownStageError, ValidationError
from pivot.pipeline import DepSpec, OutSpec, Pipeline
from pivot.stage_def import StageParams


class TrainParams(StageParams):
    lr: float = 0.01
    epochs: int = 3


class TrainOutputs(TypedDict):
    model: Annotated[pathlib.Path, outputs.Out("models/model.pkl", loaders.PathOnly())]
    metrics: Annotated[dict, outputs.Metric("metrics/train.json")]
    plot: Annotated[list, outputs.Plot("plots/loss.json", loaders.JSON(), x="step", y="loss")]
    shards: Annotated[dict, outputs.DirectoryOut("shards/", loaders.Text())]


def train(
    params: TrainParams,
    data: Annotated[pathlib.Path, outputs.Dep("data/clean.csv", loaders.PathOnly())],
    extra: Annotated[list[str], outputs.Dep(["a.txt", "./b/../b.txt"], loaders.Text())],
    pair: Annotated[tuple[str, ...], outputs.Dep(("c.txt", "d.txt"), loaders.Text())],
    verbose: bool = False,
) -> TrainOutputs:
    raise AssertionError


def single(
    src: Annotated[str, outputs.Dep("in.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("out.txt", loaders.Text(), cache=False)]:
    return src


def no_outputs() -> None:
    pass


def unannotated_return(x: Annotated[str, outputs.Dep("in.txt", loaders.Text())]) -> dict:  # type: ignore[type-arg]
    return {}


def placeholder(
    src: Annotated[str, outputs.PlaceholderDep(loaders.Text())],
) -> Annotated[str, outputs.Out("p.txt", loaders.Text())]:
    return src


class IncOutputs(TypedDict):
    cache: Annotated[dict, outputs.IncrementalOut("cache.json", loaders.JSON())]


def incremental(
    previous: Annotated[dict, outputs.IncrementalOut("cache.json", loaders.JSON())],
) -> IncOutputs:
    return {"cache": previous}


def incremental_unpaired(
    previous: Annotated[dict, outputs.IncrementalOut("cache.json", loaders.JSON())],
) -> None:
    pass


def bare_arg(x: int) -> None:
    pass


def out_on_arg(x: Annotated[str, outputs.Out("o.txt", loaders.Text())]) -> None:
    pass


def dep_in_return() -> Annotated[str, outputs.Dep("o.txt", loaders.Text())]:
    return ""


def writer_as_reader(
    x: Annotated[str, outputs.Dep("o.txt", loaders.MatplotlibFigure())],  # type: ignore[arg-type]
) -> None:
    pass


class NoMarker(TypedDict):
    thing: dict


def typed_dict_without_marker() -> NoMarker:
    return {"thing": {}}


def directory_without_slash() -> Annotated[dict, outputs.DirectoryOut("shards", loaders.Text())]:
    return {}


def nul_path() -> Annotated[str, outputs.Out("a\0b", loaders.Text())]:
    return ""


def make_nested():  # type: ignore[no-untyped-def]
    def nested() -> None:
        pass

    return nested


def pipe(tmp_path: pathlib.Path, sub: str = "") -> Pipeline:
    (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    return Pipeline("t", base_dir=tmp_path / sub, project_root=tmp_path)


def test_typed_dict_stage(tmp_path: pathlib.Path) -> None:
    p = pipe(tmp_path)
    p.register(train)
    info = p.get("train")
    assert info.name == "train" and info.func is train
    assert info.params_arg == "params" and info.params == TrainParams()
    assert info.deps == (
        DepSpec("data", ("data/clean.csv",), "single", loaders.PathOnly()),
        DepSpec("extra", ("a.txt", "b.txt"), "list", loaders.Text()),
        DepSpec("pair", ("c.txt", "d.txt"), "tuple", loaders.Text()),
    )
    assert info.dep_paths == ["data/clean.csv", "a.txt", "b.txt", "c.txt", "d.txt"]
    kinds = {o.key: (o.path, o.kind, o.cache) for o in info.outs}
    assert kinds == {
        "model": ("models/model.pkl", "out", True),
        "metrics": ("metrics/train.json", "metric", False),
        "plot": ("plots/loss.json", "plot", True),
        "shards": ("shards/", "directory", True),
    }
    assert info.outs[2].plot == {"x": "step", "y": "loss"}
    assert info.out_paths == [
        "models/model.pkl",
        "metrics/train.json",
        "plots/loss.json",
        "shards/",
    ]
    assert info.mutex == ()


def test_describe_is_json_ready_and_stable(tmp_path: pathlib.Path) -> None:
    import json

    p = pipe(tmp_path)
    p.register(train, mutex=["gpu"])
    d = p.get("train").describe()
    assert d["name"] == "train"
    assert d["deps"][0] == "data/clean.csv"
    assert d["outs"][3] == {"path": "shards/", "key": "shards", "kind": "directory", "cache": True}
    assert d["params"] == {"lr": 0.01, "epochs": 3}
    assert d["mutex"] == ["gpu"]
    assert json.dumps(d) == json.dumps(p.get("train").describe())


def test_single_and_none_returns(tmp_path: pathlib.Path) -> None:
    p = pipe(tmp_path)
    p.register(single, name="one")
    p.register(no_outputs)
    assert p.get("one").outs == (OutSpec("return", "out.txt", "out", loaders.Text(), False),)
    assert p.get("no_outputs").outs == () and p.get("no_outputs").deps == ()
    assert list(p.stages) == ["one", "no_outputs"]


def test_paths_relative_to_pipeline_dir(tmp_path: pathlib.Path) -> None:
    p = pipe(tmp_path, "sub/dir")
    p.register(train)
    info = p.get("train")
    assert info.deps[0].paths == ("sub/dir/data/clean.csv",)
    assert info.out_paths[3] == "sub/dir/shards/"
    p.register(
        single,
        dep_path_overrides={"src": "../../top.txt"},
        out_path_overrides={"return": "../x/./o.txt"},
    )
    assert p.get("single").dep_paths == ["top.txt"]
    assert p.get("single").out_paths == ["sub/x/o.txt"]
    # escapes are kept (lexically normalised) for the graph to report
    p.register(no_outputs)
    p2 = pipe(tmp_path)
    p2.register(single, dep_path_overrides={"src": "../outside.txt"})
    assert p2.get("single").dep_paths == ["../outside.txt"]


def test_overrides(tmp_path: pathlib.Path) -> None:
    p = pipe(tmp_path)
    p.register(
        train,
        name="train2",
        dep_path_overrides={"data": "other.csv", "extra": ["e1", "e2", "e3"]},
        out_path_overrides={"shards": "s2/", "metrics": "m.json"},
        mutex="gpu",
    )
    info = p.get("train2")
    assert info.deps[0].paths == ("other.csv",)
    assert info.deps[1].paths == ("e1", "e2", "e3") and info.deps[1].container == "list"
    assert "s2/" in info.out_paths and "m.json" in info.out_paths
    assert info.mutex == ("gpu",)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dep_path_overrides": {"nope": "x"}}, r"stage 'train'.*dep_path_overrides.*'nope'"),
        ({"out_path_overrides": {"nope": "x"}}, r"stage 'train'.*out_path_overrides.*'nope'"),
        ({"dep_path_overrides": {"data": ["x", "y"]}}, r"stage 'train'.*'data'.*single path"),
        ({"dep_path_overrides": {"extra": "x"}}, r"stage 'train'.*'extra'.*list of paths"),
        ({"dep_path_overrides": {"extra": []}}, r"stage 'train'.*'extra'.*empty"),
        ({"out_path_overrides": {"shards": "noslash"}}, r"stage 'train'.*'shards'.*end with '/'"),
        ({"dep_path_overrides": {"data": "a\nb"}}, r"stage 'train'.*'data'.*newline"),
        ({"dep_path_overrides": {"data": 5}}, r"stage 'train'.*'data'.*string"),
        ({"mutex": [""]}, r"stage 'train'.*mutex"),
    ],
)
def test_override_errors(tmp_path: pathlib.Path, kwargs: dict, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(StageDefinitionError, match=match):
        pipe(tmp_path).register(train, **kwargs)


def test_placeholder_dep(tmp_path: pathlib.Path) -> None:
    p = pipe(tmp_path)
    with pytest.raises(StageDefinitionError, match=r"stage 'placeholder'.*PlaceholderDep.*'src'"):
        p.register(placeholder)
    p.register(placeholder, dep_path_overrides={"src": "in/x.txt"})
    assert p.get("placeholder").deps[0] == DepSpec("src", ("in/x.txt",), "single", loaders.Text())
    p.register(placeholder, name="many", dep_path_overrides={"src": ("a", "b")})
    assert p.get("many").deps[0].container == "tuple"


def test_incremental(tmp_path: pathlib.Path) -> None:
    p = pipe(tmp_path)
    p.register(incremental)
    info = p.get("incremental")
    assert info.deps[0].incremental and info.dep_paths == []
    assert info.outs[0].kind == "incremental" and info.out_paths == ["cache.json"]
    with pytest.raises(StageDefinitionError, match=r"stage 'incremental_unpaired'.*'previous'"):
        p.register(incremental_unpaired)
    with pytest.raises(StageDefinitionError, match=r"stage 'x'.*'previous'.*same path"):
        p.register(incremental, name="x", out_path_overrides={"cache": "other.json"})


@pytest.mark.parametrize(
    ("func", "match"),
    [
        (bare_arg, r"stage 'bare_arg'.*argument 'x'"),
        (out_on_arg, r"stage 'out_on_arg'.*argument 'x'.*return annotation"),
        (dep_in_return, r"stage 'dep_in_return'.*output 'return'"),
        (unannotated_return, r"stage 'unannotated_return'.*return annotation"),
        (writer_as_reader, r"stage 'writer_as_reader'.*argument 'x'.*Reader"),
        (typed_dict_without_marker, r"stage 'typed_dict_without_marker'.*output 'thing'"),
        (directory_without_slash, r"stage 'directory_without_slash'.*output 'return'.*'/'"),
        (nul_path, r"stage 'nul_path'.*output 'return'.*NUL"),
        (lambda: None, r"stage '<lambda>'|invalid stage name"),
        (make_nested(), r"stage 'nested'.*nested function.*module level"),
        (print, r"not a function"),
    ],
)
def test_definition_errors(tmp_path: pathlib.Path, func: object, match: str) -> None:
    with pytest.raises(StageDefinitionError, match=match):
        pipe(tmp_path).register(func)  # type: ignore[arg-type]


def test_lambda_with_a_name_is_rejected(tmp_path: pathlib.Path) -> None:
    with pytest.raises(StageDefinitionError, match=r"stage 'x'.*lambda"):
        pipe(tmp_path).register(lambda: None, name="x")


@pytest.mark.parametrize(
    "name", ["a/b", "", ".hidden", "-x", "a b", "x\ny", "é", "a" * 201, "a\\b"]
)
def test_unsafe_stage_names(tmp_path: pathlib.Path, name: str) -> None:
    with pytest.raises(StageDefinitionError, match="invalid stage name"):
        pipe(tmp_path).register(no_outputs, name=name)


def test_safe_stage_names(tmp_path: pathlib.Path) -> None:
    p = pipe(tmp_path)
    for name in ["train@small", "a.b-c_9", "X", "_private"]:
        p.register(no_outputs, name=name)
    assert list(p.stages) == ["train@small", "a.b-c_9", "X", "_private"]


def test_duplicate_and_unknown_stage(tmp_path: pathlib.Path) -> None:
    p = pipe(tmp_path)
    p.register(no_outputs, name="train")
    with pytest.raises(ValidationError, match="duplicate stage name 'train'"):
        p.register(no_outputs, name="train")
    with pytest.raises(UnknownStageError, match=r"'trian'.*did you mean 'train'"):
        p.get("trian")


def test_params_argument_override(tmp_path: pathlib.Path) -> None:
    class Bigger(TrainParams):
        depth: int = 2

    p = pipe(tmp_path)
    p.register(train, name="a", params=TrainParams(lr=0.5))
    p.register(train, name="b", params=Bigger)
    assert p.get("a").params == TrainParams(lr=0.5, epochs=3)
    assert p.get("b").params == Bigger()
    with pytest.raises(StageDefinitionError, match=r"stage 'c'.*TrainParams"):
        p.register(train, name="c", params=StageParams())
    with pytest.raises(StageDefinitionError, match=r"stage 'no_outputs'.*no StageParams"):
        p.register(no_outputs, params=TrainParams())


def test_params_yaml_precedence_and_errors(tmp_path: pathlib.Path) -> None:
    (tmp_path / "params.yaml").write_text(
        "train:\n  lr: 0.2\nfit:\n  epochs: 7\nfit@big:\n  lr: 0.9\n"
    )
    p = pipe(tmp_path)
    p.register(train, params=TrainParams(lr=0.5, epochs=5))
    assert p.get("train").params == TrainParams(lr=0.2, epochs=5)
    p.register(train, name="fit@small")  # falls back to the base name
    p.register(train, name="fit@big")  # its own section wins, no merge with the base
    assert p.get("fit@small").params == TrainParams(epochs=7)
    assert p.get("fit@big").params == TrainParams(lr=0.9)
    (tmp_path / "params.yaml").write_text("bad:\n  epochs: many\n")
    with pytest.raises(ParamsError, match=r"stage 'bad'.*'epochs'.*params.yaml"):
        p.register(train, name="bad")
    (tmp_path / "params.yaml").write_text("bad2:\n  typo: 1\n")
    with pytest.raises(ParamsError, match=r"stage 'bad2'.*'typo'"):
        p.register(train, name="bad2")


def test_stage_params_model_is_strict() -> None:
    with pytest.raises(Exception, match="frozen"):
        TrainParams().lr = 3  # type: ignore[misc]
    with pytest.raises(Exception, match="Extra inputs"):
        TrainParams(nope=1)  # type: ignore[call-arg]
