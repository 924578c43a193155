"""Turn a stage function's annotations into a StageInfo (docs/architecture.md, "Pipeline model")."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin

from pivot import loaders, naming, outputs
from pivot.exceptions import StageDefinitionError
from pivot.pipeline import params as params_mod
from pivot.pipeline.stage import DepSpec, OutSpec, StageInfo

if TYPE_CHECKING:
    # pydantic (~0.3 s to import) is loaded only by pipelines that define StageParams.
    from pivot.stage_def import StageParams

PathOverride = str | Sequence[str]
InputMarker = outputs.Dep | outputs.PlaceholderDep | outputs.IncrementalOut


def check_stage_function(func: object, stage: str) -> Callable[..., Any]:
    """Stages must be plain module-level functions so worker processes can import them."""
    if not inspect.isfunction(func):
        raise StageDefinitionError(
            f"stage '{stage}': {func!r} is not a function (stages are module-level functions)"
        )
    if func.__name__ == "<lambda>":
        raise StageDefinitionError(
            f"stage '{stage}': lambdas cannot be stages; define a module-level function"
        )
    if "<locals>" in func.__qualname__:
        raise StageDefinitionError(
            f"stage '{stage}': {func.__qualname__} is a nested function; stages must be "
            "defined at module level so worker processes can import them"
        )
    return func


@functools.lru_cache(maxsize=64)
def _base_rel(base_dir: Path, project_root: Path) -> str:
    return os.path.relpath(base_dir, project_root).replace(os.sep, "/")


def normalize_path(
    raw: object, *, stage: str, field: str, base_dir: Path, project_root: Path, is_dir: bool
) -> str:
    """User path (relative to the pipeline file's directory) -> project-relative POSIX path.

    Lexical only (os.path.normpath semantics): escapes, `.pivot/` and the like are reported by
    the graph, which sees all stages. NUL and newlines are refused here because the OS calls
    that resolve paths would choke on them.
    """
    if not isinstance(raw, str | os.PathLike):
        raise StageDefinitionError(
            f"stage '{stage}': {field}: path must be a string, got {type(raw).__name__}"
        )
    text = os.fspath(raw)
    if not isinstance(text, str) or not text:
        raise StageDefinitionError(f"stage '{stage}': {field}: path must be a non-empty string")
    if naming.has_nul_or_newline(text):
        raise StageDefinitionError(
            f"stage '{stage}': {field}: path {text!r} contains NUL or a newline"
        )
    if is_dir and not text.endswith("/"):
        raise StageDefinitionError(
            f"stage '{stage}': {field}: directory output path {text!r} must end with '/'"
        )
    return naming.normalize(text, _base_rel(base_dir, project_root), project_root)


@dataclass
class _Parsed:
    params_arg: str | None
    params_cls: type[StageParams] | None
    inputs: list[tuple[str, InputMarker]]
    outs: list[tuple[str, outputs.OutputMarker]]


def _markers(annotation: Any, kinds: tuple[type, ...]) -> list[Any]:
    if get_origin(annotation) is not typing.Annotated:
        return []
    return [m for m in annotation.__metadata__ if isinstance(m, kinds)]


def _all_markers(annotation: Any) -> list[Any]:
    return _markers(annotation, outputs.INPUT_MARKERS + outputs.OUTPUT_MARKERS)


def _is_params_class(annotation: Any) -> bool:
    if get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if not isinstance(annotation, type):
        return False
    # A StageParams subclass can only exist once pivot.stage_def was imported (by the pipeline
    # file, or `pivot.StageParams`); otherwise do not pay for importing pydantic here.
    stage_def = sys.modules.get("pivot.stage_def")
    return stage_def is not None and issubclass(annotation, stage_def.StageParams)


def _one_output(stage: str, key: str, annotation: Any) -> outputs.OutputMarker:
    found = _all_markers(annotation)
    outs = [m for m in found if isinstance(m, outputs.OUTPUT_MARKERS)]
    if len(outs) != 1 or len(found) != 1:
        what = "no" if not found else "more than one"
        if found and not outs:
            what = "an input marker instead of an"
        raise StageDefinitionError(
            f"stage '{stage}': output '{key}' has {what} output annotation; use "
            "Annotated[T, Out(...)] (or Metric/Plot/DirectoryOut/IncrementalOut)"
        )
    return typing.cast(outputs.OutputMarker, outs[0])


def parse_signature(func: Callable[..., Any], stage: str) -> _Parsed:
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise StageDefinitionError(
            f"stage '{stage}': cannot resolve the annotations of {func.__qualname__}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    parsed = _Parsed(None, None, [], [])
    for pname, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        ann = hints.get(pname)
        found = _all_markers(ann)
        if found:
            if param.kind is param.POSITIONAL_ONLY:
                raise StageDefinitionError(
                    f"stage '{stage}': argument '{pname}' is positional-only; pivot passes "
                    "inputs by keyword"
                )
            marker = found[0]
            if len(found) > 1 or not isinstance(marker, outputs.INPUT_MARKERS):
                raise StageDefinitionError(
                    f"stage '{stage}': argument '{pname}' must carry exactly one Dep, "
                    "PlaceholderDep or IncrementalOut annotation (outputs belong in the "
                    "return annotation)"
                )
            parsed.inputs.append((pname, typing.cast(InputMarker, marker)))
        elif parsed.params_arg is None and _is_params_class(ann):
            parsed.params_arg = pname
            base = get_args(ann)[0] if get_origin(ann) is typing.Annotated else ann
            parsed.params_cls = typing.cast("type[StageParams]", base)
        elif param.default is param.empty:
            raise StageDefinitionError(
                f"stage '{stage}': argument '{pname}' has no default and is neither a "
                "StageParams nor annotated with Dep/PlaceholderDep/IncrementalOut"
            )

    ret = hints.get("return", type(None))
    if ret is None or ret is type(None):
        return parsed
    if typing.is_typeddict(ret):
        for key, ann in typing.get_type_hints(ret, include_extras=True).items():
            parsed.outs.append((key, _one_output(stage, key, ann)))
    elif get_origin(ret) is typing.Annotated:
        parsed.outs.append(("return", _one_output(stage, "return", ret)))
    else:
        raise StageDefinitionError(
            f"stage '{stage}': return annotation {ret!r} must be a TypedDict of annotated "
            "outputs, Annotated[T, Out(...)] or None"
        )
    return parsed


def _check_loader(stage: str, field: str, obj: object, kind: type, role: str) -> None:
    if not isinstance(obj, kind):
        raise StageDefinitionError(
            f"stage '{stage}': {field}: {obj!r} is not a pivot.loaders.{kind.__name__} "
            f"(needed to {role})"
        )


def _dep_paths(
    stage: str,
    arg: str,
    marker: outputs.Dep | outputs.PlaceholderDep | outputs.IncrementalOut,
    override: object,
) -> tuple[tuple[object, ...], Any]:
    """The raw paths of an input and its container, after dep_path_overrides."""
    if isinstance(marker, outputs.PlaceholderDep):
        if override is None:
            raise StageDefinitionError(
                f"stage '{stage}': PlaceholderDep argument '{arg}' needs a path in "
                "dep_path_overrides"
            )
        split = outputs.split_paths(override)
    elif isinstance(marker, outputs.Dep):
        split = (marker.paths, marker.container)
        if override is not None:
            new_paths, new_container = outputs.split_paths(override)
            if (new_container == "single") != (marker.container == "single"):
                raise StageDefinitionError(
                    f"stage '{stage}': dep_path_overrides['{arg}'] must be "
                    f"{'a single path' if marker.container == 'single' else 'a list of paths'}"
                    " like the Dep it replaces"
                )
            split = (new_paths, marker.container)
    else:
        split = ((marker.path if override is None else override,), "single")
    if not split[0]:
        raise StageDefinitionError(f"stage '{stage}': argument '{arg}' has an empty path list")
    return split


def build_stage(
    func: Callable[..., Any],
    *,
    name: str,
    params: StageParams | type[StageParams] | None,
    mutex: Sequence[str] | str | None,
    dep_path_overrides: Mapping[str, PathOverride] | None,
    out_path_overrides: Mapping[str, str] | None,
    base_dir: Path,
    project_root: Path,
    yaml_params: Mapping[str, Any] | None = None,
    yaml_source: str = "pivot.yaml",
) -> StageInfo:
    """Parse, validate and resolve one registration (`name` already checked) into a StageInfo."""
    check_stage_function(func, name)
    parsed = parse_signature(func, name)
    dep_over = dict(dep_path_overrides or {})
    out_over = dict(out_path_overrides or {})
    input_args = {arg for arg, _ in parsed.inputs}
    for arg in dep_over:
        if arg not in input_args:
            raise StageDefinitionError(
                f"stage '{name}': dep_path_overrides names '{arg}', which is not an input "
                f"argument (inputs: {', '.join(sorted(input_args)) or 'none'})"
            )
    out_keys = {key for key, _ in parsed.outs}
    for key in out_over:
        if key not in out_keys:
            raise StageDefinitionError(
                f"stage '{name}': out_path_overrides names '{key}', which is not an output "
                f"(outputs: {', '.join(sorted(out_keys)) or 'none'})"
            )

    def norm(raw: object, field: str, is_dir: bool = False) -> str:
        return normalize_path(
            raw,
            stage=name,
            field=field,
            base_dir=base_dir,
            project_root=project_root,
            is_dir=is_dir,
        )

    outs: list[OutSpec] = []
    incremental_outs: dict[str, OutSpec] = {}  # declared path -> spec
    for key, marker in parsed.outs:
        field = f"output '{key}'"
        _check_loader(name, field, marker.writer, loaders.Writer, "save it")
        if isinstance(marker, outputs.IncrementalOut):
            _check_loader(name, field, marker.loader, loaders.Loader, "load and save it")
        raw = out_over.get(key, marker.path)
        plot = None
        if isinstance(marker, outputs.Plot):
            given = {"x": marker.x, "y": marker.y, "template": marker.template}
            plot = {k: v for k, v in given.items() if v is not None}
        spec = OutSpec(
            key=key,
            path=norm(raw, field, is_dir=isinstance(marker, outputs.DirectoryOut)),
            kind=typing.cast(Any, marker.kind),
            writer=marker.writer,
            cache=bool(marker.cache),
            plot=plot,
        )
        outs.append(spec)
        if isinstance(marker, outputs.IncrementalOut):
            incremental_outs[str(marker.path)] = spec

    deps: list[DepSpec] = []
    for arg, inp in parsed.inputs:
        field = f"argument '{arg}'"
        reader = inp.loader if isinstance(inp, outputs.IncrementalOut) else inp.reader
        _check_loader(name, field, reader, loaders.Reader, "load it")
        raw_paths, container = _dep_paths(name, arg, inp, dep_over.get(arg))
        paths = tuple(norm(p, field) for p in raw_paths)
        incremental = isinstance(inp, outputs.IncrementalOut)
        if isinstance(inp, outputs.IncrementalOut):
            out = incremental_outs.get(inp.path)
            if out is None or out.path.rstrip("/") != paths[0]:
                raise StageDefinitionError(
                    f"stage '{name}': IncrementalOut argument '{arg}' ({paths[0]}) must also be "
                    "declared with the same path as an IncrementalOut in the return annotation"
                )
        deps.append(DepSpec(arg, paths, container, reader, incremental))

    params_cls, base = params_mod.resolve_params_class(name, parsed.params_cls, params)
    effective = None
    if params_cls is not None:
        effective = params_mod.effective_params(
            name, params_cls, base, yaml_params, project_root, yaml_source
        )
    elif yaml_params:
        raise StageDefinitionError(
            f"stage '{name}': {yaml_source} gives params but the function has no StageParams "
            "parameter"
        )

    if isinstance(mutex, str):
        mutex = [mutex]
    mutex_t = tuple(mutex or ())
    for group in mutex_t:
        if not isinstance(group, str) or not group:
            raise StageDefinitionError(f"stage '{name}': mutex group {group!r} is not a name")

    return StageInfo(
        name=name,
        func=func,
        deps=tuple(deps),
        outs=tuple(outs),
        params_arg=parsed.params_arg,
        params=effective,
        mutex=mutex_t,
    )
