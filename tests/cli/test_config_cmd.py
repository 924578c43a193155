"""`pivot config`, `pivot completion` and `pivot doctor`."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

import pytest
from _pivot_helpers import DIR_PIPELINE, Project, make_project, pivot_argv, run_ok


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    return make_project(tmp_path / "p", DIR_PIPELINE)


def test_config_set_get_list_unset(proj: Project) -> None:
    assert run_ok(proj.cli("config", "get", "core.jobs")).stdout == "null\n"
    assert run_ok(proj.cli("config", "get", "core.gitignore")).stdout == "true\n"
    run_ok(proj.cli("config", "set", "core.jobs", "3"))
    run_ok(proj.cli("config", "set", "cache.link_modes", "hardlink,copy"))
    run_ok(proj.cli("config", "set", "--local", "cache.dir", "../elsewhere"))
    assert run_ok(proj.cli("config", "get", "core.jobs")).stdout == "3\n"
    assert run_ok(proj.cli("config", "get", "cache.dir")).stdout == "../elsewhere\n"
    assert run_ok(proj.cli("config", "get", "--local", "cache.dir")).stdout == "../elsewhere\n"
    listed = run_ok(proj.cli("config", "list")).stdout.splitlines()
    assert listed == [
        "cache.dir=../elsewhere",
        'cache.link_modes=["hardlink", "copy"]',
        "core.jobs=3",
    ]
    text = proj.read(".pivot/config.yaml")
    assert text.startswith("# pivot project configuration")  # init's comment header kept
    assert "jobs: 3" in text and "elsewhere" not in text
    assert "dir: ../elsewhere" in proj.read(".pivot/config.local")
    # the edited files are what every command reads
    run_ok(proj.cli("repro"))
    assert (proj.root.parent / "elsewhere" / "files").is_dir()

    run_ok(proj.cli("config", "unset", "core.jobs"))
    assert run_ok(proj.cli("config", "get", "core.jobs")).stdout == "null\n"
    assert "core.jobs" not in run_ok(proj.cli("config", "list", "--json")).stdout
    assert json.loads(run_ok(proj.cli("config", "list", "--local", "--json")).stdout) == {
        "cache.dir": "../elsewhere"
    }


def test_config_rejects_bad_keys_and_values(proj: Project) -> None:
    before = proj.read(".pivot/config.yaml")
    bad = run_ok(proj.cli("config", "set", "core.jobs", "0"), 1)
    assert "core.jobs" in bad.stderr and "config.yaml" in bad.stderr
    bad = run_ok(proj.cli("config", "set", "cache.link_modes", "symlink"), 1)
    assert "cache.link_modes" in bad.stderr
    bad = run_ok(proj.cli("config", "set", "core.gitignore", "maybe"), 1)
    assert "core.gitignore" in bad.stderr
    bad = run_ok(proj.cli("config", "get", "core.colour"), 1)
    assert "unknown config key 'core.colour'" in bad.stderr
    assert proj.read(".pivot/config.yaml") == before
    assert "Traceback" not in bad.output


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script(proj: Project, shell: str) -> None:
    script = run_ok(proj.cli("completion", shell)).stdout
    assert "_PIVOT_COMPLETE" in script
    checker = shutil.which(shell)
    if checker is None:
        assert shell != "bash", "bash is needed to check the bash script"
        return
    flag = ["-n"] if shell != "fish" else ["--no-execute"]
    proc = subprocess.run([checker, *flag], input=script, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_completion_completes_commands(proj: Project) -> None:
    env = {
        **os.environ,
        "_PIVOT_COMPLETE": "bash_complete",
        "COMP_WORDS": "pivot con",
        "COMP_CWORD": "1",
    }
    proc = subprocess.run(
        pivot_argv(), cwd=proj.root, env=env, capture_output=True, text=True, timeout=60
    )
    assert "plain,config" in proc.stdout.split()


def test_doctor(proj: Project) -> None:
    doc = json.loads(run_ok(proj.cli("doctor", "--json")).stdout)
    assert doc["project_root"] == str(proj.root.resolve())
    assert doc["cache_dir"] == str(proj.root.resolve() / ".pivot" / "cache")
    assert doc["same_filesystem"] is True
    assert doc["link_modes"]["copy"] == {"works": True, "reason": ""}
    assert doc["link_modes"]["hardlink"]["works"] is True  # one filesystem: link(2) works
    assert doc["effective_link_mode"] in ("reflink", "hardlink")
    assert doc["free_bytes"]["cache"] > 0
    # the probes leave nothing behind
    assert not list((proj.root / ".pivot" / "cache" / "files").iterdir())
    assert not [p for p in (proj.root / ".pivot" / "tmp").iterdir() if p.is_file()]
    text = run_ok(proj.cli("doctor")).stdout
    assert "hardlink: works" in text and "cache and project on one filesystem: yes" in text


def test_doctor_outside_a_project(tmp_path: pathlib.Path) -> None:
    proc = subprocess.run(
        [*pivot_argv(), "doctor"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith("pivot ")
    assert "not a pivot project" in proc.stderr
