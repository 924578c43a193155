"""pivot remote add/list/modify/remove/default and the config files they write."""

from __future__ import annotations

import json
import pathlib

import yaml
from _pivot_helpers import make_project, run_ok


def _cfg(root: pathlib.Path, name: str) -> dict:
    path = root / ".pivot" / name
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def test_add_list_modify_remove(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    run_ok(proj.cli("remote", "add", "store", "s3://bucket/prefix", "--default"))
    run_ok(proj.cli("remote", "add", "backup", "/mnt/backup"))
    listed = run_ok(proj.cli("remote", "list")).stdout.splitlines()
    assert listed == ["backup\t/mnt/backup", "store\ts3://bucket/prefix\t(default)"]
    cfg = _cfg(proj.root, "config.yaml")
    assert cfg["core"] == {"remote": "store"}
    assert cfg["remote"]["store"] == {"url": "s3://bucket/prefix"}
    # The commented header `pivot init` wrote is kept.
    assert (proj.root / ".pivot" / "config.yaml").read_text().startswith("# pivot project")

    run_ok(proj.cli("remote", "modify", "store", "endpoint_url", "http://127.0.0.1:9000"))
    run_ok(proj.cli("remote", "modify", "store", "jobs", "8"))
    run_ok(proj.cli("remote", "modify", "store", "secret_access_key", "s3cr3t"))
    run_ok(proj.cli("remote", "modify", "store", "region", "eu-west-1", "--local"))
    cfg = _cfg(proj.root, "config.yaml")
    local = _cfg(proj.root, "config.local")
    assert cfg["remote"]["store"] == {
        "url": "s3://bucket/prefix",
        "endpoint_url": "http://127.0.0.1:9000",
        "jobs": 8,
    }
    assert local["remote"]["store"] == {"secret_access_key": "s3cr3t", "region": "eu-west-1"}
    assert "s3cr3t" not in (proj.root / ".pivot" / "config.yaml").read_text()
    doc = json.loads(run_ok(proj.cli("remote", "list", "--json")).stdout)
    assert doc["default"] == "store"

    run_ok(proj.cli("remote", "remove", "store"))
    assert "store" not in _cfg(proj.root, "config.yaml").get("remote", {})
    assert "core" not in _cfg(proj.root, "config.yaml")
    assert "remote" not in _cfg(proj.root, "config.local")
    assert run_ok(proj.cli("remote", "list")).stdout.splitlines() == ["backup\t/mnt/backup"]


def test_secret_in_committed_config_is_refused(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    proj.write(
        ".pivot/config.yaml",
        "remote:\n  store:\n    url: s3://b/p\n    secret_access_key: leaked\n",
    )
    res = proj.cli("push")
    assert res.exit_code == 1
    assert "'remote.store.secret_access_key' is a secret" in res.stderr
    assert "config.yaml" in res.stderr


def test_bad_remote_config_is_named(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    run_ok(proj.cli("remote", "add", "store", "/x"))
    assert proj.cli("remote", "add", "store", "/y").exit_code == 1
    bad = proj.cli("remote", "add", "web", "https://example.com/x")
    assert bad.exit_code == 1 and "only s3://bucket/prefix and directory paths" in bad.stderr
    proj.write(".pivot/config.yaml", "remote:\n  store:\n    url: /x\n    colour: red\n")
    res = proj.cli("remote", "list")
    assert res.exit_code == 1
    assert "unknown key 'remote.store.colour'" in res.stderr


def test_no_remote_configured(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    res = proj.cli("push")
    assert res.exit_code == 1
    assert "no remote configured" in res.stderr
    run_ok(proj.cli("remote", "add", "a", "/a"))
    run_ok(proj.cli("remote", "add", "b", "/b"))
    res = proj.cli("push")
    assert res.exit_code == 1 and "no default remote" in res.stderr
    res = proj.cli("push", "-r", "c")
    assert res.exit_code == 1 and "remote 'c' is not configured (known: a, b)" in res.stderr
