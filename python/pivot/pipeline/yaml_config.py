"""`pivot.yaml` / `pivot.yml`: stages named by import path, with overrides and matrices.

```yaml
vars: {data_dir: data}                 # ${data_dir} anywhere below
stages:
  train:
    python: mypkg.stages.train         # or "mypkg.stages:train"
    deps: {data: ${data_dir}/clean.csv}  # argument -> path | [paths]
    outs: {model: models/${model}.pkl}   # output key -> path (metrics:, plots: likewise)
    params: {lr: 0.1}
    mutex: [gpu]
    matrix:
      model: [small, large]            # list: variant name = the value
      lr: {slow: 0.01, fast: 0.1}      # mapping: variant name -> value
```

A matrix expands to the cartesian product of its dimensions (in file order). Variant stages are
named `base@<v1>_<v2>...`: the variant names of each dimension joined with "_" in file order,
e.g. `train@small_slow`. `${dim}` (and `${dim.field}` for mapping values) is interpolated in every
string of the stage entry; a string that is exactly `${x}` keeps x's type.
"""

from __future__ import annotations

import importlib
import itertools
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pivot import yamlsafe
from pivot.exceptions import ConfigError, DiscoveryError, PivotError
from pivot.pipeline.core import Pipeline

TOP_KEYS = frozenset({"stages", "vars", "name"})
STAGE_KEYS = frozenset(
    {"python", "function", "deps", "outs", "metrics", "plots", "params", "mutex", "matrix"}
)
_OUT_SECTIONS = {
    "outs": ("out", "directory", "incremental"),
    "metrics": ("metric",),
    "plots": ("plot",),
}
_VAR_RE = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\s*\}")


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


class _Ctx:
    def __init__(self, path: Path, stage: str) -> None:
        self.path = path
        self.stage = stage

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: stage '{self.stage}': {message}")


def _lookup(name: str, env: Mapping[str, Any], ctx: _Ctx) -> Any:
    head, *rest = name.split(".")
    if head not in env:
        known = ", ".join(sorted(env)) or "none"
        raise ctx.error(f"unknown variable '${{{name}}}' (known: {known})")
    value = env[head]
    for part in rest:
        if not isinstance(value, Mapping) or part not in value:
            raise ctx.error(f"unknown variable '${{{name}}}'")
        value = value[part]
    return value


def interpolate(value: Any, env: Mapping[str, Any], ctx: _Ctx) -> Any:
    """Replace `${name}` in every string; a string that is exactly `${x}` keeps x's type."""
    if isinstance(value, str):
        whole = _VAR_RE.fullmatch(value)
        if whole:
            return _lookup(whole.group(1), env, ctx)

        def sub(m: re.Match[str]) -> str:
            found = _lookup(m.group(1), env, ctx)
            text = _scalar_text(found)
            if text is None:
                raise ctx.error(
                    f"'${{{m.group(1)}}}' is not a scalar and cannot be put in {value!r}"
                )
            return text

        return _VAR_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v, env, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, ctx) for v in value]
    return value


def expand_matrix(matrix: Any, ctx: _Ctx) -> list[tuple[str, dict[str, Any]]]:
    """[(variant name, {dim: value})] for the cartesian product of the dimensions."""
    if not isinstance(matrix, dict) or not matrix:
        raise ctx.error("matrix must be a non-empty mapping of dimension -> values")
    dims: list[list[tuple[str, Any]]] = []
    for dim, values in matrix.items():
        if isinstance(values, list):
            entries = []
            for v in values:
                text = _scalar_text(v)
                if text is None:
                    raise ctx.error(
                        f"matrix '{dim}': list values must be scalars; use a mapping "
                        "{variant: value} for structured values"
                    )
                entries.append((text, v))
        elif isinstance(values, dict):
            entries = [(str(k), v) for k, v in values.items()]
        else:
            raise ctx.error(f"matrix '{dim}' must be a list or a mapping")
        if not entries:
            raise ctx.error(f"matrix '{dim}' has no values")
        dims.append(entries)
    names = list(matrix)
    return [
        ("_".join(v[0] for v in combo), {d: v[1] for d, v in zip(names, combo, strict=True)})
        for combo in itertools.product(*dims)
    ]


def import_callable(target: Any, ctx: _Ctx) -> Callable[..., Any]:
    if not isinstance(target, str) or not target.strip():
        raise ctx.error("'python' must be an import path like 'module.function'")
    if ":" in target:
        module_name, _, attr = target.partition(":")
    else:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise ctx.error(f"'python: {target}' must be 'module.function' or 'module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise DiscoveryError(
            f"{ctx.path}: stage '{ctx.stage}': cannot import '{module_name}': "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ctx.error(f"'{module_name}' has no attribute '{attr}'") from None
    if not callable(obj):
        raise ctx.error(f"'{target}' is not callable")
    func: Callable[..., Any] = obj
    return func


def _mapping(value: Any, what: str, ctx: _Ctx) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ctx.error(f"'{what}' must be a mapping with string keys")
    return value


def _register(pipeline: Pipeline, cfg: dict[str, Any], ctx: _Ctx) -> None:
    func = import_callable(cfg.get("python", cfg.get("function")), ctx)
    deps = _mapping(cfg.get("deps"), "deps", ctx)
    for arg, p in deps.items():
        ok = isinstance(p, str) or (isinstance(p, list) and all(isinstance(x, str) for x in p))
        if not ok:
            raise ctx.error(f"deps '{arg}' must be a path or a list of paths")
    out_over: dict[str, str] = {}
    section_of: dict[str, str] = {}
    for section in _OUT_SECTIONS:
        for key, p in _mapping(cfg.get(section), section, ctx).items():
            if not isinstance(p, str):
                raise ctx.error(f"{section} '{key}' must be a path")
            if key in out_over:
                raise ctx.error(
                    f"output '{key}' is overridden in both {section_of[key]} and {section}"
                )
            out_over[key] = p
            section_of[key] = section
    params = _mapping(cfg.get("params"), "params", ctx)
    mutex = cfg.get("mutex")
    if mutex is not None and not (
        isinstance(mutex, str)
        or (isinstance(mutex, list) and all(isinstance(m, str) for m in mutex))
    ):
        raise ctx.error("'mutex' must be a name or a list of names")
    try:
        info = pipeline._add(
            func,
            name=ctx.stage,
            params=None,
            mutex=mutex,
            dep_path_overrides=deps,
            out_path_overrides=out_over,
            yaml_params=params or None,
            yaml_source=str(ctx.path),
        )
    except ConfigError:
        raise  # already names its file (params.yaml)
    except PivotError as exc:
        raise type(exc)(f"{ctx.path}: {exc}") from exc
    for spec in info.outs:
        given = section_of.get(spec.key)
        if given is not None and spec.kind not in _OUT_SECTIONS[given]:
            raise ctx.error(f"{given} '{spec.key}' overrides an output of kind '{spec.kind}'")


def load_pivot_yaml(path: Path, project_root: Path) -> Pipeline:
    """Build the Pipeline a pivot.yaml describes (its directory is put on sys.path)."""
    path = Path(path).resolve()
    data = yamlsafe.load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping with a 'stages' key")
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(
                f"{path}: unknown key '{key}' (allowed: {', '.join(sorted(TOP_KEYS))})"
            )
    stages = data.get("stages")
    if not isinstance(stages, dict):
        raise ConfigError(f"{path}: 'stages' must be a mapping of stage name -> stage")
    variables = data.get("vars") or {}
    if not isinstance(variables, dict):
        raise ConfigError(f"{path}: 'vars' must be a mapping")
    name = data.get("name", path.parent.name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: 'name' must be a non-empty string")

    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    pipeline = Pipeline(name, base_dir=path.parent, project_root=project_root)
    pipeline.source = path
    for base, cfg in stages.items():
        ctx = _Ctx(path, str(base))
        if not isinstance(base, str):
            raise ctx.error("stage names must be strings")
        if not isinstance(cfg, dict):
            raise ctx.error("stage entry must be a mapping")
        for key in cfg:
            if key not in STAGE_KEYS:
                raise ctx.error(f"unknown key '{key}' (allowed: {', '.join(sorted(STAGE_KEYS))})")
        if "python" in cfg and "function" in cfg:
            raise ctx.error("give either 'python' or 'function', not both")
        if "python" not in cfg and "function" not in cfg:
            raise ctx.error("missing 'python: module.function'")
        body = {k: v for k, v in cfg.items() if k != "matrix"}
        if "matrix" not in cfg:
            _register(pipeline, interpolate(body, variables, ctx), ctx)
            continue
        for variant, dims in expand_matrix(cfg["matrix"], ctx):
            vctx = _Ctx(path, f"{base}@{variant}")
            _register(pipeline, interpolate(body, {**variables, **dims}, vctx), vctx)
    return pipeline
