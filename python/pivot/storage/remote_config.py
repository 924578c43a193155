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
```

`config.local` overrides key by key, per remote. Secrets (`access_key_id`,
`secret_access_key`, `session_token`) are accepted only in `config.local`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivot import config as config_mod
from pivot.exceptions import ConfigError, RemoteNotFoundError

PLAIN_KEYS = frozenset({"url", "endpoint_url", "region", "profile", "jobs", "retries"})
SECRET_KEYS = frozenset({"access_key_id", "secret_access_key", "session_token"})
ALL_KEYS = PLAIN_KEYS | SECRET_KEYS
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class RemoteSettings:
    name: str
    url: str
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    jobs: int | None = None
    retries: int | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid remote name {name!r}: use letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)"
        )
    return name


def _check_value(path: Path, name: str, key: str, value: Any) -> Any:
    where = f"{path}: 'remote.{name}.{key}'"
    if key not in ALL_KEYS:
        raise ConfigError(
            f"{path}: unknown key 'remote.{name}.{key}' (known: {', '.join(sorted(ALL_KEYS))})"
        )
    if key in SECRET_KEYS and path.name != config_mod.LOCAL_CONFIG_FILE:
        raise ConfigError(
            f"{where} is a secret: keep it in .pivot/{config_mod.LOCAL_CONFIG_FILE} "
            "(not committed), e.g. 'pivot remote modify --local'"
        )
    if value is None:
        return None
    if key in ("jobs", "retries"):
        low = 1 if key == "jobs" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            kind = "a positive" if low else "a non-negative"
            raise ConfigError(f"{where} must be {kind} integer, got {value!r}")
        return value
    if not isinstance(value, str) or not value.strip() or "\x00" in value or "\n" in value:
        raise ConfigError(f"{where} must be a non-empty one-line string")
    if key == "url" and value.startswith("s3://") and not value[len("s3://") :].split("/")[0]:
        raise ConfigError(f"{where}: {value!r} has no bucket (expected s3://bucket/prefix)")
    if key == "url" and "://" in value and not value.startswith(("s3://", "file://")):
        raise ConfigError(
            f"{where}: {value!r}: only s3://bucket/prefix and directory paths are supported"
        )
    return value


def _remote_section(path: Path, data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    body = data.get("remote")
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise ConfigError(f"{path}: 'remote' must be a mapping of remote names")
    out: dict[str, dict[str, Any]] = {}
    for name, keys in body.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{path}: invalid remote name {name!r} under 'remote'")
        if keys is None:
            keys = {}
        if not isinstance(keys, Mapping):
            raise ConfigError(f"{path}: 'remote.{name}' must be a mapping")
        out[name] = {str(k): _check_value(path, name, str(k), v) for k, v in keys.items()}
    return out


def _default(path: Path, data: Mapping[str, Any]) -> tuple[bool, str | None]:
    core = data.get("core")
    if not isinstance(core, Mapping) or "remote" not in core:
        return False, None
    value = core["remote"]
    if value is not None and (not isinstance(value, str) or not _NAME.match(value)):
        raise ConfigError(f"{path}: 'core.remote' must be a remote name, got {value!r}")
    return True, value


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
        for name, keys in _remote_section(path, data).items():
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


def _header(path: Path) -> str:
    """The comment block at the top of a config file (kept across rewrites)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def _write(path: Path, data: dict[str, Any]) -> None:
    import yaml

    from pivot import _native

    header = _header(path)
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False) if data else ""
    text = header + ("\n" if header and not header.endswith("\n") else "") + body
    path.parent.mkdir(parents=True, exist_ok=True)
    _native.write_atomic(str(path), text.encode("utf-8"))


def _edit(pivot_dir: Path, local: bool) -> tuple[Path, dict[str, Any]]:
    path = pivot_dir / (config_mod.LOCAL_CONFIG_FILE if local else config_mod.CONFIG_FILE)
    data = dict(config_mod._read(path))
    return path, data


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
            entry[key] = _check_value(
                path.with_name(config_mod.LOCAL_CONFIG_FILE) if key in SECRET_KEYS else path,
                name,
                key,
                value,
            )
        section[name] = entry
        data["remote"] = section
        _write(path, data)


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
    _write(path, data)


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
            _write(path, data)
