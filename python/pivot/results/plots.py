"""Plots of one or several revisions: data of every `Plot` output, a Vega-Lite spec per plot
(from its x/y/template metadata), drawn to SVG with vl-convert at render time.

Data: CSV/TSV, JSON (a list of records, or an object holding one such list) and JSONL, by the
file's suffix. A revision's plot bytes come from the local cache by the hash its lock records
(plots are cached outputs); the workspace's from disk. The metadata is the current pipeline's
(locks do not record it). Several revisions are drawn on one chart, coloured by revision.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from pivot.exceptions import PivotError
from pivot.results.revs import Rev, Revisions, under

if TYPE_CHECKING:
    from pivot.pipeline import Pipeline

logger = logging.getLogger(__name__)

REV_FIELD = "rev"
STEP_FIELD = "step"
DEFAULT_TEMPLATE = "linear"
WIDTH, HEIGHT = 480, 300
# Templates, as DVC users know them: linear (line + points), simple (line), scatter, smooth
# (loess), bar, bar_horizontal, confusion (counts of (actual x, predicted y) pairs).
TEMPLATES = ("linear", "simple", "scatter", "smooth", "bar", "bar_horizontal", "confusion")


@dataclass(frozen=True)
class PlotDef:
    path: str  # project-relative
    stage: str
    x: str | None
    y: str | None
    template: str


@dataclass
class Chart:
    plot: PlotDef
    spec: dict[str, Any]
    revisions: list[str]  # labels that had data


def plot_defs(pipeline: Pipeline, targets: Sequence[str] = ()) -> list[PlotDef]:
    """The pipeline's Plot outputs (filtered by stage names or paths), in registration order."""
    defs = []
    for stage in pipeline.stages.values():
        for out in stage.outs:
            if out.kind != "plot":
                continue
            meta = out.plot or {}
            template = meta.get("template") or DEFAULT_TEMPLATE
            if template not in TEMPLATES:
                raise PivotError(
                    f"stage '{stage.name}': plot {out.path}: unknown template '{template}' "
                    f"(known: {', '.join(TEMPLATES)})"
                )
            defs.append(
                PlotDef(out.path.rstrip("/"), stage.name, meta.get("x"), meta.get("y"), template)
            )
    if targets:
        chosen = []
        for t in targets:
            hits = [d for d in defs if d.stage == t or under(d.path, t)]
            if not hits:
                raise PivotError(f"{t}: not a plot output, or a stage or directory with plots")
            chosen += [d for d in hits if d not in chosen]
        defs = chosen
    return defs


# -- data ----------------------------------------------------------------------------------
def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_records(data: bytes, path: str, where: str) -> list[dict[str, Any]]:
    """Records of a CSV/TSV, JSON or JSONL plot file; PivotError naming `where` otherwise."""
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    try:
        if suffix in ("csv", "tsv"):
            text = data.decode("utf-8-sig")
            reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == "tsv" else ",")
            return [{k: _number(v) for k, v in row.items() if k is not None} for row in reader]
        if suffix == "jsonl":
            rows = [orjson.loads(line) for line in data.splitlines() if line.strip()]
        elif suffix == "json":
            doc = orjson.loads(data)
            if isinstance(doc, dict):  # {"train": [...]} as DVC accepts: the first list inside
                doc = next((v for v in doc.values() if isinstance(v, list)), None)
            rows = doc
        else:
            raise PivotError(f"{where}: plot data must be .csv, .tsv, .json or .jsonl")
    except (UnicodeDecodeError, orjson.JSONDecodeError, csv.Error) as e:
        raise PivotError(f"{where}: cannot parse plot data: {e}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise PivotError(f"{where}: plot data must be a list of records (objects)")
    return rows


def read_series(
    revs: Revisions, rev: Rev, plot: PlotDef, *, cache_bytes: Any
) -> list[dict[str, Any]] | None:
    """The records of `plot` at `rev`, or None (with a warning) when the revision lacks it.

    `cache_bytes(rev, path, hash)` returns a cached file's bytes (absent object: an error).
    """
    where = f"{rev.label}:{plot.path}"
    if rev.is_workspace:
        data = revs.read(rev, plot.path)
        if data is None:
            logger.warning("%s: no such file in the workspace, skipped", where)
            return None
    else:
        rec = revs.recorded(rev).get(plot.path)
        if rec is None:
            logger.warning("%s: no lock at %s records this plot, skipped", where, rev.label)
            return None
        if rec.is_dir:
            raise PivotError(f"{where}: directory plots are not supported")
        data = cache_bytes(rev, plot.path, rec.hash) if rec.cache else revs.read(rev, plot.path)
        if data is None:
            logger.warning("%s: not committed at %s, skipped", where, rev.label)
            return None
    return parse_records(data, plot.path, where)


# -- specs ---------------------------------------------------------------------------------
def _field_type(rows: Sequence[dict[str, Any]], field: str) -> str:
    values = [r.get(field) for r in rows if r.get(field) is not None]
    numeric = values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    return "quantitative" if numeric else "nominal"


def build_spec(plot: PlotDef, series: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A Vega-Lite spec drawing `series` (revision label -> records) per the plot's template."""
    rows: list[dict[str, Any]] = []
    for label, records in series.items():
        for i, r in enumerate(records):
            row = dict(r)
            if plot.x is None:
                row.setdefault(STEP_FIELD, i)
            row[REV_FIELD] = label
            rows.append(row)
    fields = [k for r in rows for k in r if k != REV_FIELD]
    fields = list(dict.fromkeys(fields))
    x = plot.x or STEP_FIELD
    y = plot.y or next((f for f in reversed(fields) if f != x), None)
    if y is None:
        raise PivotError(f"{plot.path}: no field to plot on the y axis")
    for name, field in (("x", x), ("y", y)):
        if rows and not any(field in r for r in rows):
            raise PivotError(
                f"{plot.path}: no field '{field}' for the {name} axis (fields: {', '.join(fields)})"
            )
    several = len(series) > 1
    enc_x = {"field": x, "type": _field_type(rows, x), "title": x}
    enc_y = {"field": y, "type": _field_type(rows, y), "title": y}
    color = {"field": REV_FIELD, "type": "nominal", "title": "revision"}
    spec: dict[str, Any] = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": plot.path,
        "width": WIDTH,
        "height": HEIGHT,
        "data": {"values": rows},
    }
    t = plot.template
    if t in ("linear", "simple", "scatter", "smooth"):
        marks: dict[str, dict[str, Any]] = {
            "linear": {"type": "line", "point": True},
            "simple": {"type": "line"},
            "scatter": {"type": "point", "filled": True},
            "smooth": {"type": "line"},
        }
        mark = marks[t]
        encoding: dict[str, Any] = {"x": enc_x, "y": enc_y}
        if several:
            encoding["color"] = color
        spec.update(mark=mark, encoding=encoding)
        if t == "smooth":
            spec["transform"] = [
                {"loess": y, "on": x, **({"groupby": [REV_FIELD]} if several else {})}
            ]
    elif t in ("bar", "bar_horizontal"):
        cat = {**enc_x, "type": "nominal"}
        encoding = {"x": cat, "y": enc_y} if t == "bar" else {"y": cat, "x": enc_y}
        if several:
            encoding["color"] = color
            encoding["xOffset" if t == "bar" else "yOffset"] = {"field": REV_FIELD}
        spec.update(mark={"type": "bar"}, encoding=encoding)
    else:  # confusion: how often each (actual, predicted) pair occurs
        encoding = {
            "x": {"field": x, "type": "nominal", "title": x},
            "y": {"field": y, "type": "nominal", "title": y},
            "color": {"aggregate": "count", "type": "quantitative", "title": "count"},
        }
        spec.update(mark={"type": "rect"}, encoding=encoding)
        if several:
            spec["encoding"]["column"] = {"field": REV_FIELD, "type": "nominal", "title": None}
    return spec


def to_svg(spec: dict[str, Any]) -> str:
    """Draw a Vega-Lite spec offline (vl-convert bundles Vega and its fonts; no network)."""
    import vl_convert

    svg: str = vl_convert.vegalite_to_svg(spec)
    return svg


def charts(
    pipeline: Pipeline,
    revs: Revisions,
    revisions: Sequence[Rev],
    targets: Sequence[str],
    *,
    cache_bytes: Any,
) -> list[Chart]:
    """A chart per plot that has data at any of `revisions`."""
    out = []
    for plot in plot_defs(pipeline, targets):
        series: dict[str, list[dict[str, Any]]] = {}
        for rev in revisions:
            rows = read_series(revs, rev, plot, cache_bytes=cache_bytes)
            if rows is not None:
                series[rev.label] = rows
        if series:
            out.append(Chart(plot, build_spec(plot, series), list(series)))
    return out
