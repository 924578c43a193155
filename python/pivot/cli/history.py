"""pivot history / pivot show RUN: the runs `repro` and `run` recorded in .pivot/state/history."""

from __future__ import annotations

import datetime
from typing import Any

import click

_MARK = {"ran": "✓", "skipped": "○", "failed": "✗", "blocked": "⊘"}


def _when(rec: dict[str, Any]) -> str:
    try:
        started = datetime.datetime.fromisoformat(str(rec["started"]))
    except (KeyError, ValueError):
        return "?"
    return started.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _seconds(ms: Any) -> str:
    from pivot.cli.output import format_seconds

    return format_seconds(float(ms or 0.0))


def _arg(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "yes" if value is True else str(value)


@click.command("history")
@click.option(
    "-n",
    "--number",
    "n",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many runs to list, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the records as a JSON document.")
def history(n: int, as_json: bool) -> None:
    """List recent runs of `pivot repro` / `pivot run`, newest first."""
    from pivot.cli import _common
    from pivot.project import open_project
    from pivot.results import history as h

    project = open_project()
    runs = h.recent(project, n)
    if as_json:
        _common.echo_json({"runs": runs})
        return
    if not runs:
        _common.info("No runs recorded yet")
        return
    from pivot.results.table import render

    rows = []
    for rec in runs:
        c = rec.get("counts", {})
        rows.append(
            [
                str(rec.get("id")),
                _when(rec),
                str(rec.get("command")),
                str(c.get("ran", 0)),
                str(c.get("skipped", 0)),
                str(c.get("failed", 0) + c.get("blocked", 0)),
                _seconds(rec.get("duration_ms")),
            ]
        )
    render(
        ["Run", "Started", "Command", "Ran", "Skipped", "Failed", "Duration"], rows, markdown=False
    )


@click.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def show_run(run: str, as_json: bool) -> None:
    """Show one recorded run stage by stage. RUN: its id, a unique prefix, or `last`."""
    from pivot.cli import _common
    from pivot.project import open_project
    from pivot.results import history as h

    rec = h.find(open_project(), run)
    if as_json:
        _common.echo_json(rec)
        return
    c = rec.get("counts", {})
    click.echo(
        f"Run {rec['id']}: pivot {rec.get('command')}, started {_when(rec)}, "
        f"{_seconds(rec.get('duration_ms'))}"
    )
    args = rec.get("args", {})
    if args:
        click.echo("  args: " + "; ".join(f"{k}: {_arg(v)}" for k, v in args.items()))
    click.echo(
        f"  {c.get('ran', 0)} ran, {c.get('skipped', 0)} skipped, {c.get('failed', 0)} failed, "
        f"{c.get('blocked', 0)} blocked"
    )
    stages = rec.get("stages", [])
    width = max((len(str(s.get("stage"))) for s in stages), default=0)
    for s in stages:
        status = str(s.get("status"))
        click.echo(
            f"  {_MARK.get(status, '?')} {str(s.get('stage')).ljust(width)}  {status:<7}  "
            f"{_seconds(s.get('duration_ms')):>6}  {s.get('reason', '')}"
        )
