"""Editing `.pivot/config.yaml` / `.pivot/config.local` (for `pivot config`).

A change is validated with the same checks as loading (`pivot.config.validate_file_data`)
before the file is rewritten with the durable-write helper. The file is re-serialised with a
safe YAML dumper: the comment block at the top of the file (what `pivot init` writes) is kept,
other comments are lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pivot.config import (
    CONFIG_FILE,
    LOCAL_CONFIG_FILE,
    REMOTE_KEYS,
    REMOTE_NAME,
    known_keys,
    validate_file_data,
)
from pivot.exceptions import ConfigError
from pivot.storage.files import write_atomic


def config_path(pivot_dir: Path, local: bool) -> Path:
    return pivot_dir / (LOCAL_CONFIG_FILE if local else CONFIG_FILE)


def split_key(key: str) -> tuple[str, ...]:
    """`cache.dir` -> ("cache", "dir"), `remote.NAME.url` -> ("remote", "NAME", "url");
    ConfigError for a key pivot does not know."""
    parts = tuple(key.split("."))
    if key in known_keys():
        return parts
    if len(parts) >= 3 and parts[0] == "remote" and parts[-1] in REMOTE_KEYS:
        name = ".".join(parts[1:-1])  # remote names may contain dots
        if REMOTE_NAME.match(name):
            return ("remote", name, parts[-1])
    known = ", ".join([*known_keys(), "remote.<name>.<key>"])
    raise ConfigError(f"unknown config key '{key}' (known: {known})")


def read_file(path: Path) -> dict[str, Any]:
    """One config file's mapping as written ({} when absent or empty)."""
    if not path.is_file():
        return {}
    from pivot.yamlsafe import load_yaml

    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def file_values(path: Path) -> dict[str, Any]:
    """The dotted keys a file sets, with their values (`remote.<name>.<key>` for remotes)."""
    out: dict[str, Any] = {}
    for section, body in read_file(path).items():
        if not isinstance(body, dict):
            continue
        for key, value in body.items():
            if section == "remote" and isinstance(value, dict):
                for sub, v in value.items():
                    out[f"remote.{key}.{sub}"] = v
            else:
                out[f"{section}.{key}"] = value
    return out


def _header(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError:
        return ""
    head = []
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            break
        head.append(line)
    return "".join(head)


def write_file(path: Path, data: dict[str, Any]) -> None:
    """Validate `data` as the content of the config file at `path`, then write it durably
    (keeping the file's leading comment block)."""
    from pivot.yamlsafe import dump_yaml

    validate_file_data(path, data)
    body = dump_yaml(data) if data else ""
    header = _header(path)
    if header and not header.endswith("\n"):
        header += "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (header + body).encode("utf-8"))


def set_value(path: Path, key: str, value: Any) -> None:
    """Set dotted `key` to `value` in the file at `path` (validated, written atomically)."""
    *parents, name = split_key(key)
    data = read_file(path)
    body = data
    for part in parents:
        child = body.get(part)
        if not isinstance(child, dict):
            child = {}
        body[part] = child
        body = child
    body[name] = value
    write_file(path, data)


def unset_value(path: Path, key: str) -> bool:
    """Remove dotted `key` from the file (and sections it leaves empty); False when it was not
    set there."""
    *parents, name = split_key(key)
    data = read_file(path)
    chain = [data]
    for part in parents:
        child = chain[-1].get(part)
        if not isinstance(child, dict):
            return False
        chain.append(child)
    if name not in chain[-1]:
        return False
    del chain[-1][name]
    for parent, part in zip(reversed(chain[:-1]), reversed(parents), strict=True):
        if parent[part]:
            break
        del parent[part]
    write_file(path, data)
    return True
