"""pivot get: write an output as it was at a git revision (a writable copy)."""

from __future__ import annotations

import pathlib

import click


@click.command("get")
@click.argument("path")
@click.option("-r", "--rev", "rev_name", required=True, help="The git revision to read.")
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(path_type=pathlib.Path),
    default=None,
    help="Where to write it (default: PATH's base name in the current directory).",
)
@click.option("-f", "--force", is_flag=True, help="Overwrite OUT if it exists.")
def get(path: str, rev_name: str, out: pathlib.Path | None, force: bool) -> None:
    """Write PATH as it was at --rev: a stage output or tracked path (from the cache), a file
    or directory inside a directory output, or any file committed to git."""
    from pivot.cli import _common
    from pivot.cli import _results_common as rc
    from pivot.project import open_project
    from pivot.results import get as get_mod
    from pivot.results.revs import project_rel

    project = open_project()
    rel = project_rel(project, path)
    if not rel:
        raise click.UsageError("PATH must name a file or directory inside the project")
    dest = out if out is not None else pathlib.Path(rel.rsplit("/", 1)[-1])
    dest = dest if dest.is_absolute() else pathlib.Path.cwd() / dest
    with rc.open_revisions(project) as revs:
        rev = revs.rev(rev_name)
        what = get_mod.get(project, revs, rev, rel, dest, force=force)
    _common.info(f"Wrote {rel} at {rev.label} ({what}) to {dest}")
