"""Normalized code digests: one parse per source file, and a deterministic code-object hash."""

from __future__ import annotations

import ast
import dis
import hashlib
import importlib.util
from collections.abc import Iterable
from types import CodeType

_DEF = (ast.FunctionDef, ast.AsyncFunctionDef)
_NOP = dis.opmap["NOP"]
# Opcodes that start / extend a `name.attr.attr` chain in bytecode (3.11 names).
_CHAIN_START = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF"})
_CHAIN_ATTR = frozenset({"LOAD_ATTR", "LOAD_METHOD"})


def digest(data: str | bytes) -> str:
    """128-bit blake2b hex digest: plenty for change detection, and fast."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _first_line(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> int:
    # A decorated function's co_firstlineno is its first decorator's line.
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def _strip_docstring(body: list[ast.stmt]) -> None:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        del body[0]


def _strip_annotations(node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    # Argument/return annotations are not evaluated by the function body; what pivot reads from
    # them (deps, outs, params) is recorded in the lock separately. Class-body annotations
    # (dataclass/pydantic fields) are behaviour and are kept.
    node.returns = None
    args = node.args
    for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
        if arg is not None:
            arg.annotation = None


class FileIndex:
    """Every `def` and `class` statement of one source file, by qualified name, normalized."""

    def __init__(self, tree: ast.Module) -> None:
        self.defs: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]] = {}
        _strip_docstring(tree.body)
        self._walk(tree.body, "")

    @classmethod
    def parse(cls, path: str) -> FileIndex | None:
        """Parse `path`, or None when it cannot be read or parsed."""
        try:
            with open(path, "rb") as f:
                source = importlib.util.decode_source(f.read())
            tree = ast.parse(source, filename=path)
        except (OSError, SyntaxError, ValueError, UnicodeError):
            return None
        return cls(tree)

    def _walk(self, body: list[ast.stmt], prefix: str) -> None:
        # Defs are statements, so only statement lists need walking (not every expression).
        for node in body:
            if isinstance(node, (*_DEF, ast.ClassDef)):
                qualname = prefix + node.name
                self.defs.setdefault(qualname, []).append(node)
                _strip_docstring(node.body)
                if isinstance(node, _DEF):
                    _strip_annotations(node)
                    self._walk(node.body, qualname + ".<locals>.")
                else:
                    self._walk(node.body, qualname + ".")
                continue
            for field in ("body", "orelse", "finalbody"):
                sub = getattr(node, field, None)
                if isinstance(sub, list):
                    self._walk(sub, prefix)
            for handler in getattr(node, "handlers", ()):
                self._walk(handler.body, prefix)
            for case in getattr(node, "cases", ()):
                self._walk(case.body, prefix)

    def function(
        self, qualname: str, firstlineno: int
    ) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """The def of `qualname` starting at `firstlineno` (None if the file changed since)."""
        for node in self.defs.get(qualname, ()):
            if isinstance(node, _DEF) and _first_line(node) == firstlineno:
                return node
        return None

    def classes(self, qualname: str) -> list[ast.ClassDef]:
        """Every class statement defining `qualname` (usually one)."""
        return [n for n in self.defs.get(qualname, ()) if isinstance(n, ast.ClassDef)]


def dump(nodes: Iterable[ast.AST]) -> str:
    """Canonical text of normalized nodes: no positions, no comments, no formatting."""
    return "\n".join(ast.dump(n, annotate_fields=True, include_attributes=False) for n in nodes)


class _RefCollector(ast.NodeVisitor):
    def __init__(self) -> None:
        self.refs: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        self.refs.add(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        parts: list[str] = []
        cur: ast.expr = node
        while isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            cur = cur.value
        if isinstance(cur, ast.Name):
            self.refs.add(".".join([cur.id, *reversed(parts)]))
        else:
            self.visit(cur)


def node_refs(nodes: Iterable[ast.AST]) -> set[str]:
    """Every name and `name.attr.attr` chain the nodes mention."""
    collector = _RefCollector()
    for node in nodes:
        collector.visit(node)
    return collector.refs


def function_refs(node: ast.FunctionDef | ast.AsyncFunctionDef, code: CodeType) -> list[str]:
    """References of a def: body names the code loads as globals/free vars, plus decorators and
    default expressions (evaluated in the enclosing scope). Locals are filtered out."""
    names = code_names(code)
    body = {r for r in node_refs(node.body) if r.split(".", 1)[0] in names}
    outer = node_refs([*node.decorator_list, *node.args.defaults])
    outer |= node_refs(d for d in node.args.kw_defaults if d is not None)
    return sorted(body | outer)


def code_names(code: CodeType) -> set[str]:
    """Global/attribute and free-variable names loaded anywhere in `code` and nested code."""
    names = set(code.co_names) | set(code.co_freevars)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= code_names(const)
    return names


def code_refs(code: CodeType) -> set[str]:
    """Name and attribute chains loaded by bytecode (for code without source)."""
    refs: set[str] = set()
    chain: list[str] | None = None
    for ins in dis.get_instructions(code):
        if ins.opname in _CHAIN_START:
            if chain:
                refs.add(".".join(chain))
            chain = [str(ins.argval)]
        elif ins.opname in _CHAIN_ATTR and chain is not None:
            chain.append(str(ins.argval))
        else:
            if chain:
                refs.add(".".join(chain))
            chain = None
    if chain:
        refs.add(".".join(chain))
    for const in code.co_consts:
        if isinstance(const, CodeType):
            refs |= code_refs(const)
    return refs


def _const_repr(value: object) -> str:
    if isinstance(value, CodeType):
        return "code(" + code_repr(value) + ")"
    if isinstance(value, tuple):
        return "(" + ",".join(_const_repr(v) for v in value) + ")"
    if isinstance(value, frozenset):
        return "frozenset(" + ",".join(sorted(_const_repr(v) for v in value)) + ")"
    # Code constants are literals (None, bool, int, float, complex, str, bytes, Ellipsis):
    # their repr has no addresses.
    return f"{type(value).__name__}:{value!r}"


def code_repr(code: CodeType, skip_doc: bool = False) -> str:
    """Process-independent text of a code object: bytecode, names and constants, recursively,
    without file names or line numbers (NOPs kept only for line events are dropped)."""
    raw = code.co_code  # 3.11: de-specialized, inline caches zeroed
    ops = bytes(b for i in range(0, len(raw), 2) if raw[i] != _NOP for b in raw[i : i + 2])
    consts = code.co_consts[1:] if skip_doc else code.co_consts
    return "|".join(
        [
            code.co_name,
            f"{code.co_argcount},{code.co_posonlyargcount},{code.co_kwonlyargcount},{code.co_flags}",
            ops.hex(),
            ",".join(code.co_names),
            ",".join(code.co_varnames),
            ",".join(code.co_freevars),
            ",".join(code.co_cellvars),
            ",".join(_const_repr(c) for c in consts),
        ]
    )


__all__ = [
    "FileIndex",
    "code_names",
    "code_refs",
    "code_repr",
    "digest",
    "dump",
    "function_refs",
    "node_refs",
]
