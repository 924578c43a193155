"""Effective stage params: StageParams defaults -> pivot.yaml `params:` -> params.yaml."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot.exceptions import ConfigError, ParamsError, StageDefinitionError
from pivot.pipeline import params_state

if TYPE_CHECKING:
    # pydantic is imported lazily: pipelines without StageParams never load it.
    from pivot.stage_def import StageParams

PARAMS_FILE = "params.yaml"

# params.yaml is read once per (path, size, mtime, ctime, inode, device) in a process, and its
# parsed form is kept in `.pivot/state/params.json` under the same key, so that a no-op run
# need not import PyYAML (~45 ms) at all.
_params_file_cache: dict[Path, tuple[tuple[int, ...], dict[str, Any]]] = {}


def read_params_file(project_root: Path) -> dict[str, Any]:
    """The parsed `params.yaml` at the project root ({} when absent)."""
    path = project_root / PARAMS_FILE
    now = time.time_ns()
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    cached = _params_file_cache.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    state = project_root / ".pivot" / "state"
    data = params_state.load(state, key)
    if data is None:
        from pivot import yamlsafe  # only when there is a file: YAML is costly to import

        data = yamlsafe.load_yaml(path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping of stage name -> params")
        for stage, section in data.items():
            if section is not None and not isinstance(section, dict):
                raise ConfigError(f"{path}: params for stage {stage!r} must be a mapping")
        if max(st.st_mtime_ns, st.st_ctime_ns) < now - params_state.RACY_NS:
            params_state.save(state, key, data)
    _params_file_cache[path] = (key, data)
    return data


def params_file_section(data: Mapping[str, Any], stage_name: str) -> dict[str, Any] | None:
    """The section for `stage_name`; matrix stages `base@variant` fall back to `base`."""
    section = data.get(stage_name)
    if section is None and "@" in stage_name:
        section = data.get(stage_name.split("@", 1)[0])
    return dict(section) if section else None


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def resolve_params_class(
    stage_name: str,
    annotated: type[StageParams] | None,
    given: StageParams | type[StageParams] | None,
) -> tuple[type[StageParams] | None, dict[str, Any]]:
    """Check `register(params=...)` against the annotation; return the class and base values."""
    if given is None:
        return annotated, {}
    if annotated is None:
        raise StageDefinitionError(
            f"stage '{stage_name}': params= given but the function has no StageParams parameter"
        )
    from pivot.stage_def import StageParams

    cls = given if isinstance(given, type) else type(given)
    if not (isinstance(cls, type) and issubclass(cls, annotated)):
        raise StageDefinitionError(
            f"stage '{stage_name}': params= must be a {annotated.__name__} (instance or "
            f"subclass), got {given!r}"
        )
    base = given.model_dump() if isinstance(given, StageParams) else {}
    return cls, base


def effective_params(
    stage_name: str,
    cls: type[StageParams],
    base: Mapping[str, Any],
    yaml_params: Mapping[str, Any] | None,
    project_root: Path,
    yaml_source: str = "pivot.yaml",
) -> StageParams:
    """Validate defaults <- base <- pivot.yaml params <- params.yaml section into `cls`."""
    import pydantic

    file_section = params_file_section(read_params_file(project_root), stage_name) or {}
    merged = _deep_merge(dict(base), yaml_params or {})
    merged = _deep_merge(merged, file_section)
    try:
        return cls.model_validate(merged)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(part) for part in err["loc"]) or "<root>"
        top = err["loc"][0] if err["loc"] else None
        if top in file_section:
            source = f" (from {PARAMS_FILE})"
        elif yaml_params and top in yaml_params:
            source = f" (from {yaml_source})"
        else:
            source = ""
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ParamsError(
            f"stage '{stage_name}': invalid param '{loc}'{source}: {err['msg']}{more}"
        ) from None
