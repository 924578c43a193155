"""YAML loading for pivot.yaml, params.yaml and the YAML loader: safe tags only, no aliases, size cap."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from pivot.exceptions import ConfigError

MAX_YAML_BYTES = 10 * 1024 * 1024  # pipeline/params files are small; a cap bounds memory and time


def _line(mark: Any) -> str:
    return f"line {mark.line + 1}: " if mark is not None else ""


class _NoAliasSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases at compose time and python tags outright.

    Refusing the first anchor or alias *event* means an alias bomb ("billion laughs") fails before
    any node is shared or expanded, in time linear in the bytes read so far.
    """

    source_name = "<yaml>"

    def _fail(self, mark: Any, message: str) -> ConfigError:
        return ConfigError(f"{self.source_name}: {_line(mark)}{message}")

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # unannotated in types-PyYAML
        if isinstance(event, yaml.AliasEvent):
            raise self._fail(event.start_mark, f"YAML aliases are not allowed (*{event.anchor})")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise self._fail(event.start_mark, f"YAML anchors are not allowed (&{anchor})")
        tag = getattr(event, "tag", None)
        if isinstance(tag, str) and tag.startswith("tag:yaml.org,2002:python/"):
            raise self._fail(event.start_mark, f"python tags are not allowed ({tag})")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise self._fail(key_node.start_mark, "mapping keys must be scalars") from None
            if duplicate:
                raise self._fail(key_node.start_mark, f"duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str | bytes, source_name: str) -> Any:
    """Parse YAML text safely; errors are ConfigError `<source>: line N: ...`."""
    loader = _NoAliasSafeLoader(text)
    loader.source_name = source_name
    try:
        return loader.get_single_data()
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{source_name}: {_line(mark)}{problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source_name}: invalid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source_name}: YAML is nested too deeply") from None
    finally:
        loader.dispose()


def load_yaml(path: str | os.PathLike[str], max_bytes: int | None = MAX_YAML_BYTES) -> Any:
    """Read and safely parse a YAML file, refusing files larger than `max_bytes`."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    if max_bytes is not None and len(data) > max_bytes:
        raise ConfigError(f"{p}: file is larger than the {max_bytes}-byte limit for YAML files")
    return parse_yaml(data, str(p))


def dump_yaml(value: Any) -> str:
    """Deterministic safe YAML text (sorted keys, block style, unicode kept)."""
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False, allow_unicode=True)
