"""In-process checks of the walker on constructs that need no project: values, cycles, code."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from pivot.exceptions import FingerprintWarning
from pivot.fingerprint import function_fingerprint
from pivot.fingerprint.ast_normalize import FileIndex, code_repr, digest, dump


def _exec_module(tmp_path: Path, name: str, source: str) -> dict[str, Any]:
    """Define a module from a real file (so it has source) without importing it by name."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    namespace: dict[str, Any] = {"__name__": name, "__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec", dont_inherit=True), namespace)
    return namespace


def _exec_string(source: str, name: str = "gen") -> Any:
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(source), namespace)
    return namespace[name]


def test_exec_code_is_hashed_by_code_not_identity() -> None:
    a = _exec_string("def gen(x):\n    return x * 7\n")
    b = _exec_string("\n\n# other lines\ndef gen(x):\n    return (x *\n  7)\n")
    c = _exec_string("def gen(x):\n    return x * 8\n")
    assert a is not b
    assert function_fingerprint(a) == function_fingerprint(b)
    assert function_fingerprint(a) != function_fingerprint(c)
    text = code_repr(a.__code__)
    assert "0x" not in text and "<string>" not in text


def test_lambdas_are_told_apart_and_stable(tmp_path: Path) -> None:
    ns = _exec_module(
        tmp_path, "lam", "f = lambda x: x + 1\ng = lambda x: x + 2\nh = (\n    lambda x: x + 1\n)\n"
    )
    assert function_fingerprint(ns["f"]) != function_fingerprint(ns["g"])
    assert function_fingerprint(ns["f"]) == function_fingerprint(ns["h"])


def test_self_referencing_values_terminate(tmp_path: Path) -> None:
    ns = _exec_module(
        tmp_path,
        "cyc",
        """
        LOOP = []
        LOOP.append(LOOP)
        TABLE = {}
        TABLE["self"] = TABLE
        def f():
            return LOOP, TABLE, f
        """,
    )
    manifest = function_fingerprint(ns["f"])
    assert "obj:cyc.LOOP" in manifest and "obj:cyc.TABLE" in manifest


def test_values_by_value(tmp_path: Path) -> None:
    source = """
        import enum, dataclasses, pathlib, re, types
        class Mode(enum.Enum):
            A = "a"
        @dataclasses.dataclass
        class Box:
            size: int
            items: list
        class Plain:
            def __init__(self, k):
                self.k = k
        BOX = Box(3, [1, 2])
        PLAIN = Plain({KEY})
        NS = types.SimpleNamespace(a=1)
        PATH = pathlib.Path("data/x.csv")
        PAT = re.compile("a+b")
        MODE = Mode.A
        FROZEN = frozenset({{"b", "a"}})
        def f():
            return BOX, PLAIN, NS, PATH, PAT, MODE, FROZEN
        """
    one = function_fingerprint(_exec_module(tmp_path, "vals", source.format(KEY=1))["f"])
    two = function_fingerprint(_exec_module(tmp_path, "vals", source.format(KEY=2))["f"])
    assert {k for k in one if one[k] != two.get(k)} == {"obj:vals.PLAIN"}
    assert "const:vals.FROZEN" in one and "const:vals.MODE" in one
    assert not any(k.startswith("unknown:") for k in one)


def test_unknown_value_warns_and_never_crashes(tmp_path: Path) -> None:
    ns = _exec_module(
        tmp_path,
        "unk",
        """
        import threading
        class Weird:
            def __getattr__(self, name):
                raise RuntimeError("no attributes here")
            __slots__ = ()
        OBJ = Weird()
        LOCKS = {"a": threading.Lock()}
        def f():
            return OBJ, LOCKS
        """,
    )
    with pytest.warns(FingerprintWarning) as record:
        manifest = function_fingerprint(ns["f"])
    assert "unknown:unk.LOCKS" in manifest
    assert any("unk.LOCKS" in str(w.message) for w in record)


def test_partial_bound_method_and_wrapped_library_decorator(tmp_path: Path) -> None:
    source = """
        import functools
        def helper(a, b=1):
            return a + b
        class Runner:
            def run(self):
                return {N}
        P = functools.partial(helper, 2, b=3)
        RUN = Runner().run
        @functools.lru_cache(maxsize=None)
        def cached(x):
            return helper(x) * {N}
        def f():
            return P(), RUN(), cached(1)
        """
    one = function_fingerprint(_exec_module(tmp_path, "pbw", source.format(N=1))["f"])
    two = function_fingerprint(_exec_module(tmp_path, "pbw", source.format(N=2))["f"])
    assert {
        "obj:pbw.P",
        "obj:pbw.RUN",
        "class:pbw.Runner",
        "func:pbw.helper",
        "func:pbw.cached",
    } <= set(one)
    assert {k for k in one if one[k] != two[k]} == {
        "class:pbw.Runner",
        "func:pbw.Runner.run",
        "func:pbw.cached",
    }


def test_closure_cells_and_factories(tmp_path: Path) -> None:
    ns = _exec_module(
        tmp_path,
        "fac",
        """
        def make(k):
            def inner(x):
                return x + k
            return inner
        A = make(1)
        B = make(2)
        def f():
            return A(1) + B(1)
        """,
    )
    manifest = function_fingerprint(ns["f"])
    # Two closures of one factory: two numbered entries with different digests.
    assert manifest["func:fac.make.<locals>.inner"] != manifest["func:fac.make.<locals>.inner#2"]


def test_index_normalizes_docstrings_comments_and_annotations(tmp_path: Path) -> None:
    a = tmp_path / "a.py"
    b = tmp_path / "b.py"
    a.write_text('def f(x: int) -> int:\n    """Doc."""\n    return x + 1  # c\n')
    b.write_text("\n\ndef f(x):\n\n    return (x +\n            1)\n")
    ia, ib = FileIndex.parse(str(a)), FileIndex.parse(str(b))
    assert ia is not None and ib is not None
    na, nb = ia.function("f", 1), ib.function("f", 3)
    assert na is not None and nb is not None
    assert digest(dump([na])) == digest(dump([nb]))
    assert FileIndex.parse(str(tmp_path / "missing.py")) is None


def test_builtin_and_library_only_function() -> None:
    import json

    assert function_fingerprint(len) == {
        "obj:builtins.len": function_fingerprint(len)["obj:builtins.len"]
    }
    assert list(function_fingerprint(json.dumps)) == ["obj:json.dumps"]


def test_in_file_enum_dataclass_and_class_hierarchy(tmp_path: Path) -> None:
    ns = _exec_module(
        tmp_path,
        "hier",
        """
        import dataclasses, enum
        class Base:
            def go(self):
                return 1
        class Child(Base):
            pass
        class Color(enum.Enum):
            RED = 1
        @dataclasses.dataclass(frozen=True)
        class Cfg:
            n: int = 1
        def f():
            return Child().go(), Color.RED, Cfg()
        """,
    )
    manifest = function_fingerprint(ns["f"])
    assert {"class:hier.Base", "class:hier.Child", "class:hier.Color", "class:hier.Cfg"} <= set(
        manifest
    )


def test_no_warning_for_plain_project_code(tmp_path: Path) -> None:
    ns = _exec_module(
        tmp_path,
        "quiet",
        "import logging\nLOG = logging.getLogger('x')\nLOCK_FREE = 1\ndef f():\n    LOG.info(LOCK_FREE)\n",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", FingerprintWarning)
        manifest = function_fingerprint(ns["f"])
    assert "obj:quiet.LOG" in manifest
