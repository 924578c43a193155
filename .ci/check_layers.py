#!/usr/bin/env python3
"""Layering checks run by `make lint` (stdlib only).

--rust    The Rust modules form no import cycle. Every `crate::…`, `super::…` and `self::…`
          path under rust/ (use trees included, comments and strings ignored) is an edge from the
          module it appears in to the module it names. Nodes are the top-level modules and the
          submodules of cache/ (docs/architecture.md, "Module map"); other nested files (tests,
          codecs) belong to their parent. A cycle is printed `a -> b -> a`.
--python  Only python/pivot/storage/ (and the stub `_native.pyi`) import `pivot._native`: the
          rest of the package goes through the storage layer.

No flag runs both. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUST = ROOT / "rust"
PKG = ROOT / "python" / "pivot"
# Top-level modules whose submodules are layers of their own.
SPLIT = {"cache"}

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def strip_code(src: str) -> str:
    """`src` with comments, string and char literals blanked (line breaks kept)."""
    out: list[str] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if src[i] == "\n" else "")
                    i += 1
            out.append(" ")
        elif (m := re.compile(r'b?r(#*)"').match(src, i)) and (i == 0 or not _ident(src[i - 1])):
            end = '"' + m.group(1)
            j = src.find(end, m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * src.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append('""' + "\n" * src.count("\n", i, j))
            i = j + 1
        elif c == "'" and (m := re.compile(r"'(\\.[^']*|[^\\'])'").match(src, i)):
            out.append("' '")
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _ident(c: str) -> bool:
    return c.isalnum() or c == "_"


def file_module(path: Path) -> list[str]:
    """Module path of a source file: rust/cache/insert.rs -> ["cache", "insert"]."""
    parts = list(path.relative_to(RUST).with_suffix("").parts)
    if parts[-1] == "mod" or parts == ["lib"]:
        parts = parts[:-1]
    return parts


def node_of(path: list[str]) -> str | None:
    """The layer a module path belongs to (None: the crate root, lib.rs)."""
    if not path:
        return None
    if path[0] in SPLIT and len(path) > 1 and (RUST / path[0] / f"{path[1]}.rs").exists():
        return f"{path[0]}::{path[1]}"
    if (RUST / f"{path[0]}.rs").exists() or (RUST / path[0] / "mod.rs").exists():
        return path[0]
    return None


def expand(text: str, pos: int) -> list[list[str]]:
    """The paths of the path or use tree starting at `pos` (after `crate::` etc.)."""

    def tree(i: int) -> tuple[list[list[str]], int]:
        i = skip_ws(i)
        if i < len(text) and text[i] == "{":
            paths: list[list[str]] = []
            i += 1
            while True:
                i = skip_ws(i)
                if i >= len(text) or text[i] == "}":
                    return paths, i + 1
                sub, i = tree(i)
                paths += sub
                i = skip_ws(i)
                if i < len(text) and text[i] == ",":
                    i += 1
        m = IDENT.match(text, i)
        if not m:
            return [[]], i
        name, i = m.group(), m.end()
        j = skip_ws(i)
        if text.startswith("::", j):
            sub, i = tree(j + 2)
            return [[name, *s] for s in sub], i
        return [[name]], i

    def skip_ws(i: int) -> int:
        while i < len(text) and text[i].isspace():
            i += 1
        return i

    return tree(pos)[0]


MOD_OPEN = re.compile(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{")
PATH_START = re.compile(r"(?<![A-Za-z0-9_:])((?:super|self|crate)(?:\s*::\s*super)*)\s*::")


def references(path: Path) -> set[str]:
    """Layers named from `path` (its own layer excluded)."""
    text = strip_code(path.read_text(encoding="utf-8"))
    base = file_module(path)
    # Inline `mod x { … }` blocks shift what `super`/`self` mean inside them.
    opens = [(m.end() - 1, m.group(1)) for m in MOD_OPEN.finditer(text)]
    spans: list[tuple[int, int, str]] = []
    for start, name in opens:
        depth, j = 0, start
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        spans.append((start, j, name))
    own = node_of(base)
    found: set[str] = set()
    for m in PATH_START.finditer(text):
        head = [s.strip() for s in m.group(1).split("::")]
        here = base + [name for s, e, name in spans if s < m.start() < e]
        if head[0] == "crate":
            prefix: list[str] = []
        else:
            prefix = list(here)
            for h in head:
                if h == "super":
                    prefix = prefix[:-1]
        for p in expand(text, m.end()):
            full = prefix + [s for s in p if s != "self"]
            target = node_of(full)
            if target is not None and target != own:
                found.add(target)
    return found


def rust_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for f in sorted(RUST.rglob("*.rs")):
        node = node_of(file_module(f))
        if node is None:
            continue
        graph.setdefault(node, set()).update(references(f))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a closed path [a, b, …, a], or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def check_rust() -> bool:
    graph = rust_graph()
    cycle = find_cycle(graph)
    if cycle:
        print("rust: module import cycle: " + " -> ".join(cycle), file=sys.stderr)
        return False
    return True


NATIVE_IMPORT = re.compile(
    r"^[ \t]*(?:from\s+pivot\s+import\s+(?:\(\s*)?(?:[\w\s,]*\b)?_native\b"
    r"|from\s+pivot\._native\b|import\s+pivot\._native\b|from\s+\.+\s+import\s+.*\b_native\b|from\s+\.+_native\b)",
    re.MULTILINE,
)


def check_python() -> bool:
    bad: list[str] = []
    storage = PKG / "storage"
    for f in sorted(PKG.rglob("*.py")):
        if storage in f.parents:
            continue
        text = f.read_text(encoding="utf-8")
        for m in NATIVE_IMPORT.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            bad.append(f"{f.relative_to(ROOT)}:{line}: {m.group().strip()}")
    for b in bad:
        print(f"python: pivot._native imported outside pivot.storage: {b}", file=sys.stderr)
    return not bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rust", action="store_true", help="only the Rust module cycle check")
    ap.add_argument("--python", action="store_true", help="only the pivot._native import check")
    args = ap.parse_args()
    both = not (args.rust or args.python)
    ok = True
    if args.rust or both:
        ok &= check_rust()
    if args.python or both:
        ok &= check_python()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
