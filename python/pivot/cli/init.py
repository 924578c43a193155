"""pivot init: create `.pivot/` in the current directory."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from pivot.cli import _common
from pivot.exceptions import ProjectNotFoundError


@click.command("init")
@click.option(
    "-f", "--force", is_flag=True, help="Re-initialize an existing .pivot/ (keeps config)."
)
def init(force: bool) -> None:
    """Create .pivot/ (with its .gitignore and config.yaml) in the current directory."""
    from pivot import project

    cwd = Path.cwd().resolve()
    created = project.init(cwd, force=force)
    _common.info(f"Initialized pivot project in {created.root}")
    try:
        outer = project.find_root(cwd)
    except ProjectNotFoundError:  # pragma: no cover - we just created one
        outer = cwd
    if outer != cwd:
        # The top-most .pivot/ is the root (docs/architecture.md), so this one would be ignored.
        logging.getLogger("pivot").warning(
            "%s is inside the pivot project %s; commands run here will use that project",
            cwd,
            outer,
        )
