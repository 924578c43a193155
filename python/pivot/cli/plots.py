"""pivot plots show|diff: every Plot output drawn as SVG into one self-contained HTML page."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pivot.cli import _results_common as rc

if TYPE_CHECKING:
    from pivot.engine.context import Context
    from pivot.results.revs import Rev, Revisions

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_DIR = "pivot_plots"


def _page_options(func: F) -> F:
    options = [
        click.option(
            "--open", "open_browser", is_flag=True, help="Open the page in the web browser."
        ),
        click.option(
            "--json", "as_json", is_flag=True, help="Print the Vega-Lite specs; write no page."
        ),
        click.option(
            "-o",
            "--out",
            "out_dir",
            type=click.Path(file_okay=False, path_type=pathlib.Path),
            default=DEFAULT_DIR,
            show_default=True,
            help="Directory for index.html.",
        ),
    ]
    for option in options:
        func = option(func)
    return func


@click.group("plots")
def plots() -> None:
    """Render the stages' Plot outputs into one HTML page (charts as inline SVG)."""


@plots.command("show")
@click.argument("targets", nargs=-1)
@click.option("-r", "--rev", "rev_name", default=None, help="Plot the data of this git revision.")
@_page_options
def show(
    targets: tuple[str, ...],
    rev_name: str | None,
    out_dir: pathlib.Path,
    as_json: bool,
    open_browser: bool,
) -> None:
    """Plot TARGETS (plot files, directories or stage names; default: every plot) as they are
    in the workspace, or at --rev."""
    from pivot.engine.context import load_context
    from pivot.results.revs import WORKSPACE

    loaded = load_context(check_missing=False)
    with rc.open_revisions(loaded.project) as revs:
        revisions = [revs.rev(rev_name or WORKSPACE)]
        _render(loaded, revs, revisions, targets, out_dir, as_json, open_browser)


@plots.command("diff")
@click.argument("revisions", nargs=-1)
@click.option(
    "-t",
    "--target",
    "targets",
    multiple=True,
    help="Only this plot file, directory or stage (repeatable).",
)
@_page_options
def diff(
    revisions: tuple[str, ...],
    targets: tuple[str, ...],
    out_dir: pathlib.Path,
    as_json: bool,
    open_browser: bool,
) -> None:
    """Plot several revisions on the same charts, one colour per revision.

    No revision: HEAD and the workspace; one: it and the workspace; more: exactly those.
    """
    from pivot.engine.context import load_context
    from pivot.results.revs import WORKSPACE

    names = list(dict.fromkeys(revisions))
    if len(names) < 2:
        names = [names[0] if names else rc.DEFAULT_OLD, WORKSPACE]
    loaded = load_context(check_missing=False)
    with rc.open_revisions(loaded.project) as revs:
        chosen = [revs.rev(n) for n in names]
        _render(loaded, revs, chosen, targets, out_dir, as_json, open_browser)


def _render(
    loaded: Context,
    revs: Revisions,
    revisions: list[Rev],
    targets: tuple[str, ...],
    out_dir: pathlib.Path,
    as_json: bool,
    open_browser: bool,
) -> None:
    from pivot.cli import _common
    from pivot.results import fetch, html, plots
    from pivot.storage.files import write_atomic

    def cache_bytes(rev: Rev, path: str, digest: str) -> bytes:
        return fetch.file_bytes(loaded.project, rev, path, digest)

    wanted = [rc.target_path(loaded, t) for t in targets]
    charts = plots.charts(loaded.pipeline, revs, revisions, wanted, cache_bytes=cache_bytes)
    labels = [r.label for r in revisions]
    if as_json:
        _common.echo_json(
            {
                "revisions": labels,
                "plots": [
                    {
                        "path": c.plot.path,
                        "stage": c.plot.stage,
                        "template": c.plot.template,
                        "revisions": c.revisions,
                        "spec": c.spec,
                    }
                    for c in charts
                ],
            }
        )
        return
    if not charts:
        _common.info("No plots to render")
        return
    page = html.page([(c, plots.to_svg(c.spec)) for c in charts], labels)
    target_dir = out_dir if out_dir.is_absolute() else loaded.cwd / out_dir
    target_dir.mkdir(parents=True, exist_ok=True)
    index = target_dir / "index.html"
    write_atomic(index, page.encode("utf-8"))
    click.echo(str(index))
    _common.info(f"Rendered {len(charts)} plot(s) of {', '.join(labels)}")
    if open_browser:
        import webbrowser

        webbrowser.open(index.resolve().as_uri())
