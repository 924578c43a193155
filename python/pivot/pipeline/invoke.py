"""Run one stage function: load inputs, inject params, call, save outputs.

Runs inside worker processes with cwd = project root. Restoring IncrementalOut files and
deleting stale outputs happen before this, in the engine. Exceptions raised by the stage
function itself propagate unchanged so the engine can report the user's traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pivot import loaders
from pivot.exceptions import DependencyMissingError, ExecutionError, OutputMissingError, PivotError
from pivot.pipeline.stage import DepSpec, OutSpec, StageInfo


def _load_dep(stage: StageInfo, dep: DepSpec, rel: str, root: Path) -> Any:
    path = root / rel
    if dep.incremental:
        if isinstance(dep.reader, loaders.PathOnly):
            return path
        if not path.exists() and isinstance(dep.reader, loaders.Loader):
            return dep.reader.empty()  # an IncrementalOut's reader is its Loader
    elif not path.exists():
        raise DependencyMissingError(
            f"stage '{stage.name}': dependency '{rel}' (argument '{dep.arg}') does not exist"
        )
    try:
        return dep.reader.load(path)
    except PivotError:
        raise
    except Exception as exc:
        raise ExecutionError(
            f"stage '{stage.name}': cannot load '{rel}' (argument '{dep.arg}') with "
            f"{dep.reader!r}: {type(exc).__name__}: {exc}"
        ) from exc


def directory_entry_problem(name: object) -> str | None:
    """Why `name` is not a safe relative file name inside a DirectoryOut (None if it is)."""
    if not isinstance(name, str) or not name:
        return "names must be non-empty strings"
    if "\0" in name or "\n" in name or "\r" in name:
        return "names must not contain NUL or newlines"
    if "\\" in name:
        return "names must use '/' as separator, not backslashes"
    if name.startswith("/"):
        return "names must be relative"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "names must not contain empty, '.' or '..' components"
    return None


def _save_directory(stage: StageInfo, out: OutSpec, value: Any, target: Path) -> None:
    where = f"stage '{stage.name}': directory output '{out.key}' ({out.path})"
    if not isinstance(value, Mapping):
        raise ExecutionError(
            f"{where}: expected a dict of name -> value, got {type(value).__name__}"
        )
    if not value:
        raise OutputMissingError(f"{where}: the returned dict is empty")
    names = set(value)
    for name in value:
        problem = directory_entry_problem(name)
        if problem:
            raise ExecutionError(f"{where}: invalid name {name!r}: {problem}")
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in names:
                raise ExecutionError(
                    f"{where}: {name!r} is inside {'/'.join(parts[:i])!r}, which is also a file"
                )
    target.mkdir(parents=True, exist_ok=True)
    for name in sorted(value):
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        _write(stage, out, value[name], dest, f"{out.path}{name}")


def _write(stage: StageInfo, out: OutSpec, value: Any, dest: Path, shown: str) -> None:
    try:
        out.writer.save(value, dest)
    except PivotError:
        raise
    except Exception as exc:
        raise ExecutionError(
            f"stage '{stage.name}': cannot save output '{out.key}' to {shown} with "
            f"{out.writer!r}: {type(exc).__name__}: {exc}"
        ) from exc


def _save_output(stage: StageInfo, out: OutSpec, value: Any, root: Path) -> None:
    target = root / out.path.rstrip("/")
    if isinstance(out.writer, loaders.PathOnly):
        # The stage wrote the file (or the whole directory) itself.
        if not target.exists():
            raise OutputMissingError(
                f"stage '{stage.name}': output '{out.key}' ({out.path}) was not created "
                "(PathOnly outputs must be written by the stage)"
            )
        return
    if value is None:
        raise OutputMissingError(
            f"stage '{stage.name}': output '{out.key}' ({out.path}) is None; return a value"
        )
    if out.kind == "directory":
        _save_directory(stage, out, value, target)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    _write(stage, out, value, target, out.path)


def save_outputs(stage: StageInfo, result: Any, root: Path) -> None:
    if not stage.outs:
        return
    if len(stage.outs) == 1 and stage.outs[0].key == "return":
        values: Mapping[str, Any] = {"return": result}
    else:
        keys = [o.key for o in stage.outs]
        if not isinstance(result, Mapping):
            raise OutputMissingError(
                f"stage '{stage.name}' must return a dict with outputs {', '.join(keys)}; "
                f"got {type(result).__name__}"
            )
        unknown = sorted(str(k) for k in result if k not in keys)
        if unknown:
            raise ExecutionError(
                f"stage '{stage.name}' returned undeclared output(s): {', '.join(unknown)}"
            )
        values = result
    for out in stage.outs:
        if out.key not in values:
            raise OutputMissingError(
                f"stage '{stage.name}': output '{out.key}' ({out.path}) is missing from the "
                "returned dict"
            )
    for out in stage.outs:
        _save_output(stage, out, values[out.key], root)


def run_stage(stage: StageInfo, project_root: Path) -> None:
    """Load deps, inject params, call the stage function and save what it returns."""
    root = Path(project_root)
    kwargs: dict[str, Any] = {}
    for dep in stage.deps:
        values = [_load_dep(stage, dep, rel, root) for rel in dep.paths]
        if dep.container == "single":
            kwargs[dep.arg] = values[0]
        elif dep.container == "tuple":
            kwargs[dep.arg] = tuple(values)
        else:
            kwargs[dep.arg] = values
    if stage.params_arg is not None:
        kwargs[stage.params_arg] = stage.params
    result = stage.func(**kwargs)
    save_outputs(stage, result, root)
