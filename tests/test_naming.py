"""One rule each for stage names and declared paths: registration, the graph, lock files and
`pivot track` agree."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Annotated

import pytest

from pivot import loaders, outputs
from pivot.engine.context import load_context
from pivot.engine.track import track
from pivot.exceptions import PivotError, StageDefinitionError, UnsafePathError, ValidationError
from pivot.graph import PipelineGraph
from pivot.pipeline import Pipeline
from pivot.pipeline.stage import StageInfo
from pivot.storage.lock import lock_path

NAMES = [
    "train",
    "train@small",
    "a.b-c_9",
    "_private",
    "a" * 200,
    "",
    "a/b",
    "..",
    ".hidden",
    "-x",
    "a b",
    "x\ny",
    "a\0b",
    "é",
    "a" * 201,
    "a\\b",
]


def stage() -> None:
    pass


def escaping() -> Annotated[str, outputs.Out("../x.txt", loaders.Text())]:
    return ""


def reserved() -> Annotated[str, outputs.Out(".pivot/x.txt", loaders.Text())]:
    return ""


def carriage_return() -> Annotated[str, outputs.Out("a\rb.txt", loaders.Text())]:
    return ""


def _accepts(check: Callable[[], object], error: type[Exception]) -> bool:
    try:
        check()
    except error:
        return False
    return True


@pytest.mark.parametrize("name", NAMES)
def test_registration_graph_and_lock_files_agree_on_names(
    tmp_path: pathlib.Path, name: str
) -> None:
    info = StageInfo(name, stage, (), (), None, None, ())
    verdicts = {
        "registration": _accepts(
            lambda: Pipeline("p", base_dir=tmp_path).register(stage, name=name),
            StageDefinitionError,
        ),
        "graph": _accepts(lambda: PipelineGraph.build([info], tmp_path), ValidationError),
        "lock file": _accepts(lambda: lock_path(tmp_path, name), UnsafePathError),
    }
    assert len(set(verdicts.values())) == 1, verdicts
    assert verdicts["registration"] == (name in NAMES[:5])


@pytest.mark.parametrize(
    ("func", "problem"),
    [
        (escaping, "escapes the project"),
        (reserved, "is under .pivot/, which pivot reserves"),
        (carriage_return, "contains NUL or a newline"),
    ],
)
def test_declared_paths_are_checked_once_at_load(
    tmp_path: pathlib.Path, func: Callable[..., object], problem: str
) -> None:
    with pytest.raises((StageDefinitionError, ValidationError), match=problem):
        p = Pipeline("p", base_dir=tmp_path, project_root=tmp_path)
        p.register(func)
        PipelineGraph.build(p.stages, tmp_path)


def test_track_applies_the_declared_path_rule(
    tmp_path: pathlib.Path, make_project: Callable[..., pathlib.Path]
) -> None:
    pipeline = "from pivot.pipeline import Pipeline\npipeline = Pipeline('p')\n"
    root = make_project(tmp_path / "p", {"pipeline.py": pipeline, "a\rb.txt": "x"})
    ctx = load_context(root)
    for path, problem in [
        (root / "a\rb.txt", "contains NUL or newline"),
        (root / ".git" / "config", "is under .git/"),
        (root, "is the project root itself"),
    ]:
        with pytest.raises(UnsafePathError, match=problem):
            track(ctx, [path])
    assert not list(root.glob("*.pvt"))
    with pytest.raises(PivotError, match="no such file"):
        track(ctx, [root / "absent.txt"])
