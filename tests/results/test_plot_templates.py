"""Every plot template and data format draws, for one and for two revisions."""

from __future__ import annotations

import pytest

from pivot.exceptions import PivotError
from pivot.results.plots import TEMPLATES, PlotDef, build_spec, parse_records, to_svg


def test_data_formats() -> None:
    csv_rows = parse_records(b"step,loss,tag\n0,1.5,a\n1,2,b\n", "p.csv", "v1:p.csv")
    assert csv_rows == [{"step": 0, "loss": 1.5, "tag": "a"}, {"step": 1, "loss": 2, "tag": "b"}]
    tsv = parse_records(b"a\tb\n1\t2\n", "p.tsv", "x")
    assert tsv == [{"a": 1, "b": 2}]
    assert parse_records(b'[{"a": 1}]', "p.json", "x") == [{"a": 1}]
    assert parse_records(b'{"train": [{"a": 1}]}', "p.json", "x") == [{"a": 1}]
    assert parse_records(b'{"a": 1}\n\n{"a": 2}\n', "p.jsonl", "x") == [{"a": 1}, {"a": 2}]
    with pytest.raises(PivotError, match=r"^v1:p\.json: plot data must be a list of records"):
        parse_records(b'{"a": 1}', "p.json", "v1:p.json")
    with pytest.raises(PivotError, match=r"^v1:p\.json: cannot parse plot data"):
        parse_records(b"{", "p.json", "v1:p.json")
    with pytest.raises(PivotError, match=r"must be \.csv, \.tsv, \.json or \.jsonl"):
        parse_records(b"", "p.png", "p.png")


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_svg(template: str) -> None:
    rows_a = [
        {"actual": i % 3, "predicted": (i * 7) % 3, "epoch": i, "acc": i / 10} for i in range(9)
    ]
    rows_b = [{**r, "acc": r["acc"] + 0.05} for r in rows_a]
    confusion = template == "confusion"
    plot = PlotDef(
        "p.json",
        "s",
        "actual" if confusion else "epoch",
        "predicted" if confusion else "acc",
        template,
    )
    for series in ({"v1": rows_a}, {"v1": rows_a, "workspace": rows_b}):
        spec = build_spec(plot, series)
        svg = to_svg(spec)
        assert svg.startswith("<svg") and "</svg>" in svg
        assert ("workspace" in svg) == (len(series) == 2)  # the legend / panel names revisions


def test_default_axes_and_missing_fields() -> None:
    spec = build_spec(PlotDef("p.csv", "s", None, None, "linear"), {"ws": [{"a": 1, "b": 2}]})
    assert spec["encoding"]["x"]["field"] == "step"  # the record's index
    assert spec["encoding"]["y"]["field"] == "b"  # the last field
    with pytest.raises(PivotError, match=r"^p\.csv: no field 'z' for the y axis \(fields: a, b"):
        build_spec(PlotDef("p.csv", "s", "a", "z", "linear"), {"ws": [{"a": 1, "b": 2}]})
