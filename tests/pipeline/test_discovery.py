"""load_pipeline: which file is used, and errors naming the file."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Callable

import pytest
from _pipeline_support import (  # noqa: F401  (fixtures)
    isolate_imports_fixture,
    modname_fixture,
    project_fixture,
    write_fixture,
)

from pivot.exceptions import DiscoveryError, StageDefinitionError
from pivot.pipeline import find_pipeline_file, load_pipeline

Write = Callable[[pathlib.Path, str], pathlib.Path]

PY = """
from pivot.pipeline import Pipeline
import {helper}

pipeline = Pipeline("{name}")
pipeline.register({helper}.stage, name="{name}_stage")
"""

HELPER = """
def stage() -> None:
    pass
"""


def make_py(d: pathlib.Path, name: str, helper: str, write: Write) -> None:
    write(d / "pipeline.py", PY.format(name=name, helper=helper))
    write(d / f"{helper}.py", HELPER)


def test_root_pipeline_py_with_sibling_module(
    project: pathlib.Path, write: Write, modname: str
) -> None:
    make_py(project, "root", modname, write)
    p = load_pipeline(project)
    assert list(p.stages) == ["root_stage"]
    assert p.source == project.resolve() / "pipeline.py"
    assert str(project.resolve()) in sys.path  # kept for workers
    assert p.get("root_stage").func.__module__ == modname


def test_cwd_first_then_root(project: pathlib.Path, write: Write, modname: str) -> None:
    make_py(project, "root", modname, write)
    sub = project / "sub"
    make_py(sub, "sub", modname + "_sub", write)
    assert load_pipeline(project, cwd=sub).name == "sub"
    assert load_pipeline(project, cwd=project / "other").name == "root"  # nothing there: root
    assert load_pipeline(project).name == "root"


def test_sub_pipeline_paths_are_project_relative(project: pathlib.Path, write: Write) -> None:
    write(
        project / "sub" / "pipeline.py",
        """
        from typing import Annotated
        from pivot import loaders, outputs
        from pivot.pipeline import Pipeline

        def s(x: Annotated[str, outputs.Dep("in.txt", loaders.Text())]) -> Annotated[
            str, outputs.Out("../out/o.txt", loaders.Text())
        ]:
            return x

        pipeline = Pipeline("sub")
        pipeline.register(s)
        """,
    )
    info = load_pipeline(project, cwd=project / "sub").get("s")
    assert info.dep_paths == ["sub/in.txt"] and info.out_paths == ["out/o.txt"]
    assert info.func.__module__ == "_pivot_pipeline__sub"


def test_reload_sees_edits(project: pathlib.Path, write: Write, modname: str) -> None:
    make_py(project, "first", modname, write)
    assert load_pipeline(project).name == "first"
    make_py(project, "second", modname, write)
    assert load_pipeline(project).name == "second"


@pytest.mark.parametrize("yaml_name", ["pivot.yaml", "pivot.yml"])
def test_both_kinds_is_an_error(project: pathlib.Path, write: Write, yaml_name: str) -> None:
    write(project / "pipeline.py", "")
    write(project / yaml_name, "stages: {}\n")
    with pytest.raises(DiscoveryError) as exc:
        load_pipeline(project)
    assert yaml_name in str(exc.value) and "pipeline.py" in str(exc.value)


def test_yaml_and_yml_is_an_error(project: pathlib.Path, write: Write) -> None:
    write(project / "pivot.yaml", "stages: {}\n")
    write(project / "pivot.yml", "stages: {}\n")
    with pytest.raises(DiscoveryError, match=r"pivot.yaml and pivot.yml"):
        find_pipeline_file(project)


def test_nothing_found(project: pathlib.Path) -> None:
    with pytest.raises(DiscoveryError, match=r"no pivot\.yaml, pivot\.yml or pipeline\.py"):
        load_pipeline(project)


def test_no_pipeline_variable(project: pathlib.Path, write: Write) -> None:
    write(project / "pipeline.py", "from pivot.pipeline import Pipeline\np = Pipeline('x')\n")
    with pytest.raises(DiscoveryError, match=r"pipeline.py must define a module-level 'pipeline'"):
        load_pipeline(project)
    write(project / "pipeline.py", "pipeline = 3\n")
    with pytest.raises(DiscoveryError, match=r"found int"):
        load_pipeline(project)


def test_import_error_names_file_and_exception(project: pathlib.Path, write: Write) -> None:
    write(project / "pipeline.py", "import definitely_not_a_module_xyz\n")
    with pytest.raises(DiscoveryError) as exc:
        load_pipeline(project)
    msg = str(exc.value)
    assert (
        "pipeline.py" in msg
        and "ModuleNotFoundError" in msg
        and "definitely_not_a_module_xyz" in msg
    )
    assert "\n" not in msg and isinstance(exc.value.__cause__, ModuleNotFoundError)
    write(project / "pipeline.py", "def broken(:\n")
    with pytest.raises(DiscoveryError, match=r"pipeline.py.*SyntaxError"):
        load_pipeline(project)
    write(project / "pipeline.py", "raise RuntimeError('bad setup')\n")
    with pytest.raises(DiscoveryError, match=r"pipeline.py.*RuntimeError: bad setup"):
        load_pipeline(project)
    assert "_pivot_pipeline" not in sys.modules


def test_registration_errors_propagate_with_their_type(project: pathlib.Path, write: Write) -> None:
    write(
        project / "pipeline.py",
        "from pivot.pipeline import Pipeline\n"
        "def f(x: int) -> None: ...\n"
        "pipeline = Pipeline('x')\npipeline.register(f)\n",
    )
    with pytest.raises(StageDefinitionError, match=r"stage 'f'.*argument 'x'"):
        load_pipeline(project)


def test_pipeline_root_defaults_to_top_most_dot_pivot(tmp_path: pathlib.Path) -> None:
    from pivot.pipeline import Pipeline

    (tmp_path / "outer" / ".pivot").mkdir(parents=True)
    (tmp_path / "outer" / "inner" / ".pivot").mkdir(parents=True)
    p = Pipeline("x", base_dir=tmp_path / "outer" / "inner" / "deep")
    assert p.project_root == (tmp_path / "outer").resolve()
