"""Reference discovery: walk from a stage function to every user-code object it reaches."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import pathlib
import re
import sys
import types
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pivot.exceptions import FingerprintWarning
from pivot.fingerprint import scope
from pivot.fingerprint.ast_normalize import digest
from pivot.fingerprint.cache import FingerprintCache

_PRIMITIVES = (type(None), bool, int, float, complex, str, bytes)
# Library value types whose repr is canonical and address-free.
_REPR_TYPES = (
    datetime.date,
    datetime.time,
    datetime.timedelta,
    datetime.timezone,
    decimal.Decimal,
    fractions.Fraction,
    uuid.UUID,
    range,
    slice,
)
_BUILTIN_CALLABLES = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
)
_MAX_DEPTH = 64
# Class attributes that are bookkeeping, not behaviour.
_CLASS_SKIP = frozenset({"__dict__", "__weakref__", "__module__", "__qualname__", "__doc__"})


def _type_token(t: type) -> str:
    return f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', t.__name__)}"


def _callable_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or "?"
    return f"{module}.{qualname}"


class _Flags:
    """What a description turned out to contain."""

    __slots__ = ("plain", "unknown")

    def __init__(self) -> None:
        self.plain = True  # only literals, containers and enums
        self.unknown: set[str] = set()  # type tokens that could not be described


class Walker:
    """Builds one manifest; objects are visited once per walk (cycles terminate)."""

    def __init__(self, cache: FingerprintCache) -> None:
        self.cache = cache
        self.manifest: dict[str, str] = {}
        self._seen: set[int] = set()
        self._names: set[str] = set()
        self._alive: list[object] = []  # keeps visited objects alive so their ids stay unique
        self._stack: set[int] = set()  # values being described (cycle guard)

    # --- entries ---------------------------------------------------------------------------
    def _add(self, name: str, value: str) -> None:
        # Two distinct objects with one name (e.g. closures made by one factory): number them.
        key, n = name, 1
        while key in self.manifest:
            n += 1
            key = f"{name}#{n}"
        self.manifest[key] = value

    def _unknown(self, name: str, flags: _Flags, text: str) -> None:
        kinds = ", ".join(sorted(flags.unknown))
        self._add(f"unknown:{name}", digest(text))
        warnings.warn(
            f"pivot cannot fingerprint {name} (contains {kinds}); it is recorded as unknown "
            "and changes inside it will not be detected",
            FingerprintWarning,
            stacklevel=2,
        )

    def _first_visit(self, obj: object) -> bool:
        if id(obj) in self._seen:
            return False
        self._seen.add(id(obj))
        self._alive.append(obj)
        return True

    # --- roots -----------------------------------------------------------------------------
    def visit_root(self, func: Any) -> None:
        """The stage function (or any callable registered as one)."""
        if isinstance(func, types.FunctionType) and scope.is_user_function(func):
            self.visit_function(func)
        else:
            self.visit_named(_callable_name(func), func, force_entry=True)

    def visit_params(self, params_cls: type, ctx: Mapping[str, Any] | None) -> None:
        """A StageParams class: its code plus each field's default."""
        self.visit_class(params_cls, ctx)
        flags = _Flags()
        parts = []
        fields = getattr(params_cls, "model_fields", {})
        for name, field in fields.items():
            factory = getattr(field, "default_factory", None)
            if factory is not None:
                default = "factory=" + self.describe(factory, flags)
            elif field.is_required():
                default = "<required>"
            else:
                default = self.describe(field.default, flags)
            parts.append(f"{name}={default}")
        text = _type_token(params_cls) + "(" + ",".join(parts) + ")"
        name = _callable_name(params_cls)
        self._add(f"params:{name}", digest(text))
        if flags.unknown:
            self._unknown(name, flags, text)

    def visit_loader(self, role: str, path: str, loader: object) -> None:
        """A dep reader or out writer: its class (code, if user) and configuration."""
        flags = _Flags()
        text = self.describe(loader, flags)
        self._add(f"loader:{role}:{path}", digest(text))
        if flags.unknown:
            self._unknown(f"loader:{role}:{path}", flags, text)

    # --- functions and classes --------------------------------------------------------------
    def visit_function(self, func: types.FunctionType) -> None:
        if not self._first_visit(func) or not scope.is_user_function(func):
            return
        code = func.__code__
        # `functools.wraps` copies __module__/__qualname__ onto the wrapper: name the code by
        # where it was defined instead.
        name = f"{_function_module(func)}.{code.co_qualname}"
        info = None if code.co_name == "<lambda>" else self.cache.function_info(func)
        if info is None:
            # Lambdas (getsource cannot isolate one from its line) and code without source
            # (exec) are hashed by their code object: also blind to comments and formatting.
            doc = func.__doc__
            skip_doc = doc is not None and bool(code.co_consts) and code.co_consts[0] == doc
            info = self.cache.code_info(code, skip_doc)
        source_digest, refs = info

        flags = _Flags()
        parts = [source_digest]
        if func.__defaults__:
            parts.append("defaults=" + self.describe(func.__defaults__, flags))
        if func.__kwdefaults__:
            parts.append("kwdefaults=" + self.describe(func.__kwdefaults__, flags))
        closure: dict[str, Any] = {}
        for var, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
            try:
                closure[var] = cell.cell_contents
            except ValueError:  # empty cell: not yet assigned
                parts.append(f"{var}=<empty>")
                continue
            parts.append(f"{var}=" + self.describe(closure[var], flags))
        for attr, value in sorted(vars(func).items()):
            if not attr.startswith("__"):
                parts.append(f"attr:{attr}=" + self.describe(value, flags))
        text = "\n".join(parts)
        self._add(f"func:{name}", digest(text))
        if flags.unknown:
            self._unknown(name, flags, text)

        ctx = func.__globals__
        for ref in refs:
            self._resolve(ref, ctx, closure)
        wrapped = vars(func).get("__wrapped__")
        if wrapped is not None:
            self.describe(wrapped, _Flags())
        if ".<locals>." in code.co_qualname:
            # A wrapper/closure made by a decorator or factory: its maker's code matters too.
            outer_path = code.co_qualname.split(".<locals>.", 1)[0].split(".")
            outer: Any = ctx.get(outer_path[0])
            for part in outer_path[1:]:
                outer = getattr(outer, "__dict__", {}).get(part)
            if isinstance(outer, types.FunctionType | type):
                self.describe(outer, _Flags())

    def visit_class(self, cls: type, ctx: Mapping[str, Any] | None = None) -> None:
        if not self._first_visit(cls) or not scope.is_user_class(cls):
            return
        name = _callable_name(cls)
        globs, file = _class_context(cls, ctx)
        info = self.cache.class_info(cls.__qualname__, file) if file else None
        flags = _Flags()
        if info is not None:
            parts = [info[0]]
            refs: tuple[str, ...] = info[1]
            # Plain class attributes as they are now (they may be rebound after the class body).
            # Dunders are machinery (and pydantic's are large), so they are skipped.
            for attr, value in vars(cls).items():
                if not attr.startswith("__"):
                    plain = _plain(value)
                    if plain is not None:
                        parts.append(f"{attr}={plain}")
        else:
            parts, refs = self._class_without_source(cls, flags)
        text = "\n".join(parts)
        self._add(f"class:{name}", digest(text))
        if flags.unknown:
            self._unknown(name, flags, text)
        for base in cls.__mro__[1:]:
            self.describe(base, _Flags())
        meta = type(cls)
        if meta is not type:
            self.describe(meta, _Flags())
        if globs is not None:
            for ref in refs:
                self._resolve(ref, globs, {})

    def _class_without_source(self, cls: type, flags: _Flags) -> tuple[list[str], tuple[str, ...]]:
        parts = [f"nosource:{cls.__qualname__}"]
        refs: set[str] = set()
        for attr, value in sorted(vars(cls).items()):
            if attr in _CLASS_SKIP or attr.startswith("_abc_"):
                continue
            func = getattr(value, "__func__", value)
            if isinstance(func, types.FunctionType):
                code_digest, code_refs = self.cache.code_info(func.__code__)
                parts.append(f"{attr}=code:{code_digest}")
                refs.update(code_refs)
                continue
            plain = _plain(value)
            if plain is not None:
                parts.append(f"{attr}={plain}")
            elif not attr.startswith("__"):
                parts.append(f"{attr}=" + self.describe(value, flags))
        return parts, tuple(sorted(refs))

    # --- references ------------------------------------------------------------------------
    def _resolve(self, ref: str, ctx: Mapping[str, Any], closure: Mapping[str, Any]) -> None:
        """Follow `name.attr.attr` from a scope through modules to the object it names."""
        root, *attrs = ref.split(".")
        if root in closure:
            obj = closure[root]
            if not isinstance(obj, types.ModuleType):
                return  # already described as part of the function
            name = f"{obj.__name__}"
        elif root in ctx:
            obj = ctx[root]
            name = f"{ctx.get('__name__', '?')}.{root}"
        else:
            return  # builtin or local
        in_library = False
        for attr in attrs:
            if not isinstance(obj, types.ModuleType):
                break
            # Only what the module already holds: no `__getattr__` (lazy imports) side effects.
            value = obj.__dict__.get(attr, _MISSING)
            if value is _MISSING:
                break
            in_library = _is_library_module(obj)
            name = f"{obj.__name__}.{attr}"
            obj = value
        if isinstance(obj, types.ModuleType):
            return
        if in_library and not isinstance(obj, types.FunctionType | type):
            return  # library state (`os.environ`, `sys.stdout`): library versions are out of scope
        self.visit_named(name, obj)

    def visit_named(self, name: str, obj: Any, force_entry: bool = False) -> None:
        """A value bound to `name` (module global, module attribute) that code refers to."""
        if name in self._names:
            return
        self._names.add(name)
        flags = _Flags()
        try:
            text = self.describe(obj, flags)
        except Exception as exc:  # a last resort: fingerprinting must never crash
            flags.unknown.add(f"{_type_token(type(obj))} ({type(exc).__name__} while reading it)")
            self._unknown(name, flags, f"<unknown {sorted(flags.unknown)}>")
            return
        if force_entry:
            pass
        elif isinstance(obj, _BUILTIN_CALLABLES) or _is_library_callable(obj):
            # A library callable: record only an alias (`from json import dumps as d`), so that
            # rebinding the name to another function is a change.
            if name.rsplit(".", 1)[-1] != getattr(obj, "__name__", None):
                self._add(f"ref:{name}", digest(text))
            return
        elif isinstance(obj, types.FunctionType | type):
            return  # user code: its own func:/class: entry is what matters
        if flags.unknown:
            self._unknown(name, flags, text)
        else:
            self._add(f"{'const' if flags.plain else 'obj'}:{name}", digest(text))

    # --- values ----------------------------------------------------------------------------
    def describe(self, obj: Any, flags: _Flags, depth: int = 0) -> str:
        """Canonical, address-free text for a value; visits the code it contains."""
        if isinstance(obj, enum.Enum):
            self.visit_class(type(obj))  # methods of the enum class
        plain = _plain(obj)
        if plain is not None:
            return plain
        if depth > _MAX_DEPTH:
            flags.unknown.add("too deep")
            return "<too deep>"
        flags.plain = False
        if isinstance(obj, types.FunctionType):
            self.visit_function(obj)
            return f"func:{_function_module(obj)}.{obj.__code__.co_qualname}"
        if isinstance(obj, type):
            self.visit_class(obj)
            return f"class:{_callable_name(obj)}"
        if isinstance(obj, types.ModuleType):
            return f"module:{obj.__name__}"
        if isinstance(obj, _BUILTIN_CALLABLES):
            return f"builtin:{_callable_name(obj)}"
        if isinstance(obj, enum.Enum):
            value = self.describe(obj.value, flags, depth + 1)
            return f"enum:{_type_token(type(obj))}.{obj.name}={value}"
        if id(obj) in self._stack:
            return f"<cycle {_type_token(type(obj))}>"
        self._stack.add(id(obj))
        try:
            return self._describe_object(obj, flags, depth + 1)
        except Exception as exc:  # arbitrary objects may raise from any attribute access
            token = f"{_type_token(type(obj))} ({type(exc).__name__} while reading it)"
            flags.unknown.add(token)
            return f"<unknown {token}>"
        finally:
            self._stack.discard(id(obj))

    def _describe_object(self, obj: Any, flags: _Flags, d: int) -> str:
        if isinstance(obj, list | tuple | set | frozenset | dict):
            return self._describe_container(obj, flags, d)
        if isinstance(obj, types.MethodType):
            return f"method({self.describe(obj.__func__, flags, d)},{self.describe(obj.__self__, flags, d)})"
        if isinstance(obj, functools.partial):
            args = self.describe(obj.args, flags, d)
            kwargs = self.describe(dict(sorted(obj.keywords.items())), flags, d)
            return f"partial({self.describe(obj.func, flags, d)},{args},{kwargs})"
        if isinstance(obj, staticmethod | classmethod):
            return f"{type(obj).__name__}({self.describe(obj.__func__, flags, d)})"
        if isinstance(obj, property):
            accessors = (obj.fget, obj.fset, obj.fdel)
            return "property(" + ",".join(self.describe(f, flags, d) for f in accessors) + ")"
        special = _special(obj)
        if special is not None:
            return special
        wrapped = _safe_getattr(obj, "__wrapped__")
        if wrapped is not None and callable(obj):
            return f"wrapper:{_type_token(type(obj))}({self.describe(wrapped, flags, d)})"
        cls = type(obj)
        if dataclasses.is_dataclass(obj):
            self.describe(cls, flags, d)
            fields = ",".join(
                f"{f.name}={self.describe(getattr(obj, f.name, None), flags, d)}"
                for f in dataclasses.fields(obj)
            )
            return f"dataclass:{_type_token(cls)}({fields})"
        model_fields = _safe_getattr(cls, "model_fields")
        if isinstance(model_fields, dict) and hasattr(obj, "__pydantic_fields_set__"):
            self.describe(cls, flags, d)
            fields = ",".join(
                f"{k}={self.describe(getattr(obj, k, None), flags, d)}" for k in model_fields
            )
            return f"model:{_type_token(cls)}({fields})"
        if isinstance(obj, types.SimpleNamespace) or (scope.is_user_class(cls) and _has_state(obj)):
            self.describe(cls, flags, d)
            state = _instance_state(obj)
            items = ",".join(f"{k}={self.describe(v, flags, d)}" for k, v in state)
            return f"instance:{_type_token(cls)}({items})"
        flags.unknown.add(_type_token(cls))
        return f"<unknown {_type_token(cls)}>"

    def _describe_container(self, obj: Any, flags: _Flags, depth: int) -> str:
        prefix = _type_token(type(obj))
        if isinstance(obj, dict):
            items = ",".join(
                f"{self.describe(k, flags, depth)}:{self.describe(v, flags, depth)}"
                for k, v in obj.items()
            )
            return f"{prefix}{{{items}}}"
        if isinstance(obj, set | frozenset):
            # Set iteration order depends on the hash seed: sort the descriptions.
            return f"{prefix}{{{','.join(sorted(self.describe(v, flags, depth) for v in obj))}}}"
        return f"{prefix}[{','.join(self.describe(v, flags, depth) for v in obj)}]"


class _Missing:
    pass


_MISSING = _Missing()


def _safe_getattr(obj: object, attr: str) -> Any:
    try:
        return getattr(obj, attr, None)
    except Exception:  # arbitrary objects may raise anything from __getattr__
        return None


def _function_module(func: types.FunctionType) -> str:
    name = func.__globals__.get("__name__")
    return name if isinstance(name, str) else (getattr(func, "__module__", None) or "?")


def _is_library_module(module: types.ModuleType) -> bool:
    file = getattr(module, "__file__", None)
    return not isinstance(file, str) or scope.is_library_file(file)


def _is_library_callable(obj: object) -> bool:
    if isinstance(obj, types.FunctionType):
        return not scope.is_user_function(obj)
    if isinstance(obj, type):
        return not scope.is_user_class(obj)
    return False


def _plain_all(items: Iterable[Any], depth: int) -> list[str] | None:
    """`_plain` of every item, or None if any of them has no plain text."""
    parts: list[str] = []
    for item in items:
        text = _plain(item, depth)
        if text is None:
            return None
        parts.append(text)
    return parts


def _plain(obj: Any, depth: int = 0) -> str | None:
    """Text of literals and containers of literals (sets sorted), else None. No side effects."""
    t = type(obj)
    if t in _PRIMITIVES:
        return f"{t.__name__}:{obj!r}"
    if depth > 32:
        return None
    if t is tuple or t is list:
        parts = _plain_all(obj, depth + 1)
        return None if parts is None else f"{t.__name__}[{','.join(parts)}]"
    if t is dict:
        items = []
        for k, v in obj.items():
            pk, pv = _plain(k, depth + 1), _plain(v, depth + 1)
            if pk is None or pv is None:
                return None
            items.append(f"{pk}:{pv}")
        return f"dict{{{','.join(items)}}}"
    if t is set or t is frozenset:
        parts = _plain_all(obj, depth + 1)
        return None if parts is None else f"{t.__name__}{{{','.join(sorted(parts))}}}"
    if isinstance(obj, enum.Enum):
        value = _plain(obj.value, depth + 1)
        if value is not None:
            return f"enum:{_type_token(t)}.{obj.name}={value}"
    return None


def _special(obj: object) -> str | None:
    """Library values with a canonical description."""
    t = type(obj)
    if isinstance(obj, pathlib.PurePath):
        return f"{_type_token(t)}:{obj.as_posix()}"
    if isinstance(obj, re.Pattern):
        return f"re:{obj.flags}:{obj.pattern!r}"
    if isinstance(obj, _REPR_TYPES):
        return f"{_type_token(t)}:{obj!r}"
    if isinstance(obj, types.GenericAlias | types.UnionType) or t.__module__ == "typing":
        return f"typing:{obj!r}"  # type expressions: their repr names types, no addresses
    logging = sys.modules.get("logging")  # not imported just for this check
    if logging is not None and isinstance(obj, logging.Logger):
        return f"logger:{obj.name}"
    if t.__module__ == "numpy" and hasattr(obj, "tobytes") and hasattr(obj, "dtype"):
        data = obj.tobytes()
        return f"numpy:{obj.dtype}:{getattr(obj, 'shape', ())}:{digest(data)}"
    return None


def _has_state(obj: object) -> bool:
    return hasattr(obj, "__dict__") or bool(_slots(type(obj)))


def _slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    return [n for n in names if n not in ("__dict__", "__weakref__")]


def _instance_state(obj: object) -> list[tuple[str, Any]]:
    state = dict(getattr(obj, "__dict__", {}))
    for slot in _slots(type(obj)):
        if hasattr(obj, slot):
            state[slot] = getattr(obj, slot)
    return sorted(state.items())


def _class_context(
    cls: type, ctx: Mapping[str, Any] | None
) -> tuple[Mapping[str, Any] | None, str | None]:
    """The module globals a class body ran in, and its source file."""
    for value in vars(cls).values():
        func = getattr(value, "__func__", value)
        if (
            isinstance(func, types.FunctionType)
            and func.__code__.co_qualname.startswith(cls.__qualname__ + ".")
            and not func.__code__.co_filename.startswith("<")  # e.g. dataclass __init__
        ):
            return func.__globals__, func.__code__.co_filename
    module = sys.modules.get(cls.__module__)
    if module is not None and module.__name__ == cls.__module__:
        file = getattr(module, "__file__", None)
        return vars(module), file if isinstance(file, str) else None
    if ctx is not None and ctx.get("__name__") == cls.__module__:
        file = ctx.get("__file__")
        return ctx, file if isinstance(file, str) else None
    return None, None


def walk_function(func: Callable[..., Any], cache: FingerprintCache) -> Walker:
    walker = Walker(cache)
    walker.visit_root(func)
    return walker


__all__ = ["Walker", "walk_function"]
