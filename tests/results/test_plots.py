"""pivot plots: one self-contained HTML page with SVG charts, checked in headless Chromium."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pytest
from _pivot_helpers import run_ok
from _results_project import Project, copy

# Vega's default category colours: the first and second revision of a chart.
BLUE = (0x4C, 0x78, 0xA8)
ORANGE = (0xF5, 0x85, 0x18)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is not installed (`make test` installs Debian's chromium)")


def screenshot(page: pathlib.Path, png: pathlib.Path) -> pathlib.Path:
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={png}",
            "--window-size=1100,1100",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert png.is_file(), proc.stderr
    return png


def colour_pixels(
    png: pathlib.Path, rgb: tuple[int, int, int], rows: tuple[int, int], tol: int = 16
) -> int:
    """Pixels close to `rgb` between the given rows of the screenshot."""
    from PIL import Image

    with Image.open(png) as im:
        region = im.convert("RGB").crop((0, rows[0], im.width, rows[1]))
        colours = region.getcolors(maxcolors=1 << 24) or []
    return sum(n for n, c in colours if all(abs(c[i] - rgb[i]) <= tol for i in range(3)))


def test_plots_diff_page_shows_both_revisions_in_chromium(
    repo: Project, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "out"
    proc = repo.sh("plots", "diff", "v1", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    index = out / "index.html"
    assert proc.stdout.strip() == str(index)
    html = index.read_text(encoding="utf-8")
    # Charts drawn at render time: inline SVG, no script, nothing fetched.
    assert html.count("<svg") == 2  # plots/curve.csv and plots/bars.json
    assert "<script" not in html
    assert 'src="http' not in html and 'href="http' not in html
    assert ">plots/curve.csv<" in html and ">v1<" in html and ">workspace<" in html

    png = screenshot(index, tmp_path / "plots.png")
    print(f"screenshot of pivot plots diff: {png}")
    # The first chart (top of the page) draws both revisions' lines: many pixels of each
    # revision's colour. The second (bars, only in the workspace) is one solid colour.
    assert colour_pixels(png, BLUE, (0, 480)) > 300
    assert colour_pixels(png, ORANGE, (0, 480)) > 300
    assert colour_pixels(png, BLUE, (480, 1100)) > 20_000
    assert colour_pixels(png, ORANGE, (480, 1100)) == 0


def test_plots_show_one_revision_json_and_targets(repo: Project, tmp_path: pathlib.Path) -> None:
    doc = json.loads(run_ok(repo.cli("plots", "show", "--json")).stdout)
    assert [p["path"] for p in doc["plots"]] == ["plots/curve.csv", "plots/bars.json"]
    curve = doc["plots"][0]["spec"]
    assert curve["mark"] == {"type": "line", "point": True}  # template linear (default)
    assert curve["encoding"]["x"]["field"] == "step" and curve["encoding"]["y"]["field"] == "loss"
    assert len(curve["data"]["values"]) == 4
    bars = doc["plots"][1]
    assert bars["template"] == "bar" and bars["spec"]["mark"] == {"type": "bar"}

    doc = json.loads(run_ok(repo.cli("plots", "show", "--rev", "v1", "--json")).stdout)
    values = doc["plots"][0]["spec"]["data"]["values"]
    assert [v["loss"] for v in values] == [1.0, 0.5, 0.3333, 0.25]  # v1's data, from the cache
    assert [p["path"] for p in doc["plots"]] == ["plots/curve.csv"]  # no bars at v1

    out = tmp_path / "one"
    run_ok(repo.cli("plots", "show", "plots/curve.csv", "-o", str(out)))
    html = (out / "index.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 1


def test_plot_object_missing_from_cache(repo: Project, tmp_path: pathlib.Path) -> None:
    proj = copy(repo, tmp_path / "p")
    lock = json.loads((proj.root / ".pivot/stages/train.lock").read_text())  # workspace = v2+
    import subprocess as sp

    v1_lock = json.loads(
        sp.run(
            ["git", "show", "v1:.pivot/stages/train.lock"],
            cwd=proj.root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    digest = v1_lock["outs"]["plots/curve.csv"]["hash"]
    assert digest != lock["outs"]["plots/curve.csv"]["hash"]
    (proj.root / ".pivot/cache/files" / digest[:2] / digest[2:]).unlink()
    proc = proj.sh("plots", "diff", "v1", "v2", "-o", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"Error: v1:plots/curve.csv: object {digest} is not in the local cache"
    )


def test_open_hands_the_page_to_the_browser(repo: Project, tmp_path: pathlib.Path) -> None:
    import os

    from _pivot_helpers import pivot_argv

    opener = tmp_path / "browser.sh"
    opener.write_text('#!/bin/sh\necho "$1" > "$(dirname "$0")/opened.txt"\n')
    opener.chmod(0o755)
    out = tmp_path / "page"
    proc = subprocess.run(
        [*pivot_argv(), "plots", "show", "plots/bars.json", "-o", str(out), "--open"],
        cwd=repo.root,
        env={**os.environ, "BROWSER": str(opener)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    opened = (tmp_path / "opened.txt").read_text().strip()
    assert opened == (out / "index.html").as_uri()
