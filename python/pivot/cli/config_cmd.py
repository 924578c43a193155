"""pivot config: read and change `.pivot/config.yaml` (or `config.local` with --local)."""

from __future__ import annotations

import json
from typing import Any

import click

from pivot.cli import _common

# dotted key -> attribute of pivot.config.Config (the effective, validated value)
_ATTRS = {
    "cache.dir": "cache_dir",
    "cache.link_modes": "link_modes",
    "core.jobs": "jobs",
    "core.gitignore": "gitignore",
    "core.remote": "remote",
}

_local = click.option(
    "--local", is_flag=True, help="Use .pivot/config.local (machine-local, not committed)."
)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def _parse(key: str, text: str) -> Any:
    from pivot.yamlsafe import parse_yaml

    value = parse_yaml(text, f"value of {key}")
    if key == "cache.link_modes" and isinstance(value, str) and "," in value:
        value = [m.strip() for m in value.split(",") if m.strip()]
    return value


@click.group("config")
def config() -> None:
    """Show or change project settings (dotted keys such as cache.dir, core.jobs,
    remote.NAME.url)."""


@config.command("get")
@click.argument("key")
@_local
def get(key: str, local: bool) -> None:
    """Print KEY's effective value (default included); with --local, config.local's own."""
    from pivot import config as config_mod
    from pivot.exceptions import ConfigError
    from pivot.storage import config_store

    parts = config_store.split_key(key)
    pivot_dir = _common.pivot_dir()
    if local:
        values = config_store.file_values(config_store.config_path(pivot_dir, True))
        if key not in values:
            raise ConfigError(f"{key} is not set in {config_mod.LOCAL_CONFIG_FILE}")
        click.echo(_show(values[key]))
        return
    cfg = config_mod.load_config(pivot_dir)
    if parts[0] == "remote":
        from pivot.storage.remote_config import load_remotes

        _section, name, attr = parts
        remote = load_remotes(pivot_dir).remotes.get(name)
        if remote is None:
            raise ConfigError(f"remote '{name}' is not configured")
        click.echo(_show(getattr(remote, attr)))
        return
    click.echo(_show(getattr(cfg, _ATTRS[key])))


@config.command("set")
@click.argument("key")
@click.argument("value")
@_local
def set_(key: str, value: str, local: bool) -> None:
    """Set KEY to VALUE (parsed as YAML: 4, true, null, [hardlink, copy])."""
    from pivot.storage import config_store

    path = config_store.config_path(_common.pivot_dir(), local)
    config_store.set_value(path, key, _parse(key, value))


@config.command("unset")
@click.argument("key")
@_local
def unset(key: str, local: bool) -> None:
    """Remove KEY from the config file (the default applies again)."""
    from pivot.storage import config_store

    path = config_store.config_path(_common.pivot_dir(), local)
    if not config_store.unset_value(path, key):
        _common.info(f"{key} was not set in {path.name}")


@config.command("list")
@_local
@click.option("--json", "as_json", is_flag=True, help="A JSON object on stdout.")
def list_(local: bool, as_json: bool) -> None:
    """Keys set in config.yaml and config.local (local wins), as KEY=VALUE lines."""
    from pivot import config as config_mod
    from pivot.storage import config_store

    pivot_dir = _common.pivot_dir()
    values: dict[str, Any] = {}
    if not local:
        config_mod.load_config(pivot_dir)  # the same validation as every other command
        values.update(config_store.file_values(config_store.config_path(pivot_dir, False)))
    values.update(config_store.file_values(config_store.config_path(pivot_dir, True)))
    if as_json:
        _common.echo_json(dict(sorted(values.items())))
        return
    for key, value in sorted(values.items()):
        click.echo(f"{key}={_show(value)}")
