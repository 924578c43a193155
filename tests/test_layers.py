"""A layering rule of docs/architecture.md, checked on the source: the engine displays nothing
(rich belongs to the CLI). Only `pivot.storage` importing the Rust core is checked by
`.ci/check_layers.py` in `make lint`."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "pivot"


def _imports(path: Path) -> set[str]:
    """Every module a file imports (`from a import b` counts as `a` and `a.b`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _modules() -> dict[str, set[str]]:
    return {path.relative_to(PACKAGE).as_posix(): _imports(path) for path in PACKAGE.rglob("*.py")}


def test_the_engine_displays_nothing() -> None:
    offenders = sorted(
        name
        for name, imported in _modules().items()
        if name.startswith("engine/")
        and any(m == "rich" or m.startswith("rich.") for m in imported)
    )
    assert offenders == []
