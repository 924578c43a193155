"""`--all`: every pipeline file below a directory, loaded as one graph (docs/cli.md).

Each directory holding `pivot.yaml`/`pivot.yml`/`pipeline.py` is loaded as if pivot had been
run there (paths relative to it). Stage names stay as they are unless two pipelines use the
same one: then the stage of a pipeline below the project root is named `<dir>.<name>`, with
the directory's `/` written `.` (`sub/dir/pipeline.py`'s `train` -> `sub.dir.train`); the
root pipeline's stages keep their names.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path

from pivot import naming
from pivot.exceptions import DiscoveryError, StageDefinitionError, ValidationError
from pivot.pipeline.core import Pipeline
from pivot.pipeline.discovery import PYTHON_NAME, YAML_NAMES, load_pipeline

_SKIP = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})
_NAMES = (*YAML_NAMES, PYTHON_NAME)


def _ignored_children(directory: str) -> set[str]:
    """Names `/name` or `/name/` in the directory's `.gitignore`: the entries pivot writes for
    outputs and tracked data, which can be huge trees holding no pipeline files."""
    try:
        with open(os.path.join(directory, ".gitignore"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return set()
    out = set()
    for line in lines:
        line = line.strip()
        if line.startswith("/") and "*" not in line and "\\" not in line:
            name = line[1:].rstrip("/")
            if name and "/" not in name:
                out.add(name)
    return out


def find_pipeline_dirs(start: Path) -> list[Path]:
    """Directories at or below `start` that hold a pipeline file, sorted by path.

    Skipped: hidden directories (`.git`, `.pivot`, `.venv`...), virtualenvs (`pyvenv.cfg`),
    `node_modules`, `__pycache__`, and the `/name` entries of `.gitignore` files.
    """
    found: list[Path] = []
    for dirpath, dirs, files in os.walk(start):
        if any(n in files for n in _NAMES):
            found.append(Path(dirpath))
        ignored = _ignored_children(dirpath) if ".gitignore" in files else set()
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIP
            and d not in ignored
            and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg"))
        )
    return sorted(found, key=lambda p: p.parts)


def load_all(project_root: Path, start: Path) -> Pipeline:
    """Every pipeline below `start` merged into one (see the module doc for names)."""
    root = Path(project_root).resolve()
    start = Path(start).resolve()
    dirs = find_pipeline_dirs(start)
    if not dirs:
        raise DiscoveryError(f"no pivot.yaml, pivot.yml or pipeline.py found in or below {start}")
    loaded = [(d, load_pipeline(root, d)) for d in dirs]
    counts = Counter(name for _d, p in loaded for name in p.stages)
    combined = Pipeline("all", base_dir=start, project_root=root)
    came_from: dict[str, str] = {}
    for d, p in loaded:
        prefix = d.relative_to(root).as_posix().replace("/", ".") if d != root else ""
        source = str(p.source.relative_to(root)) if p.source is not None else str(d)
        for name, info in p.stages.items():
            new = f"{prefix}.{name}" if prefix and counts[name] > 1 else name
            naming.check_stage_name(new, StageDefinitionError)
            if new in combined.stages:
                raise ValidationError(
                    f"stage '{new}' of {source} conflicts with stage '{new}' of {came_from[new]}"
                )
            combined.stages[new] = info if new == name else dataclasses.replace(info, name=new)
            combined.origins[new] = p.origins.get(name, (d, name))
            came_from[new] = source
    return combined
