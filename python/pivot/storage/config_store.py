"""Editing `.pivot/config.yaml` / `.pivot/config.local` (for `pivot config`).

A change is validated with the same checks as loading (`pivot.config.validate_file_data`)
before the file is rewritten with the durable-write helper. The file is re-serialised with a
safe YAML dumper: the comment block at the top of the file (what `pivot init` writes) is kept,
other comments are lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pivot.config import CONFIG_FILE, LOCAL_CONFIG_FILE, known_keys, validate_file_data
from pivot.exceptions import ConfigError
from pivot.storage.files import write_atomic


def config_path(pivot_dir: Path, local: bool) -> Path:
    return pivot_dir / (LOCAL_CONFIG_FILE if local else CONFIG_FILE)


def split_key(key: str) -> tuple[str, str]:
    """`cache.dir` -> ("cache", "dir"); ConfigError for a key pivot does not know."""
    if key not in known_keys():
        raise ConfigError(f"unknown config key '{key}' (known: {', '.join(known_keys())})")
    section, name = key.split(".", 1)
    return section, name


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
    """The dotted keys a file sets, with their values."""
    out: dict[str, Any] = {}
    for section, body in read_file(path).items():
        if isinstance(body, dict):
            for key, value in body.items():
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


def _write(path: Path, data: dict[str, Any]) -> None:
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
    section, name = split_key(key)
    data = read_file(path)
    body = data.get(section)
    if not isinstance(body, dict):
        body = {}
    body[name] = value
    data[section] = body
    _write(path, data)


def unset_value(path: Path, key: str) -> bool:
    """Remove dotted `key` from the file; False when it was not set there."""
    section, name = split_key(key)
    data = read_file(path)
    body = data.get(section)
    if not isinstance(body, dict) or name not in body:
        return False
    del body[name]
    if not body:
        del data[section]
    _write(path, data)
    return True
