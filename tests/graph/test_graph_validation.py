"""PipelineGraph.build: every validation error names the stages and paths involved."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from pivot import loaders
from pivot.exceptions import (
    CyclicGraphError,
    DependencyNotFoundError,
    UnknownStageError,
    ValidationError,
)
from pivot.graph import PipelineGraph, check_duplicate_names, check_stage_names
from pivot.pipeline.stage import DepSpec, OutSpec, StageInfo


def _func() -> None:
    pass


def stage(name: str, deps: Sequence[str] = (), outs: Sequence[str] = ()) -> StageInfo:
    """A real StageInfo with PathOnly deps/outs (what registration produces)."""
    return StageInfo(
        name=name,
        func=_func,
        deps=tuple(
            DepSpec(arg=f"d{i}", paths=(p,), container="single", reader=loaders.PathOnly())
            for i, p in enumerate(deps)
        ),
        outs=tuple(
            OutSpec(
                key=f"o{i}",
                path=p,
                kind="directory" if p.endswith("/") else "out",
                writer=loaders.PathOnly(),
                cache=True,
            )
            for i, p in enumerate(outs)
        ),
        params_arg=None,
        params=None,
        mutex=(),
    )


def build(
    *stages: StageInfo, root: Path | None = None, check_missing: bool = True
) -> PipelineGraph:
    return PipelineGraph.build(
        {s.name: s for s in stages}, root or Path("/nonexistent"), check_missing=check_missing
    )


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_duplicate_stage_names_in_a_list() -> None:
    with pytest.raises(ValidationError) as exc:
        PipelineGraph.build([stage("a"), stage("b"), stage("a")], Path("/x"))
    assert "duplicate stage name 'a'" in one_line(exc)
    with pytest.raises(ValidationError, match="'b'"):
        check_duplicate_names(["a", "b", "b"])


def test_mapping_key_must_match_stage_name() -> None:
    with pytest.raises(ValidationError, match=r"'x'.*'a'"):
        PipelineGraph.build({"x": stage("a")}, Path("/x"))


def test_two_producers_of_one_path() -> None:
    with pytest.raises(ValidationError) as exc:
        build(stage("a", outs=["data/x.csv"]), stage("b", outs=["data/x.csv"]))
    msg = one_line(exc)
    assert "'a'" in msg and "'b'" in msg and "'data/x.csv'" in msg


def test_file_and_directory_output_on_same_path_conflict() -> None:
    with pytest.raises(ValidationError) as exc:
        build(stage("a", outs=["data"]), stage("b", outs=["data/"]))
    msg = one_line(exc)
    assert "'a'" in msg and "'b'" in msg and "data" in msg


def test_same_stage_declaring_output_twice() -> None:
    with pytest.raises(ValidationError, match="'a' declares output 'x' twice"):
        build(stage("a", outs=["x", "x"]))


@pytest.mark.parametrize("order", ["outer_first", "inner_first"])
def test_output_inside_another_output(order: str) -> None:
    outer, inner = stage("a", outs=["data/"]), stage("b", outs=["data/x.csv"])
    stages = (outer, inner) if order == "outer_first" else (inner, outer)
    with pytest.raises(ValidationError) as exc:
        build(*stages)
    assert one_line(exc) == "stage 'a' output 'data/' contains stage 'b' output 'data/x.csv'"


def test_sibling_prefix_outputs_do_not_overlap() -> None:
    graph = build(
        stage("a", outs=["data/"]), stage("b", outs=["data2/x"]), stage("c", outs=["dat"])
    )
    assert graph.producer_of("data2/x") == "b"
    assert graph.producer_of("data/anything") == "a"
    assert graph.producer_of("dat") == "c"
    assert graph.producer_of("data2") is None


def test_cycle_between_two_stages() -> None:
    with pytest.raises(CyclicGraphError) as exc:
        build(
            stage("a", deps=["b.txt"], outs=["a.txt"]), stage("b", deps=["a.txt"], outs=["b.txt"])
        )
    msg = one_line(exc)
    assert "a -> b -> a" in msg
    assert "'a.txt'" in msg and "'b.txt'" in msg


def test_cycle_of_three_starts_at_first_registered_stage() -> None:
    with pytest.raises(CyclicGraphError) as exc:
        build(
            stage("z", deps=["x"], outs=["z"]),
            stage("start", outs=["s"]),
            stage("x", deps=["y"], outs=["x"]),
            stage("y", deps=["z", "s"], outs=["y"]),
        )
    assert "z -> y -> x -> z" in one_line(exc)


def test_stage_reading_its_own_output_is_a_cycle() -> None:
    with pytest.raises(CyclicGraphError, match="a -> a"):
        build(stage("a", deps=["data/x"], outs=["data/"]))


def test_missing_dependency_with_suggestion_from_outputs() -> None:
    with pytest.raises(DependencyNotFoundError) as exc:
        build(stage("prep", outs=["data/clean.csv"]), stage("train", deps=["data/claen.csv"]))
    msg = one_line(exc)
    assert "'train'" in msg and "'data/claen.csv'" in msg
    assert "did you mean 'data/clean.csv'?" in msg


def test_missing_dependency_with_suggestion_from_files_on_disk(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "input.csv").write_text("x")
    with pytest.raises(DependencyNotFoundError) as exc:
        build(stage("load", deps=["raw/inputs.csv"]), root=tmp_path)
    assert "did you mean 'raw/input.csv'?" in one_line(exc)
    with pytest.raises(DependencyNotFoundError) as exc:
        build(stage("load", deps=["rwa/input.csv"]), root=tmp_path)
    assert "'raw/input.csv'" in one_line(exc)


def test_missing_dependency_without_suggestion(tmp_path: Path) -> None:
    with pytest.raises(DependencyNotFoundError) as exc:
        build(stage("load", deps=["zzz/qqq.bin"]), root=tmp_path)
    msg = one_line(exc)
    assert "no stage produces" in msg and "did you mean" not in msg


def test_existing_dependency_and_check_missing_false(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    (tmp_path / "dir").mkdir()
    build(stage("a", deps=["in.txt", "dir/"]), root=tmp_path)
    graph = build(stage("a", deps=["nope.txt"]), root=tmp_path, check_missing=False)
    assert graph.upstream("a") == []


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("../x", "escapes the project"),
        ("a/../../x", "escapes the project"),
        ("/etc/passwd", "is absolute"),
        ("C:\\data", "is absolute"),
        ("a\x00b", "contains NUL or newline"),
        ("a\nb", "contains NUL or newline"),
        (".pivot/cache/x", "under .pivot/"),
        (".git/HEAD", "under .git/"),
        ("./.git/x", "under .git/"),
        (".", "project root"),
        ("", "non-empty"),
    ],
)
@pytest.mark.parametrize("kind", ["output", "dependency"])
def test_unsafe_paths(path: str, fragment: str, kind: str) -> None:
    s = stage("bad", outs=[path]) if kind == "output" else stage("bad", deps=[path])
    with pytest.raises(ValidationError) as exc:
        build(s, check_missing=False)
    msg = one_line(exc)
    assert "'bad'" in msg and kind in msg and fragment in msg
    if path:
        assert repr(path) in msg


@pytest.mark.parametrize("name", ["a/b", "", "..", ".hidden", "-x", "a b", "x\ny", "é", "a" * 201])
def test_unsafe_stage_names(name: str) -> None:
    with pytest.raises(ValidationError) as exc:
        PipelineGraph.build([stage(name)], Path("/x"))
    assert repr(name) in one_line(exc)


def test_safe_stage_names() -> None:
    build(stage("train@small"), stage("a.b-c_9"))


def test_unknown_stage_suggestions() -> None:
    graph = build(stage("train"), stage("evaluate"), stage("fit@small"), stage("fit@large"))
    with pytest.raises(UnknownStageError) as exc:
        graph.order(["trian"])
    assert one_line(exc) == "unknown stage 'trian' (did you mean 'train'?)"
    with pytest.raises(UnknownStageError) as exc:
        graph.exact(["fit"])
    assert "'fit@small'" in str(exc.value) and "'fit@large'" in str(exc.value)
    with pytest.raises(UnknownStageError) as exc:
        graph.generations(["qqqq"])
    assert "run 'pivot list'" in str(exc.value)
    with pytest.raises(UnknownStageError, match="unknown stages 'x', 'y'"):
        check_stage_names(["train", "x", "y", "x"], ["train"])
