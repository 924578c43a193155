"""YAML loading refuses aliases, python tags and oversize files, naming file and line."""

from __future__ import annotations

import pathlib
import time

import pytest

from pivot.exceptions import ConfigError
from pivot.yamlsafe import load_yaml, parse_yaml

BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
)


def test_plain_yaml(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "x.yaml"
    p.write_text("a: 1\nb: [x, 2.5, true, null]\nc: {d: e}\n")
    assert load_yaml(p) == {"a": 1, "b": ["x", 2.5, True, None], "c": {"d": "e"}}
    assert load_yaml(tmp_path / "x.yaml") == parse_yaml(p.read_text(), "x")


def test_alias_bomb_rejected_fast(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "bomb.yaml"
    p.write_text(BOMB)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as exc:
        load_yaml(p)
    assert time.perf_counter() - start < 1.0
    assert str(exc.value).startswith(f"{p}: line 1: ")
    assert "anchor" in str(exc.value)


def test_alias_without_anchor_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^f: line 2: .*alias"):
        parse_yaml("a: 1\nb: *x\n", "f")


def test_merge_keys_need_aliases_and_are_refused() -> None:
    with pytest.raises(ConfigError, match="anchor"):
        parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\n", "f")


@pytest.mark.parametrize(
    "text",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "x: !!python/object/apply:os.system ['touch {marker}']",
        "x: !!python/name:os.system",
        "x: !!python/object:pathlib.Path {{}}",
    ],
)
def test_python_tags_never_constructed(text: str, tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "executed"
    p = tmp_path / "evil.yaml"
    p.write_text(text.format(marker=marker))
    with pytest.raises(ConfigError, match=r"evil\.yaml: line 1: .*python"):
        load_yaml(p)
    assert not marker.exists()


def test_unknown_tag_is_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^f: line 1: "):
        parse_yaml("x: !custom 1\n", "f")


def test_oversize_file_names_file_and_limit(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "big.yaml"
    p.write_text("a: " + "x" * 2000 + "\n")
    with pytest.raises(ConfigError) as exc:
        load_yaml(p, max_bytes=1000)
    assert str(p) in str(exc.value) and "1000" in str(exc.value)
    assert load_yaml(p, max_bytes=None) == {"a": "x" * 2000}


def test_syntax_error_names_line() -> None:
    with pytest.raises(ConfigError, match=r"^f: line 2: mapping values"):
        parse_yaml("a: 1\n  b: 2\n", "f")


def test_duplicate_keys_refused() -> None:
    with pytest.raises(ConfigError, match="line 2: duplicate key 'a'"):
        parse_yaml("a: 1\na: 2\n", "f")


def test_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        load_yaml(tmp_path / "nope.yaml")
