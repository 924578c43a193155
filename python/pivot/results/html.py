"""One self-contained HTML page of charts: inline SVG, inline CSS, no script, no network."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pivot.results.plots import Chart

_CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
p.revs { margin: 0 0 16px; color: #555; }
section.plot { display: inline-block; vertical-align: top; margin: 0 24px 24px 0; }
section.plot h2 { font-size: 14px; font-weight: normal; margin: 0 0 6px; }
section.plot .meta { color: #777; font-size: 12px; }
"""


def page(charts: Sequence[tuple[Chart, str]], revisions: Sequence[str]) -> str:
    """The page: a header naming the revisions, then each chart's SVG in a section."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>pivot plots</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        "<h1>pivot plots</h1>",
        f'<p class="revs">Revisions: {html.escape(", ".join(revisions))}</p>',
    ]
    for chart, svg in charts:
        p = chart.plot
        meta = f"stage {p.stage}, template {p.template}"
        if len(chart.revisions) < len(revisions):
            meta += f"; data only at {', '.join(chart.revisions)}"
        parts.append(
            f'<section class="plot" data-path="{html.escape(p.path)}">'
            f'<h2>{html.escape(p.path)} <span class="meta">({html.escape(meta)})</span></h2>'
            f'<div class="chart">{svg}</div></section>'
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
