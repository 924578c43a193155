"""PipelineGraph matching (path components) and orders (order, exact, generations)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import rustworkx as rx
from test_graph_validation import build, stage

from pivot.graph import Node, PipelineGraph


def test_dep_matches_exact_output() -> None:
    graph = build(stage("a", outs=["x.csv"]), stage("b", deps=["x.csv"]))
    assert graph.upstream("b") == ["a"]
    assert graph.downstream("a") == ["b"]


def test_dep_file_inside_produced_directory() -> None:
    graph = build(stage("a", outs=["data/x/"]), stage("b", deps=["data/x/a.csv"]))
    assert graph.upstream("b") == ["a"]
    assert graph.producer_of("data/x/a.csv") == "a"
    assert graph.producer_of("data/x") == "a"


def test_dep_directory_containing_produced_paths() -> None:
    graph = build(
        stage("a", outs=["data/a.csv"]),
        stage("b", outs=["data/b/"]),
        stage("c", outs=["other/c.csv"]),
        stage("d", deps=["data/"]),
    )
    assert graph.upstream("d") == ["a", "b"]
    assert graph.producer_of("data") is None


def test_components_not_string_prefixes(tmp_path: Path) -> None:
    (tmp_path / "data2").mkdir()
    (tmp_path / "data2" / "x").write_text("")
    (tmp_path / "datafile").write_text("")
    graph = build(
        stage("a", outs=["data/"]),
        stage("b", outs=["dat"]),
        stage("c", deps=["data2/x", "datafile"]),
        stage("d", deps=["dat"]),
        root=tmp_path,
    )
    assert graph.upstream("c") == []
    assert graph.upstream("d") == ["b"]


def test_normalized_paths_match() -> None:
    graph = build(stage("a", outs=["./data//x.csv"]), stage("b", deps=["data/./x.csv"]))
    assert graph.upstream("b") == ["a"]


def test_edges_carry_paths() -> None:
    graph = build(
        stage("a", outs=["data/a.csv", "m.json"]),
        stage("b", deps=["data/", "m.json"], outs=["b"]),
    )
    (edge,) = graph.edges()
    assert (edge.upstream, edge.downstream) == ("a", "b")
    assert set(edge.paths) == {("data/", "data/a.csv"), ("m.json", "m.json")}
    assert edge.out_paths == ["data/a.csv", "m.json"]


def test_unified_graph_has_stages_and_artifacts() -> None:
    graph = build(stage("a", outs=["data/a.csv"]), stage("b", deps=["data/"]))
    g = graph.graph
    nodes = set(g.nodes())
    assert {Node("stage", "a"), Node("stage", "b")} <= nodes
    assert {Node("artifact", "data/a.csv"), Node("artifact", "data/")} <= nodes
    index = {n: i for i, n in zip(g.node_indices(), g.nodes(), strict=True)}
    assert rx.has_path(g, index[Node("stage", "a")], index[Node("stage", "b")])


DIAMOND = (
    stage("report", deps=["eval.json", "other.txt"]),  # registered first, runs last
    stage("prep", outs=["clean.csv"]),
    stage("other", outs=["other.txt"]),
    stage("train", deps=["clean.csv"], outs=["model.pkl"]),
    stage("featurize", deps=["clean.csv"], outs=["feats/"]),
    stage("evaluate", deps=["model.pkl", "feats/"], outs=["eval.json"]),
)


def test_order_whole_pipeline_topological_with_registration_tiebreak() -> None:
    graph = build(*DIAMOND)
    assert graph.order() == ["prep", "other", "train", "featurize", "evaluate", "report"]
    assert graph.names == ["report", "prep", "other", "train", "featurize", "evaluate"]


def test_order_targets_includes_ancestors_only() -> None:
    graph = build(*DIAMOND)
    assert graph.order(["train"]) == ["prep", "train"]
    assert graph.order(["evaluate"]) == ["prep", "train", "featurize", "evaluate"]
    assert graph.order(["other", "train"]) == ["prep", "other", "train"]
    assert graph.order([]) == []


def test_exact_keeps_given_order() -> None:
    graph = build(*DIAMOND)
    assert graph.exact(["evaluate", "prep", "evaluate"]) == ["evaluate", "prep"]


def test_generations_layers() -> None:
    graph = build(*DIAMOND)
    assert graph.generations() == [
        ["prep", "other"],
        ["train", "featurize"],
        ["evaluate"],
        ["report"],
    ]
    # induced subgraph: without featurize, evaluate only waits for train
    assert graph.generations(["evaluate", "train", "prep", "other"]) == [
        ["prep", "other"],
        ["train"],
        ["evaluate"],
    ]


def test_generations_of_unrelated_stages_is_one_layer() -> None:
    graph = build(*DIAMOND)
    assert graph.generations(["report", "prep"]) == [["report", "prep"]]


def test_ancestors_descendants() -> None:
    graph = build(*DIAMOND)
    assert graph.ancestors("evaluate") == ["prep", "train", "featurize"]
    assert graph.descendants("prep") == ["train", "featurize", "evaluate", "report"]
    assert graph.ancestors("prep") == []
    assert graph.upstream("evaluate") == ["train", "featurize"]
    assert graph.downstream("prep") == ["train", "featurize"]


def test_outputs_index() -> None:
    graph = build(*DIAMOND)
    assert graph.outputs()["feats/"] == "featurize"
    assert "report" in graph and "nope" not in graph and len(graph) == 6


_DETERMINISM_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_graph_validation import build, stage
stages = [stage(f"s{{i}}", deps=[f"o{{(i * 7) % 50}}"] if i % 7 else [], outs=[f"o{{i}}"])
          for i in range(50)]
# keep it a DAG: depend only on earlier outputs
stages = [stage(s.name, deps=[d for d in s.dep_paths if int(d[1:]) < int(s.name[1:])],
                outs=s.out_paths) for s in stages]
g = build(*stages)
print(g.order(), g.generations(), [(e.upstream, e.downstream) for e in g.edges()])
"""


def test_determinism_across_processes() -> None:
    tests = str(Path(__file__).parent)
    script = _DETERMINISM_SCRIPT.format(tests=tests)
    outs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(Path(tests).parents[1] / "python")},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


def test_build_is_fast_for_many_stages(tmp_path: Path) -> None:
    n = 2000
    stages = []
    for i in range(n):
        deps = [f"data/s{i - 1}/part.csv", f"data/s{i // 2}/"] if i else ["raw/"]
        stages.append(stage(f"s{i}", deps=deps[: 1 if i < 2 else 2], outs=[f"data/s{i}/"]))
    stages.append(stage("all", deps=["data/"]))
    (tmp_path / "raw").mkdir()
    start = time.perf_counter()
    graph = PipelineGraph.build({s.name: s for s in stages}, tmp_path)
    elapsed = time.perf_counter() - start
    assert len(graph.upstream("all")) == n
    assert graph.order(["s10"]) == [f"s{i}" for i in range(11)]
    assert elapsed < 2.0, elapsed


@pytest.mark.parametrize("targets", [None, ["evaluate"]])
def test_order_is_stable_across_builds(targets: list[str] | None) -> None:
    assert build(*DIAMOND).order(targets) == build(*DIAMOND).order(targets)
