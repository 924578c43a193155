"""Remote settings: the `remote:` section and `core.remote` of `.pivot/config.yaml` and
`.pivot/config.local` (docs/remote.md "Configuration").

```yaml
core:
  remote: storage            # the default remote
remote:
  storage:
    url: s3://bucket/prefix  # or a directory (relative paths: from the project root)
    endpoint_url: http://127.0.0.1:8333
    region: us-east-1
    profile: ci
    jobs: 16
    retries: 10              # retries of 5xx/timeouts per request, with backoff
    timeout: 120             # seconds one request may take (connect: 10)
```

`config.local` overrides key by key, per remote. Secrets (`access_key_id`,
`secret_access_key`, `session_token`) are accepted only in `config.local`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivot import config as config_mod
from pivot.exceptions import ConfigError, RemoteNotFoundError
from pivot.storage import config_store

# The keys and their checks live with the other config keys (`pivot.config`).
PLAIN_KEYS = config_mod.REMOTE_PLAIN_KEYS
SECRET_KEYS = config_mod.REMOTE_SECRET_KEYS
ALL_KEYS = config_mod.REMOTE_KEYS


@dataclass(frozen=True)
class RemoteSettings:
    name: str
    url: str
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    jobs: int | None = None
    retries: int | None = None
    timeout: int | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")


def check_name(name: str) -> str:
    if not config_mod.REMOTE_NAME.match(name):
        raise ConfigError(
            f"invalid remote name {name!r}: use letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)"
        )
    return name


def _default(path: Path, data: Mapping[str, Any]) -> tuple[bool, str | None]:
    core = data.get("core")
    if not isinstance(core, Mapping) or "remote" not in core:
        return False, None
    return True, config_mod.remote_default(path, core["remote"])


@dataclass(frozen=True)
class Remotes:
    remotes: dict[str, RemoteSettings]
    default: str | None


def load_remotes(pivot_dir: Path) -> Remotes:
    """Merged remotes of config.yaml then config.local; errors name the file and key."""
    merged: dict[str, dict[str, Any]] = {}
    default: str | None = None
    for fname in (config_mod.CONFIG_FILE, config_mod.LOCAL_CONFIG_FILE):
        path = pivot_dir / fname
        data = config_mod._read(path)
        for name, keys in config_mod.remote_sections(path, data).items():
            merged.setdefault(name, {}).update(keys)
        present, value = _default(path, data)
        if present:
            default = value
    remotes: dict[str, RemoteSettings] = {}
    for name, keys in merged.items():
        if not keys.get("url"):
            raise ConfigError(f"{pivot_dir / config_mod.CONFIG_FILE}: remote '{name}' has no url")
        remotes[name] = RemoteSettings(name=name, **keys)
    return Remotes(remotes=remotes, default=default)


def pick(pivot_dir: Path, name: str | None) -> RemoteSettings:
    """The remote called `name`, or the default one; RemoteNotFoundError otherwise."""
    rs = load_remotes(pivot_dir)
    if name is None:
        if rs.default is None:
            if len(rs.remotes) == 1:
                return next(iter(rs.remotes.values()))
            hint = (
                "no remote configured; add one with 'pivot remote add NAME URL --default'"
                if not rs.remotes
                else "no default remote; pass -r NAME or run 'pivot remote default NAME'"
            )
            raise RemoteNotFoundError(hint)
        name = rs.default
    if name not in rs.remotes:
        known = ", ".join(sorted(rs.remotes)) or "none"
        raise RemoteNotFoundError(f"remote '{name}' is not configured (known: {known})")
    return rs.remotes[name]


# --- editing ---------------------------------------------------------------------------------


def _edit(pivot_dir: Path, local: bool) -> tuple[Path, dict[str, Any]]:
    path = config_store.config_path(pivot_dir, local)
    return path, config_store.read_file(path)


def set_keys(pivot_dir: Path, name: str, values: Mapping[str, Any], *, local: bool) -> None:
    """Set `remote.<name>.<key>` values; secrets always go to config.local."""
    check_name(name)
    groups: dict[bool, dict[str, Any]] = {}
    for key, value in values.items():
        groups.setdefault(local or key in SECRET_KEYS, {})[key] = value
    for to_local, keys in groups.items():
        path, data = _edit(pivot_dir, to_local)
        section = dict(data.get("remote") or {})
        entry = dict(section.get(name) or {})
        for key, value in keys.items():
            if value is None:
                entry.pop(key, None)
                continue
            entry[key] = config_mod.remote_value(path, name, key, value)
        section[name] = entry
        data["remote"] = section
        config_store.write_file(path, data)


def set_default(pivot_dir: Path, name: str | None, *, local: bool) -> None:
    path, data = _edit(pivot_dir, local)
    core = dict(data.get("core") or {})
    if name is None:
        core.pop("remote", None)
    else:
        core["remote"] = check_name(name)
    if core:
        data["core"] = core
    else:
        data.pop("core", None)
    config_store.write_file(path, data)


def remove(pivot_dir: Path, name: str) -> None:
    """Drop the remote from both files (and as the default)."""
    if name not in load_remotes(pivot_dir).remotes:
        raise RemoteNotFoundError(f"remote '{name}' is not configured")
    for local in (False, True):
        path, data = _edit(pivot_dir, local)
        if not path.exists():
            continue
        changed = False
        section = dict(data.get("remote") or {})
        if name in section:
            del section[name]
            changed = True
            if section:
                data["remote"] = section
            else:
                data.pop("remote", None)
        core = dict(data.get("core") or {})
        if core.get("remote") == name:
            del core["remote"]
            changed = True
            if core:
                data["core"] = core
            else:
                data.pop("core", None)
        if changed:
            config_store.write_file(path, data)
