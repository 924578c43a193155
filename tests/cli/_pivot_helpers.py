"""Real temp projects for the command tests: files on disk, `.pivot/`, a `pipeline.py`.

Used by tests/cli (imported as `_pivot_helpers`, tests/cli is on sys.path under pytest's
default import mode) and by tests/e2e (its conftest puts tests/cli on sys.path).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from click.testing import CliRunner, Result

# A chain prepare -> train -> evaluate plus an independent `other`. Every stage appends its
# name to runs.log (not an output) so tests can tell what executed; a file FAIL_<stage> makes
# that stage raise without changing its code fingerprint.
CHAIN_PIPELINE = """
import pathlib
import shutil
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def _mark(name: str) -> None:
    with open("runs.log", "a", encoding="utf-8") as f:
        f.write(name + "\\n")
    if pathlib.Path("FAIL_" + name).exists():
        print("about to fail in " + name)
        raise RuntimeError("intentional failure in " + name)


def prepare(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("data/prepared.txt", loaders.Text())]:
    _mark("prepare")
    return src.upper()


def train(
    data: Annotated[str, outputs.Dep("data/prepared.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("model.txt", loaders.Text())]:
    _mark("train")
    return "model of " + data


def evaluate(
    model: Annotated[str, outputs.Dep("model.txt", loaders.Text())],
) -> Annotated[dict, outputs.Metric("metrics.json")]:
    _mark("evaluate")
    return {"length": len(model)}


def other(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("other.txt", loaders.Text())]:
    _mark("other")
    return src[::-1]


pipeline = Pipeline("test")
pipeline.register(prepare)
pipeline.register(train)
pipeline.register(evaluate)
pipeline.register(other)
"""

# One stage writing a directory with PathOnly (the stage writes the files itself).
DIR_PIPELINE = """
import pathlib
import shutil
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def make_shards(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("shards/", loaders.PathOnly())]:
    with open("runs.log", "a", encoding="utf-8") as f:
        f.write("make_shards\\n")
    out = pathlib.Path("shards")
    out.mkdir(exist_ok=True)
    for i in range(3):
        (out / f"part-{i}.txt").write_text(f"{i}:{src}", encoding="utf-8")
    return out


pipeline = Pipeline("dirs")
pipeline.register(make_shards)
"""


def git(root: pathlib.Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    proc = subprocess.run(
        ["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True
    )
    return proc.stdout


def pivot_argv() -> list[str]:
    script = pathlib.Path(sys.executable).parent / "pivot"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from pivot.cli import main; main()"]


@dataclass
class Project:
    root: pathlib.Path

    def write(self, rel: str, text: str) -> pathlib.Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def runs(self) -> list[str]:
        """Stages executed since the last `clear_runs()`, in completion order."""
        log = self.root / "runs.log"
        return log.read_text(encoding="utf-8").split() if log.exists() else []

    def clear_runs(self) -> None:
        (self.root / "runs.log").unlink(missing_ok=True)

    def lock(self, stage: str) -> pathlib.Path:
        return self.root / ".pivot" / "stages" / f"{stage}.lock"

    def cache_objects(self) -> list[pathlib.Path]:
        files = self.root / ".pivot" / "cache" / "files"
        return [p for p in files.rglob("*") if p.is_file()] if files.exists() else []

    def run_cache_entries(self) -> list[pathlib.Path]:
        runs = self.root / ".pivot" / "cache" / "runs"
        return [p for p in runs.rglob("*") if p.is_file()] if runs.exists() else []

    def cli(self, *args: str) -> Result:
        """Invoke the click group in-process (cwd must be the project: see `project`)."""
        from pivot.cli import cli

        cwd = os.getcwd()
        os.chdir(self.root)
        try:
            return CliRunner().invoke(cli, list(args), catch_exceptions=True)
        finally:
            os.chdir(cwd)

    def sh(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run the real `pivot` console script in a subprocess."""
        proc = subprocess.run(
            [*pivot_argv(), *args], cwd=self.root, capture_output=True, text=True, timeout=120
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"pivot {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
        return proc


def make_project(
    root: pathlib.Path, pipeline: str = CHAIN_PIPELINE, *, git_init: bool = False
) -> Project:
    from pivot import project as project_mod

    root.mkdir(parents=True, exist_ok=True)
    proj = Project(root)
    proj.write("pipeline.py", textwrap.dedent(pipeline))
    proj.write("input.txt", "hello\n")
    if git_init:
        git(root, "init", "-q")
    project_mod.init(root)
    return proj


def jsonl(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def stderr_of(result: Result) -> str:
    return result.stderr


def run_ok(result: Result, code: int = 0) -> Result:
    """Assert the exit code, showing the output and traceback when it differs."""
    if result.exit_code != code:
        import traceback

        tb = ""
        if result.exc_info is not None and not isinstance(result.exception, SystemExit):
            tb = "".join(traceback.format_exception(*result.exc_info))
        pytest.fail(
            f"exit {result.exit_code} != {code}\nstdout:\n{result.stdout}\n"
            f"stderr:\n{result.stderr}\n{tb}"
        )
    return result


def names(stages: Sequence[str]) -> set[str]:
    return set(stages)


_TEMPLATES: dict[str, pathlib.Path] = {}


def ran_project(
    factory: pytest.TempPathFactory, dest: pathlib.Path, pipeline: str = CHAIN_PIPELINE
) -> Project:
    """A copy of a project on which `pivot repro` already ran (one real run per session).

    Copying keeps tests fast; the copy has new inodes, so pivot re-hashes instead of trusting
    the stat index, which is exactly what a restored CI workspace looks like.
    """
    if pipeline not in _TEMPLATES:
        proj = make_project(factory.mktemp("template") / "p", pipeline)
        run_ok(proj.cli("repro"))
        proj.clear_runs()
        _TEMPLATES[pipeline] = proj.root
    shutil.copytree(_TEMPLATES[pipeline], dest, symlinks=True)
    return Project(dest)
