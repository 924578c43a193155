"""`--cache-dir` and env `PIVOT_CACHE_DIR` reach every command that touches the cache."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest
from _pivot_helpers import DIR_PIPELINE, Project, make_project, pivot_argv, run_ok


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    return make_project(tmp_path / "p")


def _objects(cache: pathlib.Path) -> list[pathlib.Path]:
    files = cache / "files"
    return [p for p in files.rglob("*") if p.is_file()] if files.exists() else []


def test_cache_dir_option_on_every_command(proj: Project, tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "shared-cache"
    run_ok(proj.cli("repro", "--cache-dir", str(cache)))
    assert _objects(cache)
    assert not proj.cache_objects()  # nothing went to .pivot/cache

    run_ok(proj.cli("verify", "--cache-dir", str(cache)))
    run_ok(proj.cli("status", "--cache-dir", str(cache)))
    missing = run_ok(proj.cli("verify"), 1)
    assert "not in cache" in missing.output

    (proj.root / "model.txt").unlink()
    run_ok(proj.cli("checkout", "--cache-dir", str(cache), "model.txt"))
    assert proj.read("model.txt") == "model of HELLO\n"

    proj.write("data2/raw.txt", "raw\n")
    run_ok(proj.cli("track", "--cache-dir", str(cache), "data2/raw.txt"))
    run_ok(proj.cli("run", "--cache-dir", str(cache), "-f", "other"))
    run_ok(proj.cli("repro", "--no-commit", "--cache-dir", str(cache), "-f", "prepare"))
    run_ok(proj.cli("commit", "--cache-dir", str(cache)))
    run_ok(proj.cli("verify", "--cache-dir", str(cache)))
    assert not proj.cache_objects()


def test_cache_dir_env_var(proj: Project, tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "env-cache"
    env = {**os.environ, "PIVOT_CACHE_DIR": str(cache)}
    argv = pivot_argv()

    def sh(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*argv, *args], cwd=proj.root, env=env, capture_output=True, text=True, timeout=120
        )

    assert sh("repro").returncode == 0
    assert _objects(cache) and not proj.cache_objects()
    assert sh("verify").returncode == 0
    # without the variable the default cache is empty: verify reports the missing objects
    plain = proj.sh("verify")
    assert plain.returncode == 1 and "not in cache" in plain.stdout
    # the option beats the variable
    other = tmp_path / "other-cache"
    beaten = sh("verify", "--cache-dir", str(other))
    assert beaten.returncode == 1 and "not in cache" in beaten.stdout


def test_cache_dir_option_beats_config(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p", DIR_PIPELINE)
    proj.write(".pivot/config.yaml", "cache:\n  dir: ../configured\n")
    run_ok(proj.cli("repro"))
    assert _objects(tmp_path / "configured")
    run_ok(proj.cli("verify"))
    elsewhere = tmp_path / "elsewhere"
    assert "not in cache" in run_ok(proj.cli("verify", "--cache-dir", str(elsewhere)), 1).output
