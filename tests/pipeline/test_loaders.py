"""Each built-in loader round-trips real files; output markers record what the user wrote."""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
import subprocess
import sys

import pytest

from pivot import loaders, outputs
from pivot.exceptions import ConfigError


@pytest.mark.parametrize(
    ("loader", "value", "name"),
    [
        (loaders.Text(), "héllo\nworld", "a.txt"),
        (loaders.JSON(), {"b": [1, 2.5, None], "a": {"z": True}}, "a.json"),
        (loaders.JSONL(), [{"b": 1, "a": 2}, [1, 2], "x"], "a.jsonl"),
        (loaders.YAML(), {"b": [1, 2], "a": {"nested": "x"}}, "a.yaml"),
        (loaders.Pickle(), {"set": {1, 2}, "tuple": (1, "a")}, "a.pkl"),
    ],
)
def test_round_trip(
    loader: loaders.Loader, value: object, name: str, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / name
    loader.save(value, path)
    assert loader.load(path) == value


def test_json_is_deterministic(tmp_path: pathlib.Path) -> None:
    loaders.JSON().save({"b": 1, "a": {"d": 2, "c": 3}}, tmp_path / "x.json")
    text = (tmp_path / "x.json").read_text()
    assert text == '{\n  "a": {\n    "c": 3,\n    "d": 2\n  },\n  "b": 1\n}\n'
    loaders.JSONL().save([{"b": 1, "a": 2}], tmp_path / "x.jsonl")
    assert (tmp_path / "x.jsonl").read_text() == '{"a":2,"b":1}\n'


def test_yaml_writes_sorted_and_refuses_aliases(tmp_path: pathlib.Path) -> None:
    loaders.YAML().save({"b": 1, "a": 2}, tmp_path / "x.yaml")
    assert (tmp_path / "x.yaml").read_text() == "a: 2\nb: 1\n"
    (tmp_path / "bad.yaml").write_text("a: &x 1\nb: *x\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        loaders.YAML().load(tmp_path / "bad.yaml")


def test_empty_values() -> None:
    assert loaders.Text().empty() == ""
    assert loaders.JSON().empty() == {}
    assert loaders.JSONL().empty() == []
    assert loaders.YAML().empty() == {}
    assert loaders.Pickle().empty() is None


def test_path_only(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "f.bin"
    assert loaders.PathOnly().load(path) == path
    with pytest.raises(FileNotFoundError):
        loaders.PathOnly().save(path, path)
    path.write_bytes(b"x")
    loaders.PathOnly().save(path, path)


def test_text_writer_refuses_non_str(tmp_path: pathlib.Path) -> None:
    with pytest.raises(TypeError, match="str"):
        loaders.Text().save(b"bytes", tmp_path / "x.txt")  # type: ignore[arg-type]


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas not installed")
def test_csv_round_trip(tmp_path: pathlib.Path) -> None:
    import pandas as pd

    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    loaders.CSV().save(df, tmp_path / "x.csv")
    assert loaders.CSV().load(tmp_path / "x.csv").equals(df)


def test_loaders_are_frozen_dataclasses_with_fingerprintable_config() -> None:
    for cls in (
        loaders.PathOnly,
        loaders.Text,
        loaders.JSON,
        loaders.JSONL,
        loaders.YAML,
        loaders.Pickle,
        loaders.CSV,
        loaders.MatplotlibFigure,
    ):
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[union-attr]
    assert loaders.CSV(sep=";") != loaders.CSV()
    assert hash(loaders.Pickle(protocol=4)) == hash(loaders.Pickle(protocol=4))


def test_import_pivot_is_cheap() -> None:
    code = (
        "import sys, pivot, pivot.loaders, pivot.outputs\n"
        "heavy = [m for m in ('pandas', 'matplotlib', 'rustworkx', 'pydantic', 'pivot._native')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert pivot.Dep is pivot.outputs.Dep and pivot.Pipeline.__name__ == 'Pipeline'\n"
        "assert pivot.StageParams.__name__ == 'StageParams'\n"
        "for name in pivot.__all__: getattr(pivot, name)\n"
    )
    src = pathlib.Path(__file__).resolve().parents[2] / "python"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(src)})


def test_markers() -> None:
    d = outputs.Dep(["a", "b"], loaders.Text())
    assert d.paths == ("a", "b") and d.container == "list"
    assert outputs.Dep(("a",), loaders.Text()).container == "tuple"
    assert outputs.Dep("a", loaders.Text()).container == "single"
    m = outputs.Metric("m.json")
    assert m.cache is False and isinstance(m.writer, loaders.JSON)
    assert outputs.Out("x", loaders.Text()).cache is True
    inc = outputs.IncrementalOut("x.json", loaders.JSON())
    assert inc.writer == loaders.JSON()
