"""pivot doctor: versions, project and cache locations, which link modes work here."""

from __future__ import annotations

import pathlib
import platform
import sys
from typing import Any

import click

from pivot.cli import _common


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def collect(cache_dir: pathlib.Path | None) -> dict[str, Any]:
    """Everything `doctor` reports, as one JSON-able mapping."""
    from pivot import __version__
    from pivot.exceptions import PivotError
    from pivot.project import open_project

    report: dict[str, Any] = {
        "pivot": __version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "platform": platform.platform(),
        "executable": sys.executable,
        "project_root": None,
        "cache_dir": None,
        "same_filesystem": None,
        "link_modes": {},
        "configured_link_modes": [],
        "effective_link_mode": None,
        "free_bytes": {},
        "problems": [],
    }
    try:
        # Only the project and its config: doctor must work when the pipeline does not load.
        project = open_project(None, cache_dir)
    except PivotError as exc:
        report["problems"].append(str(exc))
        return report
    from pivot.storage import probe

    report["project_root"] = str(project.root)
    report["cache_dir"] = str(project.cache_dir)
    report["configured_link_modes"] = [m.value for m in project.config.link_modes]
    try:
        probes = probe.probe_link_modes(project.cache_dir, project.tmp_dir)
    except OSError as exc:
        report["problems"].append(f"{project.cache_dir}: cannot write to the cache: {exc}")
        return report
    report["link_modes"] = {p.mode: {"works": p.works, "reason": p.reason} for p in probes}
    working = {p.mode for p in probes if p.works}
    modes = project.config.link_modes
    report["effective_link_mode"] = next((m.value for m in modes if m in working), None)
    if report["effective_link_mode"] is None:
        report["problems"].append("none of the configured link modes works here")
    report["same_filesystem"] = probe.same_filesystem(project.cache_dir, project.root)
    report["free_bytes"] = {
        "cache": probe.free_bytes(project.cache_dir),
        "project": probe.free_bytes(project.root),
    }
    return report


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON on stdout.")
@_common.cache_dir_option
@click.pass_context
def doctor(click_ctx: click.Context, as_json: bool, cache_dir: pathlib.Path | None) -> None:
    """Report versions, the project and cache, and which link modes work between them.

    Exits 1 when something prevents pivot from working (no project, cache not writable, no
    configured link mode possible).
    """
    report = collect(cache_dir)
    if as_json:
        _common.echo_json(report, indent=True)
    else:
        click.echo(f"pivot {report['pivot']}")
        click.echo(f"python {report['python']} at {report['executable']}")
        click.echo(f"platform {report['platform']}")
        if report["project_root"] is not None:
            click.echo(f"project root: {report['project_root']}")
            click.echo(f"cache dir: {report['cache_dir']}")
        if report["same_filesystem"] is not None:
            same = "yes" if report["same_filesystem"] else "no (hardlink and reflink impossible)"
            click.echo(f"cache and project on one filesystem: {same}")
        for mode, res in report["link_modes"].items():
            click.echo(f"  {mode}: {'works' if res['works'] else 'no (' + res['reason'] + ')'}")
        if report["configured_link_modes"]:
            click.echo(
                f"configured link modes: {', '.join(report['configured_link_modes'])}"
                f" -> {report['effective_link_mode'] or 'none works'}"
            )
        for where, n in report["free_bytes"].items():
            click.echo(f"free space ({where}): {_gib(n)}")
        for problem in report["problems"]:
            click.echo(f"problem: {problem}", err=True)
    if report["problems"]:
        click_ctx.exit(1)
