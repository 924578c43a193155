"""Several pipelines in one repository: `Pipeline.include` and `--all`."""

from __future__ import annotations

import json
import pathlib
import textwrap

import pytest
from _pivot_helpers import Project, make_project, run_ok

from pivot.exceptions import ValidationError
from pivot.pipeline import Pipeline

STAGE_FILE = """
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def _mark(name: str) -> None:
    with open("runs.log", "a", encoding="utf-8") as f:
        f.write(name + "\\n")


def prep(
    src: Annotated[str, outputs.Dep("{dep}", loaders.Text())],
) -> Annotated[str, outputs.Out("prepped.txt", loaders.Text())]:
    _mark("{tag}.prep")
    return "{tag}:" + src


def {extra}(
    src: Annotated[str, outputs.Dep("prepped.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("{extra}.txt", loaders.Text())]:
    _mark("{tag}.{extra}")
    return src.upper()


pipeline = Pipeline("{tag}")
pipeline.register(prep)
pipeline.register({extra})
"""


def _stage_file(tag: str, extra: str, dep: str) -> str:
    return textwrap.dedent(STAGE_FILE).format(tag=tag, extra=extra, dep=dep)


@pytest.fixture
def multi(tmp_path: pathlib.Path) -> Project:
    """No root pipeline; `a/` and `b/c/` each hold one; both have a stage named `prep`; b's
    stage reads a's output. A virtualenv-like and a hidden directory hold decoys."""
    proj = make_project(tmp_path / "p")
    (proj.root / "pipeline.py").unlink()
    proj.write("a/pipeline.py", _stage_file("a", "train", "../input.txt"))
    proj.write("b/c/pipeline.py", _stage_file("b", "report", "../../a/train.txt"))
    proj.write(".hidden/pipeline.py", "raise SystemExit('must not be loaded')\n")
    proj.write("env/pyvenv.cfg", "home = /usr\n")
    proj.write("env/lib/pipeline.py", "raise SystemExit('must not be loaded')\n")
    return proj


def test_repro_all_runs_every_pipeline_as_one_graph(multi: Project) -> None:
    listed = run_ok(multi.cli("list", "--all")).stdout.split()
    assert listed == ["a.prep", "train", "b.c.prep", "report"]
    dag = json.loads(run_ok(multi.cli("dag", "--all", "--json")).stdout)
    assert {"from": "train", "to": "b.c.prep", "paths": ["a/train.txt"]} in dag["edges"]

    run_ok(multi.cli("repro", "--all"))
    assert multi.runs() == ["a.prep", "a.train", "b.prep", "b.report"]
    assert multi.read("a/prepped.txt") == "a:hello\n"
    assert multi.read("b/c/report.txt") == "B:A:HELLO\n"
    assert multi.lock("a.prep").exists() and multi.lock("b.c.prep").exists()
    assert multi.lock("train").exists()
    assert "All stages up to date" in run_ok(multi.cli("status", "--all")).stdout
    run_ok(multi.cli("verify", "--all"))

    multi.clear_runs()
    multi.write("input.txt", "changed\n")
    run_ok(multi.cli("repro", "--all", "report"))
    assert multi.runs() == ["a.prep", "a.train", "b.prep", "b.report"]
    multi.clear_runs()
    run_ok(multi.cli("run", "--all", "-f", "b.c.prep"))
    assert multi.runs() == ["b.prep"]


def test_all_from_a_subdirectory_only_sees_pipelines_below(multi: Project) -> None:
    import os

    from click.testing import CliRunner

    from pivot.cli import cli

    cwd = os.getcwd()
    os.chdir(multi.root / "a")
    try:
        result = CliRunner().invoke(cli, ["list", "--all"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["prep", "train"]


def test_all_without_any_pipeline(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    (proj.root / "pipeline.py").unlink()
    result = run_ok(proj.cli("repro", "--all"), 1)
    assert "no pivot.yaml, pivot.yml or pipeline.py found in or below" in result.stderr


INCLUDING = """
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline

import {module}


def main(
    src: Annotated[str, outputs.Dep("shared.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("main.txt", loaders.Text())]:
    return "main:" + src


pipeline = Pipeline("main")
pipeline.register(main)
pipeline.include({module}.pipeline, prefix="{prefix}")
"""

SHARED = """
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def {name}(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("shared.txt", loaders.Text())]:
    return "shared:" + src


pipeline = Pipeline("shared")
pipeline.register({name})
"""


def test_include_with_prefix(tmp_path: pathlib.Path) -> None:
    text = INCLUDING.replace("{prefix}", "lib").replace("{module}", "shared_ok")
    proj = make_project(tmp_path / "p", text)
    proj.write("shared_ok.py", textwrap.dedent(SHARED.replace("{name}", "build")))
    assert run_ok(proj.cli("list")).stdout.split() == ["main", "lib.build"]
    run_ok(proj.cli("repro"))
    assert proj.read("main.txt") == "main:shared:hello\n"
    assert proj.lock("lib.build").exists()
    assert "All stages up to date" in run_ok(proj.cli("status")).stdout


def test_include_name_conflict_names_both_pipelines(tmp_path: pathlib.Path) -> None:
    # (module names differ per test: these tests import pipelines in one interpreter)
    text = INCLUDING.replace('prefix="{prefix}"', "prefix=None").replace("{module}", "shared_bad")
    proj = make_project(tmp_path / "p", text)
    proj.write("shared_bad.py", textwrap.dedent(SHARED.replace("{name}", "main")))
    result = run_ok(proj.cli("list"), 1)
    assert "stage 'main' of pipeline 'shared'" in result.stderr
    assert "pipeline 'main'" in result.stderr


def test_include_api(tmp_path: pathlib.Path) -> None:
    a = Pipeline("a", base_dir=tmp_path, project_root=tmp_path)
    with pytest.raises(ValidationError, match="cannot include itself"):
        a.include(a)
