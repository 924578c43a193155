"""Key/value comparisons shared by `metrics` and `params`: flattening, diff rows, and their
rendering as a terminal table, Markdown, or a JSON document."""

from __future__ import annotations

import io
import math
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

MISSING: Any = object()  # a key absent on one side (printed "-", JSON null/absent)
DEFAULT_PRECISION = 5


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys (`{"a": {"b": 1}}` -> `{"a.b": 1}`); lists stay values.

    A document that is not an object is one value under the key "" (shown as the file alone).
    """
    if not isinstance(value, Mapping):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, inner in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(inner, Mapping) and inner:
            out.update(flatten(inner, name))
        else:
            out[name] = inner
    return out


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class DiffRow:
    group: str  # metric file path, or stage name for params
    key: str
    old: Any
    new: Any

    @property
    def changed(self) -> bool:
        if self.old is MISSING or self.new is MISSING:
            return self.old is not self.new
        return bool(type(self.old) is not type(self.new) or self.old != self.new)

    @property
    def delta(self) -> float | int | None:
        if is_number(self.old) and is_number(self.new):
            d = self.new - self.old
            return None if isinstance(d, float) and not math.isfinite(d) else d
        return None


def diff_rows(
    old: Mapping[str, Mapping[str, Any] | None],
    new: Mapping[str, Mapping[str, Any] | None],
    *,
    show_all: bool,
) -> list[DiffRow]:
    """Rows for every (group, key) of either side; unchanged rows only with `show_all`."""
    rows: list[DiffRow] = []
    for group in sorted(set(old) | set(new)):
        a = old.get(group) or {}
        b = new.get(group) or {}
        for key in sorted(set(a) | set(b)):
            row = DiffRow(group, key, a.get(key, MISSING), b.get(key, MISSING))
            if show_all or row.changed:
                rows.append(row)
    return rows


def fmt(value: Any, precision: int) -> str:
    """A value for a table cell: floats rounded to `precision` decimals, like DVC."""
    if value is MISSING or value is None:
        return "-" if value is MISSING else "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        rounded = round(value, precision)
        return repr(0.0 if rounded == 0 else rounded)
    if isinstance(value, int | str):
        return str(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def fmt_delta(row: DiffRow, precision: int) -> str:
    d = row.delta
    return "-" if d is None else fmt(d, precision)


def json_value(value: Any) -> Any:
    return None if value is MISSING else value


def diff_document(rows: Sequence[DiffRow]) -> dict[str, dict[str, dict[str, Any]]]:
    """`{group: {key: {"old", "new"[, "diff"]}}}` (absent side: null)."""
    doc: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        entry: dict[str, Any] = {"old": json_value(r.old), "new": json_value(r.new)}
        if r.delta is not None:
            entry["diff"] = r.delta
        doc.setdefault(r.group, {})[r.key] = entry
    return doc


def render(headers: Sequence[str], rows: Sequence[Sequence[str]], *, markdown: bool) -> None:
    """A table on stdout: rich (plain when not a terminal) or a Markdown table."""
    if markdown:
        sys.stdout.write(markdown_table(headers, rows))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for h in headers:
        table.add_column(h, overflow="fold", no_wrap=True)
    for r in rows:
        table.add_row(*r)
    tty = sys.stdout.isatty()
    # Off a terminal rich would wrap at 80 columns: give it room, and drop the padding.
    width = shutil.get_terminal_size().columns if tty else 100_000
    console = Console(file=io.StringIO(), width=width, force_terminal=tty)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    sys.stdout.write("".join(line.rstrip() + "\n" for line in text.splitlines()))
    sys.stdout.flush()


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("-" * (len(h) + 2) for h in headers) + "|")
    for r in rows:
        lines.append("| " + " | ".join(cell(c) for c in r) + " |")
    return "\n".join(lines) + "\n"
