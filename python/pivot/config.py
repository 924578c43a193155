"""Project configuration: `.pivot/config.yaml`, overridden key by key by `.pivot/config.local`."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivot.exceptions import ConfigError
from pivot.storage.links import DEFAULT_LINK_MODES, LinkMode, parse_link_modes

CONFIG_FILE = "config.yaml"
LOCAL_CONFIG_FILE = "config.local"

DEFAULT_CONFIG_TEXT = """\
# pivot project configuration (committed to git).
# Machine-local overrides go in .pivot/config.local (ignored by git).
#
# cache:
#   dir: .pivot/cache                       # relative paths are relative to the project root
#   link_modes: [reflink, hardlink, copy]   # tried in order, per operation
# core:
#   jobs: null                              # parallel stages; null = CPU count
#   gitignore: true                         # list cached outputs in .gitignore files
#   executor: local                         # or dask://HOST:PORT (docs/cluster.md)
"""

# section -> allowed keys; anything else is a typo worth reporting.
_KNOWN: dict[str, frozenset[str]] = {
    "cache": frozenset({"dir", "link_modes"}),
    "core": frozenset({"jobs", "gitignore", "remote", "executor"}),
    "gc": frozenset({"run_cache_days", "grace_minutes", "repack_ratio"}),
}
# Sections keyed by names the user chooses: `remote.<name>.<key>` (docs/remote.md
# "Configuration"). Checked by `validate_file_data` (so `pivot config set` and `pivot remote`
# refuse a bad value) and, when a remote is used, by `pivot.storage.remote_config`; other
# commands do not read them.
_OPEN_SECTIONS = frozenset({"remote"})
REMOTE_PLAIN_KEYS = frozenset(
    {"url", "endpoint_url", "region", "profile", "jobs", "retries", "timeout"}
)
# Integer-valued remote keys (`timeout`: seconds per request).
REMOTE_INT_KEYS = ("jobs", "retries", "timeout")
# Accepted only in config.local (never committed).
REMOTE_SECRET_KEYS = frozenset({"access_key_id", "secret_access_key", "session_token"})
REMOTE_KEYS = REMOTE_PLAIN_KEYS | REMOTE_SECRET_KEYS
REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Config:
    """Validated configuration values; `None` means "use the default"."""

    cache_dir: str | None = None
    link_modes: tuple[LinkMode, ...] = DEFAULT_LINK_MODES
    jobs: int | None = None
    gitignore: bool = True
    remote: str | None = None  # core.remote: the default remote's name
    gc_run_cache_days: float = 30.0  # gc.run_cache_days: run-cache entries kept by `pivot gc`
    gc_grace_minutes: float = 60.0  # gc.grace_minutes: objects this young are never collected
    executor: str | None = None  # core.executor: "local" (None) or dask://HOST:PORT
    gc_repack_ratio: float = 0.5  # gc.repack_ratio: `gc --remote` rewrites packs this dead


def resolve_jobs(requested: int | None, config: Config) -> int:
    """How many stages run (or are committed, or restored) at once: `-j` when given, else the
    config's `core.jobs`, else the CPU count."""
    return requested or config.jobs or os.cpu_count() or 1


def _only_comments(path: Path) -> bool:
    try:
        text = path.read_bytes()
    except OSError:
        return False  # let the YAML reader report it, naming the file
    if len(text) > 64 * 1024:
        return False
    return all(not ln.strip() or ln.lstrip().startswith(b"#") for ln in text.splitlines())


def _read(path: Path) -> dict[str, Any]:
    """One config file as a mapping ({} when absent or empty)."""
    if not path.is_file():
        return {}
    if _only_comments(path):
        # The file `pivot init` writes is all comments: skip importing a YAML parser on every
        # command (it is a measurable part of a no-op `pivot repro`).
        return {}
    from pivot.yamlsafe import load_yaml

    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return dict(data)


def _check(path: Path, data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Reject unknown sections/keys; returns {section: {key: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for section, body in data.items():
        if section not in _KNOWN and section not in _OPEN_SECTIONS:
            sections = sorted({*_KNOWN, *_OPEN_SECTIONS})
            raise ConfigError(f"{path}: unknown key '{section}' (known: {', '.join(sections)})")
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise ConfigError(f"{path}: '{section}' must be a mapping")
        if section in _OPEN_SECTIONS:
            continue
        for key in body:
            if key not in _KNOWN[section]:
                known = ", ".join(f"{section}.{k}" for k in sorted(_KNOWN[section]))
                raise ConfigError(f"{path}: unknown key '{section}.{key}' (known: {known})")
        out[str(section)] = dict(body)
    return out


def _cache_dir(path: Path, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: 'cache.dir' must be a non-empty string")
    if "\x00" in value or "\n" in value:
        raise ConfigError(f"{path}: 'cache.dir' contains NUL or newline")
    return value


def _link_modes(path: Path, value: Any) -> tuple[LinkMode, ...]:
    if value is None:
        return DEFAULT_LINK_MODES
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{path}: 'cache.link_modes' must be a non-empty list")
    try:
        return parse_link_modes(value)
    except ValueError as e:
        raise ConfigError(f"{path}: 'cache.link_modes': {e}") from None


def _jobs(path: Path, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{path}: 'core.jobs' must be a positive integer or null, got {value!r}")
    return value


def _bool(key: str) -> Callable[[Path, Any], bool]:
    def check(path: Path, value: Any) -> bool:
        if value is None:
            return True
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: '{key}' must be true or false, got {value!r}")
        return value

    return check


def _non_negative(key: str, default: float) -> Callable[[Path, Any], float]:
    def check(path: Path, value: Any) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ConfigError(f"{path}: '{key}' must be a number >= 0, got {value!r}")
        return float(value)

    return check


def remote_default(path: Path, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not REMOTE_NAME.match(value)):
        raise ConfigError(f"{path}: 'core.remote' must be a remote name, got {value!r}")
    return value


EXECUTOR = re.compile(r"^(local|dask(\+tls)?://[^\s/]+)$")


def executor_value(where: str, value: Any) -> str | None:
    """`local` or `dask://HOST:PORT` / `dask+tls://HOST:PORT` (docs/cluster.md)."""
    if value is None:
        return None
    if not isinstance(value, str) or not EXECUTOR.match(value):
        raise ConfigError(f"{where} must be 'local' or dask://HOST:PORT, got {value!r}")
    return None if value == "local" else value


def _executor(path: Path, value: Any) -> str | None:
    return executor_value(f"{path}: 'core.executor'", value)


def _validators() -> dict[tuple[str, str], Callable[[Path, Any], Any]]:
    return {
        ("cache", "dir"): _cache_dir,
        ("cache", "link_modes"): _link_modes,
        ("core", "jobs"): _jobs,
        ("core", "gitignore"): _bool("core.gitignore"),
        ("core", "remote"): remote_default,
        ("gc", "run_cache_days"): _non_negative("gc.run_cache_days", 30.0),
        ("gc", "grace_minutes"): _non_negative("gc.grace_minutes", 60.0),
        ("core", "executor"): _executor,
        ("gc", "repack_ratio"): _non_negative("gc.repack_ratio", 0.5),
    }


def known_keys() -> list[str]:
    """Every dotted key a config file may set (besides `remote.<name>.<key>`)."""
    return sorted(f"{s}.{k}" for s, keys in _KNOWN.items() for k in keys)


def remote_value(path: Path, name: str, key: str, value: Any) -> Any:
    """Check `remote.<name>.<key>` = `value` as written in the file at `path`."""
    where = f"{path}: 'remote.{name}.{key}'"
    if key not in REMOTE_KEYS:
        raise ConfigError(
            f"{path}: unknown key 'remote.{name}.{key}' (known: {', '.join(sorted(REMOTE_KEYS))})"
        )
    if key in REMOTE_SECRET_KEYS and path.name != LOCAL_CONFIG_FILE:
        raise ConfigError(
            f"{where} is a secret: keep it in .pivot/{LOCAL_CONFIG_FILE} "
            "(not committed), e.g. 'pivot remote modify --local'"
        )
    if value is None:
        return None
    if key in REMOTE_INT_KEYS:
        low = 0 if key == "retries" else 1
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


def remote_sections(path: Path, data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The `remote:` section of one file's content, checked: {name: {key: value}}."""
    body = data.get("remote")
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise ConfigError(f"{path}: 'remote' must be a mapping of remote names")
    out: dict[str, dict[str, Any]] = {}
    for name, keys in body.items():
        if not isinstance(name, str) or not REMOTE_NAME.match(name):
            raise ConfigError(f"{path}: invalid remote name {name!r} under 'remote'")
        if keys is None:
            keys = {}
        if not isinstance(keys, Mapping):
            raise ConfigError(f"{path}: 'remote.{name}' must be a mapping")
        out[name] = {str(k): remote_value(path, name, str(k), v) for k, v in keys.items()}
    return out


def validate_file_data(path: Path, data: Mapping[str, Any]) -> None:
    """The checks `load_config` applies to one file's content, and those of its remotes
    (ConfigError naming file and key)."""
    checks = _validators()
    for section, body in _check(path, data).items():
        for key, value in body.items():
            checks[(section, key)](path, value)
    remote_sections(path, data)


def load_config(pivot_dir: Path) -> Config:
    """Read and validate config.yaml then config.local; errors name the file and the key."""
    values: dict[tuple[str, str], tuple[Path, Any]] = {}
    for name in (CONFIG_FILE, LOCAL_CONFIG_FILE):
        path = pivot_dir / name
        for section, body in _check(path, _read(path)).items():
            for key, value in body.items():
                values[(section, key)] = (path, value)

    def get(section: str, key: str) -> tuple[Path, Any]:
        return values.get((section, key), (pivot_dir / CONFIG_FILE, None))

    return Config(
        cache_dir=_cache_dir(*get("cache", "dir")),
        link_modes=_link_modes(*get("cache", "link_modes")),
        jobs=_jobs(*get("core", "jobs")),
        gitignore=_bool("core.gitignore")(*get("core", "gitignore")),
        remote=remote_default(*get("core", "remote")),
        gc_run_cache_days=_non_negative("gc.run_cache_days", 30.0)(*get("gc", "run_cache_days")),
        gc_grace_minutes=_non_negative("gc.grace_minutes", 60.0)(*get("gc", "grace_minutes")),
        executor=_executor(*get("core", "executor")),
        gc_repack_ratio=_non_negative("gc.repack_ratio", 0.5)(*get("gc", "repack_ratio")),
    )
