"""Find and load the project's pipeline file (docs/architecture.md, "Pipeline model")."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from pivot.exceptions import DiscoveryError, PivotError
from pivot.pipeline.core import Pipeline, loading_project

YAML_NAMES = ("pivot.yaml", "pivot.yml")
PYTHON_NAME = "pipeline.py"


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def has_pipeline_file(project_root: Path, cwd: Path | None = None) -> bool:
    """Whether `find_pipeline_file` would find (or find ambiguous) pipeline files."""
    try:
        find_pipeline_file(project_root, cwd)
    except DiscoveryError as e:
        return str(e).startswith("ambiguous")
    return True


def find_pipeline_file(project_root: Path, cwd: Path | None = None) -> Path:
    """`cwd` (if inside the project) then the root: pivot.yaml/pivot.yml or else pipeline.py.

    With `cwd=None` only the root is searched (worker processes, whose cwd is the root).
    """
    root = Path(project_root).resolve()
    dirs = [root]
    if cwd is not None:
        here = Path(cwd).resolve()
        if here != root and root in here.parents:
            dirs.insert(0, here)
    for d in dirs:
        found = [d / n for n in (*YAML_NAMES, PYTHON_NAME) if (d / n).is_file()]
        if len(found) > 1:
            names = " and ".join(_display(p, root) for p in found)
            raise DiscoveryError(f"ambiguous pipeline: both {names} exist; keep only one")
        if found:
            return found[0]
    where = " or ".join(str(d) for d in dirs)
    raise DiscoveryError(f"no pivot.yaml, pivot.yml or pipeline.py found in {where}")


def module_name_for(path: Path, project_root: Path) -> str:
    """A module name for a pipeline.py that is the same on every machine (fingerprints use it)."""
    rel = _display(path.parent, project_root)
    suffix = "" if rel in ("", ".") else "__" + re.sub(r"\W", "_", rel.replace("/", "__"))
    return "_pivot_pipeline" + suffix


def _load_python(path: Path, root: Path) -> Pipeline:
    directory = str(path.parent)
    if directory not in sys.path:  # kept afterwards: workers and stage code import siblings
        sys.path.insert(0, directory)
    name = module_name_for(path, root)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DiscoveryError(f"{_display(path, root)}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # Always executed afresh: a re-load (watch mode, tests) must see the current file.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except PivotError:
        sys.modules.pop(name, None)
        raise
    except Exception as exc:
        sys.modules.pop(name, None)
        raise DiscoveryError(
            f"{_display(path, root)}: error while importing: {type(exc).__name__}: {exc}"
        ) from exc
    pipeline = getattr(module, "pipeline", None)
    if not isinstance(pipeline, Pipeline):
        got = "nothing" if pipeline is None else type(pipeline).__name__
        raise DiscoveryError(
            f"{_display(path, root)} must define a module-level 'pipeline' "
            f"(a pivot.pipeline.Pipeline); found {got}"
        )
    pipeline.source = path
    return pipeline


def load_pipeline(project_root: Path, cwd: Path | None = None) -> Pipeline:
    """Discover, import and resolve the pipeline of the project at `project_root`."""
    root = Path(project_root).resolve()
    path = find_pipeline_file(root, cwd)
    with loading_project(root):
        if path.name in YAML_NAMES:
            from pivot.pipeline.yaml_config import load_pivot_yaml

            return load_pivot_yaml(path, root)
        return _load_python(path, root)
