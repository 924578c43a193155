"""`pivot init`, the project layout and config."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pivot import config, project
from pivot.cli import cli
from pivot.exceptions import ConfigError, PivotError, ProjectNotFoundError


def test_init_creates_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".pivot").is_dir()
    assert (tmp_path / ".pivot" / ".gitignore").read_text().split() == [
        "cache/",
        "state/",
        "tmp/",
        "config.local",
    ]
    assert (tmp_path / ".pivot" / "config.yaml").is_file()
    assert result.stdout == ""
    assert "Initialized pivot project" in result.stderr
    assert config.load_config(tmp_path / ".pivot") == config.Config()


def test_init_twice_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ") and "already exists" in lines[0] and "--force" in lines[0]
    assert "Traceback" not in result.stderr


def test_init_force_keeps_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    CliRunner().invoke(cli, ["init"])
    (tmp_path / ".pivot" / "config.yaml").write_text("core:\n  jobs: 3\n")
    (tmp_path / ".pivot" / ".gitignore").unlink()
    result = CliRunner().invoke(cli, ["init", "--force"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".pivot" / ".gitignore").is_file()
    assert project.Project.load(tmp_path).config.jobs == 3


def test_init_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["-q", "init"])
    assert result.exit_code == 0 and result.stderr == ""


def test_init_inside_project_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project.init(tmp_path)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 0
    assert "is inside the pivot project" in result.stderr


def test_find_root_is_top_most(tmp_path: Path) -> None:
    project.init(tmp_path)
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    project.init(tmp_path / "a")
    assert project.find_root(inner) == tmp_path.resolve()
    with pytest.raises(ProjectNotFoundError) as exc:
        project.find_root(Path("/"))
    assert "run 'pivot init'" in str(exc.value)


def test_project_layout(tmp_path: Path) -> None:
    proj = project.init(tmp_path)
    root = tmp_path.resolve()
    assert proj.root == root
    assert proj.pivot_dir == root / ".pivot"
    assert proj.stages_dir == root / ".pivot" / "stages"
    assert proj.cache_dir == root / ".pivot" / "cache"
    assert proj.state_dir == root / ".pivot" / "state"
    assert proj.tmp_dir == root / ".pivot" / "tmp"
    assert proj.locks_dir == root / ".pivot" / "tmp" / "locks"
    assert proj.runs_dir == root / ".pivot" / "cache" / "runs"
    assert proj.relpath(root / "data" / "x.csv") == "data/x.csv"
    with pytest.raises(PivotError, match="outside the project"):
        proj.relpath(tmp_path.parent / "elsewhere")


def test_cache_dir_from_config_and_override(tmp_path: Path) -> None:
    project.init(tmp_path)
    (tmp_path / ".pivot" / "config.yaml").write_text("cache:\n  dir: ../shared-cache\n")
    assert project.Project.load(tmp_path).cache_dir == tmp_path.resolve().parent / "shared-cache"
    assert (
        project.Project.load(tmp_path).runs_dir == tmp_path.resolve().parent / "shared-cache/runs"
    )
    other = tmp_path / "elsewhere"
    assert project.Project.load(tmp_path, cache_dir=other).cache_dir == other


def test_config_local_overrides(tmp_path: Path) -> None:
    project.init(tmp_path)
    pivot_dir = tmp_path / ".pivot"
    (pivot_dir / "config.yaml").write_text(
        "cache:\n  link_modes: [hardlink, copy]\n  dir: c1\ncore:\n  jobs: 2\n"
    )
    (pivot_dir / "config.local").write_text("core:\n  jobs: null\ncache:\n  dir: c2\n")
    cfg = config.load_config(pivot_dir)
    assert cfg == config.Config(cache_dir="c2", link_modes=("hardlink", "copy"), jobs=None)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("cache:\n  link_mode: [copy]\n", "'cache.link_mode'"),
        ("cahce:\n  dir: x\n", "'cahce'"),
        ("cache:\n  link_modes: [symlink]\n", "'cache.link_modes'"),
        ("cache:\n  link_modes: []\n", "'cache.link_modes'"),
        ("cache:\n  link_modes: [copy, copy]\n", "'cache.link_modes'"),
        ("core:\n  jobs: 0\n", "'core.jobs'"),
        ("core:\n  jobs: true\n", "'core.jobs'"),
        ("core:\n  jobs: two\n", "'core.jobs'"),
        ("cache:\n  dir: ''\n", "'cache.dir'"),
        ("cache: [1]\n", "'cache'"),
        ("- 1\n", "mapping"),
        ("a: &x 1\nb: *x\n", "anchors"),
    ],
)
@pytest.mark.parametrize("filename", ["config.yaml", "config.local"])
def test_bad_config_names_file_and_key(
    tmp_path: Path, text: str, fragment: str, filename: str
) -> None:
    project.init(tmp_path)
    (tmp_path / ".pivot" / filename).write_text(text)
    with pytest.raises(ConfigError) as exc:
        config.load_config(tmp_path / ".pivot")
    assert filename in str(exc.value) and fragment in str(exc.value)


def test_link_modes_are_the_enum_and_jobs_resolve_in_order(tmp_path: Path) -> None:
    import os

    from pivot.storage.links import LinkMode

    project.init(tmp_path)
    pivot_dir = tmp_path / ".pivot"
    (pivot_dir / "config.yaml").write_text("cache:\n  link_modes: copy\ncore:\n  jobs: 3\n")
    cfg = config.load_config(pivot_dir)
    assert cfg.link_modes == (LinkMode.COPY,) and isinstance(cfg.link_modes[0], LinkMode)
    assert config.resolve_jobs(5, cfg) == 5  # -j beats the config
    assert config.resolve_jobs(None, cfg) == 3
    assert config.resolve_jobs(None, config.Config()) == (os.cpu_count() or 1)
