"""The pipeline DAG: stages and artifacts in one rustworkx graph; validation and orders.

Dependencies are matched to producers by path *components* through a trie of outputs, so
building is linear in the number of paths (no pairwise prefix scans) and `data` never matches
`data2/x`. A dependency matches a producer when it is the produced path, a file inside a
produced directory, or a directory that contains produced paths.
"""

from __future__ import annotations

import difflib
import os
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import rustworkx as rx

from pivot import naming
from pivot.exceptions import (
    CyclicGraphError,
    DependencyNotFoundError,
    UnknownStageError,
    ValidationError,
)

if TYPE_CHECKING:
    from pivot.pipeline.stage import StageInfo

_MAX_SUGGESTION_CANDIDATES = 2000


@dataclass(frozen=True)
class Node:
    """A node of the unified graph: a stage (`kind="stage"`) or a path (`kind="artifact"`)."""

    kind: str
    key: str


@dataclass(frozen=True)
class Edge:
    """Stage-level edge: `downstream` reads `paths` (dep, producing output) from `upstream`."""

    upstream: str
    downstream: str
    paths: tuple[tuple[str, str], ...]

    @property
    def out_paths(self) -> list[str]:
        return sorted({out for _dep, out in self.paths})


# --- names ----------------------------------------------------------------------------------
def check_duplicate_names(names: Iterable[str]) -> None:
    """Raise on the first stage name seen twice."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValidationError(f"duplicate stage name {name!r}")
        seen.add(name)


def suggest_stages(name: str, known: Sequence[str]) -> list[str]:
    """Close matches for a mistyped stage name (matrix variants of a base name first)."""
    variants = [k for k in known if k.startswith(name + "@")]
    # Matrix group names (`train` for `train@…`) select every variant, so they are candidates.
    groups = [k.split("@", 1)[0] for k in known if "@" in k]
    candidates = list(dict.fromkeys([*known, *groups]))
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    return list(dict.fromkeys([*variants[:3], *close]))[:3]


def check_stage_names(requested: Iterable[str], known: Sequence[str]) -> None:
    """UnknownStageError naming every unknown stage, with "did you mean" suggestions."""
    known_set = set(known)
    unknown = list(dict.fromkeys(r for r in requested if r not in known_set))
    if not unknown:
        return
    parts: list[str] = []
    any_suggestion = False
    for name in unknown:
        hints = suggest_stages(name, known)
        any_suggestion = any_suggestion or bool(hints)
        hint = f" (did you mean {' or '.join(repr(h) for h in hints)}?)" if hints else ""
        parts.append(f"{name!r}{hint}")
    noun = "stage" if len(unknown) == 1 else "stages"
    tail = "" if any_suggestion else "; run 'pivot list' to see the stages"
    raise UnknownStageError(f"unknown {noun} {', '.join(parts)}{tail}")


# --- paths ----------------------------------------------------------------------------------
def normalize_path(stage: str, path: object, what: str) -> tuple[str, tuple[str, ...]]:
    """(display path, components) for a declared path; display keeps a directory's '/'."""
    if not isinstance(path, str) or not path:
        raise ValidationError(f"stage {stage!r}: {what} path must be a non-empty string")
    problem = naming.path_problem(path)
    if problem is not None:
        raise ValidationError(f"stage {stage!r}: {what} {path!r} {problem}")
    norm = posixpath.normpath(path)
    return (norm + "/" if path.endswith("/") else norm), tuple(norm.split("/"))


class _Trie:
    """Outputs indexed by path components; a node holds at most one producer."""

    __slots__ = ("children", "out")

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.out: tuple[str, str] | None = None  # (stage, display path)

    def first_out(self) -> tuple[str, str] | None:
        for child in self.children.values():
            found = child.out or child.first_out()
            if found:
                return found
        return None

    def all_outs(self) -> Iterator[tuple[str, str]]:
        for child in self.children.values():
            if child.out:
                yield child.out
            yield from child.all_outs()


def _insert_output(trie: _Trie, comps: tuple[str, ...], stage: str, path: str) -> None:
    node = trie
    for comp in comps:
        if node.out is not None:
            owner, owner_path = node.out
            raise ValidationError(
                f"stage {owner!r} output {owner_path!r} contains stage {stage!r} output {path!r}"
            )
        node = node.children.setdefault(comp, _Trie())
    if node.out is not None:
        owner, owner_path = node.out
        if owner == stage:
            raise ValidationError(f"stage {stage!r} declares output {path!r} twice")
        raise ValidationError(
            f"stages {owner!r} and {stage!r} both produce {path.rstrip('/')!r}"
            f" ({owner_path!r} and {path!r})"
            if owner_path != path
            else f"stages {owner!r} and {stage!r} both produce {path!r}"
        )
    inner = node.first_out()
    if inner is not None:
        raise ValidationError(
            f"stage {stage!r} output {path!r} contains stage {inner[0]!r} output {inner[1]!r}"
        )
    node.out = (stage, path)


def _match_dep(trie: _Trie, comps: tuple[str, ...]) -> list[tuple[str, str]]:
    """Producers of a dependency: exact, enclosing directory, or everything below it."""
    node = trie
    for comp in comps:
        if node.out is not None:  # dependency is inside a produced directory
            return [node.out]
        nxt = node.children.get(comp)
        if nxt is None:
            return []
        node = nxt
    if node.out is not None:
        return [node.out]
    return list(node.all_outs())  # dependency is a directory containing produced paths


def _nearby_paths(root: Path, comps: tuple[str, ...]) -> list[str]:
    """Existing paths near a missing dependency: its nearest existing ancestor, two levels."""
    depth = len(comps) - 1
    while depth > 0 and not (root.joinpath(*comps[:depth])).is_dir():
        depth -= 1
    base = comps[:depth]
    found: list[str] = []
    queue: list[tuple[tuple[str, ...], int]] = [(base, 0)]
    while queue and len(found) < _MAX_SUGGESTION_CANDIDATES:
        rel, level = queue.pop(0)
        try:
            entries = sorted(os.scandir(root.joinpath(*rel)), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if not rel and entry.name in naming.RESERVED_DIRS:
                continue
            path = "/".join((*rel, entry.name))
            found.append(path)
            if level == 0 and entry.is_dir(follow_symlinks=False):
                queue.append(((*rel, entry.name), 1))
    return found


# --- the graph ------------------------------------------------------------------------------
@dataclass
class PipelineGraph:
    """Validated DAG of a pipeline. Build with `PipelineGraph.build`."""

    stages: dict[str, StageInfo]
    graph: rx.PyDiGraph  # unified: Node(stage) and Node(artifact) payloads
    _sg: rx.PyDiGraph  # stage-level projection; node i is the i-th registered stage
    _index: dict[str, int]
    _topo: list[str]
    _pos: dict[str, int]
    _outputs: _Trie = field(repr=False)

    @classmethod
    def build(
        cls,
        stages: Mapping[str, StageInfo] | Sequence[StageInfo],
        project_root: Path,
        check_missing: bool = True,
    ) -> PipelineGraph:
        """Validate and index the stages; raises ValidationError (or a subclass) on problems."""
        if isinstance(stages, Mapping):
            infos = dict(stages)
            for key, info in infos.items():
                if info.name != key:
                    raise ValidationError(f"stage registered as {key!r} is named {info.name!r}")
        else:
            check_duplicate_names(info.name for info in stages)
            infos = {info.name: info for info in stages}
        names = list(infos)
        for name in names:
            naming.check_stage_name(name, ValidationError)

        trie = _Trie()
        outs: dict[str, list[str]] = {}
        for name in names:
            outs[name] = []
            for raw in infos[name].out_paths:
                path, comps = normalize_path(name, raw, "output")
                _insert_output(trie, comps, name, path)
                outs[name].append(path)

        root = Path(project_root)
        deps: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {}
        for name in names:
            deps[name] = []
            for raw in infos[name].dep_paths:
                path, comps = normalize_path(name, raw, "dependency")
                producers = _match_dep(trie, comps)
                if not producers and check_missing and not os.path.lexists(root / path):
                    raise _missing(name, path, comps, trie, root)
                deps[name].append((path, producers))

        sg = rx.PyDiGraph(multigraph=False)
        index = {name: sg.add_node(name) for name in names}
        edge_paths: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for name in names:
            for path, producers in deps[name]:
                for producer, out in producers:
                    edge_paths.setdefault((producer, name), []).append((path, out))
        for (up, down), paths in edge_paths.items():
            sg.add_edge(index[up], index[down], tuple(paths))

        if not rx.is_directed_acyclic_graph(sg):
            raise _cycle_error(sg, index)
        topo = rx.lexicographical_topological_sort(sg, key=lambda n: f"{index[n]:09d}")

        return cls(
            stages=infos,
            graph=_unified(names, outs, deps),
            _sg=sg,
            _index=index,
            _topo=topo,
            _pos={name: i for i, name in enumerate(topo)},
            _outputs=trie,
        )

    # --- queries ----------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Stage names in registration order."""
        return list(self.stages)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __len__(self) -> int:
        return len(self._index)

    def check_names(self, names: Iterable[str]) -> None:
        check_stage_names(names, self.names)

    def order(self, targets: Sequence[str] | None = None) -> list[str]:
        """Targets and all their ancestors (everything when None), topological, deterministic."""
        if targets is None:
            return list(self._topo)
        self.check_names(targets)
        wanted: set[int] = set()
        for name in targets:
            idx = self._index[name]
            wanted.add(idx)
            wanted |= rx.ancestors(self._sg, idx)
        # A subsequence of the global order: for an ancestor-closed set it equals the order
        # Kahn's algorithm with registration-order tie-break would give on the subgraph.
        return self._sorted(self._sg[i] for i in wanted)

    def exact(self, stages: Sequence[str]) -> list[str]:
        """Exactly the named stages in the given order (for `pivot run`); repeats dropped."""
        self.check_names(stages)
        return list(dict.fromkeys(stages))

    def generations(self, stages: Sequence[str] | None = None) -> list[list[str]]:
        """Layers of the induced subgraph; every stage's upstream is in an earlier layer."""
        if stages is None:
            selected = self.names
        else:
            self.check_names(stages)
            selected = list(dict.fromkeys(stages))
        sub = self._sg.subgraph([self._index[s] for s in selected])
        return [
            sorted((sub[i] for i in layer), key=self._index.__getitem__)
            for layer in rx.topological_generations(sub)
        ]

    def upstream(self, stage: str) -> list[str]:
        """Direct producer stages of `stage`'s dependencies, in registration order."""
        self.check_names([stage])
        preds = self._sg.predecessor_indices(self._index[stage])
        return [self._sg[i] for i in sorted(preds)]

    def downstream(self, stage: str) -> list[str]:
        """Stages reading an output of `stage`, in registration order."""
        self.check_names([stage])
        succs = self._sg.successor_indices(self._index[stage])
        return [self._sg[i] for i in sorted(succs)]

    def ancestors(self, stage: str) -> list[str]:
        """Every stage `stage` transitively depends on, in topological order."""
        self.check_names([stage])
        return self._sorted(self._sg[i] for i in rx.ancestors(self._sg, self._index[stage]))

    def descendants(self, stage: str) -> list[str]:
        """Every stage that transitively depends on `stage`, in topological order."""
        self.check_names([stage])
        return self._sorted(self._sg[i] for i in rx.descendants(self._sg, self._index[stage]))

    def producer_of(self, path: str) -> str | None:
        """The stage producing `path` or a directory containing it; None if no stage does."""
        comps = tuple(posixpath.normpath(path).split("/"))
        node = self._outputs
        for comp in comps:
            if node.out is not None:
                return node.out[0]
            nxt = node.children.get(comp)
            if nxt is None:
                return None
            node = nxt
        return node.out[0] if node.out is not None else None

    def outputs(self) -> dict[str, str]:
        """Every declared output path (directories end with '/') -> producing stage."""
        return {path: stage for stage, path in self._outputs.all_outs()}

    def edges(self) -> list[Edge]:
        """Stage-level edges with the paths on them, ordered by downstream then upstream."""
        result = [
            Edge(self._sg[u], self._sg[v], paths) for u, v, paths in self._sg.weighted_edge_list()
        ]
        result.sort(key=lambda e: (self._pos[e.downstream], self._pos[e.upstream]))
        return result

    def _sorted(self, names: Iterable[str]) -> list[str]:
        return sorted(names, key=self._pos.__getitem__)


def _unified(
    names: list[str],
    outs: dict[str, list[str]],
    deps: dict[str, list[tuple[str, list[tuple[str, str]]]]],
) -> rx.PyDiGraph:
    """Stages and artifacts in one graph: dep -> stage -> out, and out -> dep when they differ."""
    g = rx.PyDiGraph(multigraph=False)
    artifacts: dict[str, int] = {}

    def artifact(path: str) -> int:
        idx = artifacts.get(path)
        if idx is None:
            idx = artifacts[path] = g.add_node(Node("artifact", path))
        return idx

    for name in names:
        s = g.add_node(Node("stage", name))
        for path in outs[name]:
            g.add_edge(s, artifact(path), None)
        for path, producers in deps[name]:
            a = artifact(path)
            g.add_edge(a, s, None)
            for _producer, out in producers:
                if out != path:
                    g.add_edge(artifact(out), a, None)
    return g


def _missing(
    stage: str, path: str, comps: tuple[str, ...], trie: _Trie, root: Path
) -> DependencyNotFoundError:
    candidates = [out for _s, out in trie.all_outs()]
    candidates += [c.rstrip("/") for c in candidates if c.endswith("/")]
    candidates += _nearby_paths(root, comps)
    hints = difflib.get_close_matches(path, list(dict.fromkeys(candidates)), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(h) for h in hints)}?" if hints else ""
    return DependencyNotFoundError(
        f"stage {stage!r} depends on {path!r}, which no stage produces and which does not"
        f" exist{hint}"
    )


def _cycle_error(sg: rx.PyDiGraph, index: dict[str, int]) -> CyclicGraphError:
    # Search from each stage in registration order so the reported cycle is deterministic,
    # then rotate it to start at its earliest-registered stage.
    cycle: list[tuple[int, int]] = []
    for start in range(len(index)):
        cycle = list(rx.digraph_find_cycle(sg, start))
        if cycle:
            break
    nodes = [u for u, _v in cycle]
    first = nodes.index(min(nodes))
    nodes = nodes[first:] + nodes[:first]
    names = [sg[i] for i in nodes]
    hops = []
    for u, v in zip(nodes, [*nodes[1:], nodes[0]], strict=True):
        paths = sg.get_edge_data(u, v)
        hops.append(f"{sg[v]} reads {paths[0][0]!r} from {sg[u]}")
    return CyclicGraphError(
        f"cycle in pipeline: {' -> '.join([*names, names[0]])} ({'; '.join(hops)})"
    )
