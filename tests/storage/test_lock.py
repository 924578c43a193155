"""Lock files: canonical bytes, round-trip, golden file, and errors naming file and field."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivot import _native
from pivot.exceptions import LockFileError, SchemaVersionError, UnsafePathError
from pivot.storage.lock import lock_path, read_lock, write_lock
from pivot.types import LockData

GOLDEN = Path(__file__).parent / "golden" / "train.lock"
H1 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
H2 = "0" * 63 + "1"


def sample() -> LockData:
    return {
        "schema_version": 1,
        "stage": "train",
        "code": {"func:pkg.mod.train": "9f86d081884c7d65", "const:pkg.mod.LIMIT": "00ff"},
        "params": {
            "lr": 0.001,
            "layers": [64, 32],
            "name": "résumé\n",
            "opt": {"b": None, "a": True},
        },
        "deps": {"data/train.csv": H1, "data/b c.csv": H2},
        "outs": {
            "models/model.pkl": {
                "hash": H2,
                "size": 10,
                "nfiles": 1,
                "is_dir": False,
                "cache": True,
            },
            "plots/": {"hash": H1, "size": 300, "nfiles": 3, "is_dir": True, "cache": True},
            "metrics.json": {"hash": H1, "size": 5, "nfiles": 1, "is_dir": False, "cache": False},
        },
    }


def test_golden_file(tmp_path: Path) -> None:
    p = lock_path(tmp_path, "train")
    write_lock(p, sample())
    assert p.read_bytes() == GOLDEN.read_bytes()
    assert read_lock(GOLDEN) == sample()


def test_absent_lock_reads_as_none(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "nope.lock") is None


def test_lock_path_rejects_unsafe_stage_names(tmp_path: Path) -> None:
    for bad in ["", "..", "a/b", "a\0b"]:
        with pytest.raises(UnsafePathError):
            lock_path(tmp_path, bad)


def test_key_order_does_not_change_bytes() -> None:
    data = sample()
    shuffled: dict[str, Any] = {}
    keys = list(data)
    random.Random(1).shuffle(keys)
    for k in keys:
        v = copy.deepcopy(data[k])  # type: ignore[literal-required]
        if isinstance(v, dict):
            v = dict(reversed(list(v.items())))
        shuffled[k] = v
    a = _native.lock_encode(orjson.dumps(data).decode())
    b = _native.lock_encode(orjson.dumps(shuffled).decode())
    assert a == b


SAFE_NAME = st.text(
    st.characters(codec="utf-8", exclude_characters="/\0\n\r"), min_size=1, max_size=12
).filter(lambda s: s not in (".", ".."))
REL_PATH = st.lists(SAFE_NAME, min_size=1, max_size=3).map("/".join)
HEX64 = st.text("0123456789abcdef", min_size=64, max_size=64)
JSON_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=20)
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
OUT = st.fixed_dictionaries(
    {
        "hash": HEX64,
        "size": st.integers(0, 2**63 - 1),
        "nfiles": st.integers(0, 2**40),
        "is_dir": st.booleans(),
        "cache": st.booleans(),
    }
)
LOCKS = st.fixed_dictionaries(
    {
        "schema_version": st.just(1),
        "stage": st.text(
            st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]),
            min_size=1,
            max_size=20,
        ),
        "code": st.dictionaries(SAFE_NAME, st.text("0123456789abcdef", min_size=1, max_size=64)),
        "params": st.dictionaries(
            st.text(st.characters(codec="utf-8"), max_size=10), JSON, max_size=5
        ),
        "deps": st.dictionaries(REL_PATH, HEX64, max_size=5),
        "outs": st.dictionaries(REL_PATH, OUT, max_size=5),
    }
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=LOCKS)
def test_round_trip_and_byte_stable(tmp_path: Path, data: dict[str, Any]) -> None:
    p = tmp_path / "s.lock"
    write_lock(p, data)  # type: ignore[arg-type]
    raw = p.read_bytes()
    got = read_lock(p)
    assert got is not None
    assert got == data
    assert _native.lock_encode(orjson.dumps(got).decode()) == raw  # same state, same bytes
    # Valid JSON and, read as YAML, the same data; one entry per line.
    assert json.loads(raw) == data
    assert yaml.safe_load(raw) == data
    assert raw.endswith(b"}\n")
    maps = [data[k] for k in ("code", "params", "deps", "outs")]
    assert raw.count(b"\n") == 8 + sum(len(m) + 1 for m in maps if m)


def _write_raw(tmp_path: Path, text: str) -> Path:
    p = tmp_path / ".pivot" / "stages" / "train.lock"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def _good_text() -> str:
    return json.dumps(sample(), indent=2)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("deps"), "deps: missing"),
        (lambda d: d.update(extra=1), "extra: unknown field"),
        (
            lambda d: d["outs"]["plots/"].update(hash="ABC"),
            'outs["plots/"].hash: not a 64-hex blake3 hash',
        ),
        (lambda d: d["outs"]["plots/"].pop("size"), 'outs["plots/"].size: missing'),
        (lambda d: d["outs"]["plots/"].update(nfiles=-1), 'outs["plots/"].nfiles'),
        (lambda d: d["deps"].update({"../up.csv": H1}), "deps[\"../up.csv\"]: path contains '..'"),
        (lambda d: d["deps"].update({"/etc/passwd": H1}), 'deps["/etc/passwd"]: path is absolute'),
        (lambda d: d["deps"].update({"a\nb": H1}), "newline"),
        (lambda d: d["deps"].update({"a\0b": H1}), "NUL"),
        (lambda d: d["deps"].update({"x": "short"}), 'deps["x"]: not a 64-hex blake3 hash'),
        (lambda d: d.update(stage=""), "stage:"),
        (lambda d: d.update(code=[]), "code: expected a JSON object"),
        (lambda d: d.update(schema_version=0), "schema_version"),
        (lambda d: d.update(schema_version="1"), "schema_version"),
    ],
)
def test_malformed_field_names_file_and_field(tmp_path: Path, edit: Any, field: str) -> None:
    d = json.loads(_good_text())
    edit(d)
    p = _write_raw(tmp_path, json.dumps(d))
    with pytest.raises(LockFileError) as ei:
        read_lock(p)
    assert not isinstance(ei.value, SchemaVersionError)
    assert str(p) in str(ei.value)
    assert field in str(ei.value)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("", "empty"),
        (_good_text()[:-40], "not valid JSON"),
        ("<<<<<<< HEAD\n" + _good_text() + "\n=======\n{}\n>>>>>>> other\n", "conflict marker"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_malformed_content_names_file(tmp_path: Path, content: str, why: str) -> None:
    p = _write_raw(tmp_path, content)
    with pytest.raises(LockFileError, match=why) as ei:
        read_lock(p)
    assert str(p) in str(ei.value)


def test_invalid_utf8_and_oversize(tmp_path: Path) -> None:
    p = _write_raw(tmp_path, "")
    p.write_bytes(b'{"stage": "\xff"}')
    with pytest.raises(LockFileError, match="UTF-8"):
        read_lock(p)
    p.write_bytes(b" " * (16 * 1024 * 1024 + 1))
    with pytest.raises(LockFileError, match="larger than"):
        read_lock(p)


def test_newer_schema_says_upgrade(tmp_path: Path) -> None:
    d = json.loads(_good_text())
    d["schema_version"] = 2
    d["new_field"] = {}
    p = _write_raw(tmp_path, json.dumps(d))
    with pytest.raises(
        SchemaVersionError, match=r"written by a newer pivot \(schema 2\); upgrade pivot"
    ) as ei:
        read_lock(p)
    assert str(p) in str(ei.value)


def test_write_refuses_invalid_data_and_keeps_old_file(tmp_path: Path) -> None:
    p = tmp_path / "train.lock"
    write_lock(p, sample())
    bad = sample()
    bad["deps"] = {"../x": H1}
    with pytest.raises(LockFileError, match=str(p)):
        write_lock(p, bad)
    assert p.read_bytes() == GOLDEN.read_bytes()
