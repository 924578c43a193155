"""Which code is "user code" (fingerprinted) and which is library code (not): docs/architecture.md, "Fingerprinting"."""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from types import FunctionType

_PIVOT_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_PACKAGE_DIRS = frozenset({"site-packages", "dist-packages"})


def _library_roots() -> tuple[str, ...]:
    roots = {_PIVOT_DIR}  # pivot itself is library code even when installed editable
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            roots.add(os.path.realpath(paths[key]))
    try:
        roots.update(os.path.realpath(p) for p in site.getsitepackages())
        roots.add(os.path.realpath(site.getusersitepackages()))
    except AttributeError:  # site may be stripped down in embedded interpreters
        pass
    return tuple(sorted(roots))


_ROOTS = _library_roots()
_file_memo: dict[str, bool] = {}


def is_library_file(filename: str) -> bool:
    """True for stdlib, site-packages, pivot's own files and frozen modules."""
    known = _file_memo.get(filename)
    if known is not None:
        return known
    if filename.startswith("<"):
        result = filename.startswith("<frozen")
    else:
        real = os.path.realpath(filename)
        result = any(real == r or real.startswith(r + os.sep) for r in _ROOTS) or bool(
            _PACKAGE_DIRS.intersection(real.split(os.sep))
        )
    _file_memo[filename] = result
    return result


def _module_is_library(module_name: str | None) -> bool | None:
    """Library-ness from the module, or None when the module does not tell."""
    if module_name is None:
        return None
    if module_name in sys.builtin_module_names:
        return True
    module = sys.modules.get(module_name)
    if module is None:
        return None
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        return is_library_file(file)
    spec = getattr(module, "__spec__", None)
    if spec is not None and getattr(spec, "origin", None) in ("built-in", "frozen"):
        return True
    return None


def is_user_function(func: FunctionType) -> bool:
    """A Python function whose code lives outside the library roots (exec'd code included)."""
    filename = func.__code__.co_filename
    if filename.startswith("<"):
        if filename.startswith("<frozen"):
            return False
        # exec'd code (`<string>`): library only when its module says so (e.g. dataclass
        # methods generated for a library class).
        return not _module_is_library(func.__globals__.get("__name__"))
    return not is_library_file(filename)


def is_user_class(cls: type) -> bool:
    """A class defined in user code (by its module, else by its methods' code)."""
    verdict = _module_is_library(getattr(cls, "__module__", None))
    if verdict is not None:
        return not verdict
    prefix = cls.__qualname__ + "."
    for value in vars(cls).values():
        func = getattr(value, "__func__", value)  # staticmethod / classmethod
        # Only methods written in this class body (not e.g. Enum.__new__ copied in).
        if isinstance(func, FunctionType) and func.__code__.co_qualname.startswith(prefix):
            return is_user_function(func)
    # Module not importable (e.g. pipeline.py run by path) and no methods: assume user code.
    return True


__all__ = ["is_library_file", "is_user_class", "is_user_function"]
