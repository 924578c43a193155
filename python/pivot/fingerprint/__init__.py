"""Code fingerprinting (docs/architecture.md, "Fingerprinting"): a stage's code as a manifest of named entries → hex digests.

The manifest lets `--explain` say which helper changed. Entry names:

- `func:<module>.<qualname>`  a user function: its normalized AST (docstrings, comments,
  formatting and argument annotations dropped; names kept, since behaviour may depend on them)
  plus the current values of its defaults, closure cells and function attributes. Lambdas and
  code without source (exec) hash their code object instead (bytecode, names, constants —
  never addresses or line numbers). `<module>` is the module the code was defined in (its
  globals' `__name__`), `<qualname>` the code's own (so a `functools.wraps` wrapper keeps its
  name). A second distinct function with the same name gets `#2`, `#3`… in walk order.
- `class:<module>.<qualname>`  a user class: its class statement(s) with every method, plus
  its plain class attributes as they are now (or, without source, its methods' code).
- `const:<module>.<name>`  a module global or module attribute holding plain data (literals,
  dict/list/tuple/set/frozenset of them, enums), by value; sets sorted, dicts in order.
- `obj:<module>.<name>`  a structured value by value: dataclass, pydantic or user-class
  instance, `functools.partial`, bound method, containers holding functions…
- `ref:<module>.<name>`  a name bound to a library callable under another name
  (`from json import dumps as encode`), so rebinding it is a change.
- `unknown:<module>.<name>`  a value (or part of one) that cannot be described: the entry
  records its type only and a `FingerprintWarning` is emitted.
- `params:<module>.<qualname>`  the stage's StageParams class: field defaults (the class code
  is its `class:` entry).
- `loader:dep:<path>`, `loader:out:<path>`  the reader/writer of each dep/out path: class and
  configuration (dataclass fields); a user loader class also gets its `class:` entry.

Reach is transitive over user code only (not stdlib, site-packages or pivot itself): globals
and `module.attr.attr` chains named in the code, closure cells, defaults, `functools.partial`,
`__wrapped__` chains (wrapper and wrapped), the function that made a `<locals>` function,
classes with their bases and metaclass. Digests are 128-bit blake2b.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pivot.fingerprint.cache import FingerprintCache
from pivot.fingerprint.walker import Walker

if TYPE_CHECKING:
    from pivot.pipeline.stage import StageInfo


def function_fingerprint(
    func: Callable[..., Any], cache: FingerprintCache | None = None
) -> dict[str, str]:
    """The manifest of a function and everything it reaches."""
    walker = Walker(cache if cache is not None else FingerprintCache())
    walker.visit_root(func)
    return dict(sorted(walker.manifest.items()))


def stage_fingerprint(stage: StageInfo, cache: FingerprintCache | None = None) -> dict[str, str]:
    """The manifest of a stage: its function, params class, and the loaders of deps and outs."""
    walker = Walker(cache if cache is not None else FingerprintCache())
    walker.visit_root(stage.func)
    if stage.params is not None:
        walker.visit_params(type(stage.params), getattr(stage.func, "__globals__", None))
    for dep in stage.deps:
        for path in dep.paths:
            walker.visit_loader("dep", path, dep.reader)
    for out in stage.outs:
        walker.visit_loader("out", out.path, out.writer)
    return dict(sorted(walker.manifest.items()))


__all__ = ["FingerprintCache", "function_fingerprint", "stage_fingerprint"]
