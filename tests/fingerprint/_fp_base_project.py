"""The project every change-detection case starts from: ten stages, each reaching different code.

| stage      | reaches                                                                   |
|------------|---------------------------------------------------------------------------|
| s_basic    | local_helper, LIMIT (pipeline.py itself)                                  |
| s_helpers  | helpers.scale→FACTOR, chain_a→chain_b→chain_c, table_sum→TABLE/TAGS       |
| s_pkg      | pkg.sub.func (chain), pkg.sub2 as s2, `from aliasmod import f as g`       |
| s_closure  | closure (adder), default arg, functools.partial(helpers.scale), decorator |
| s_class    | models.Model (instance creation, method, class attribute)                 |
| s_misc     | enum, dataclass instance, rebinding, lambda, exec'd code, recursion       |
| s_lock     | an object that cannot be described (threading.Lock)                       |
| s_params   | StageParams class                                                         |
| s_loader   | a built-in reader (CSV) and a user writer (IndentJSON)                    |
| s_other    | helpers.only_b                                                            |
"""

from __future__ import annotations

STAGES = [
    "s_basic",
    "s_helpers",
    "s_pkg",
    "s_closure",
    "s_class",
    "s_misc",
    "s_lock",
    "s_params",
    "s_loader",
    "s_other",
]

HELPERS = '''\
"""Helpers used by several stages."""
import functools

FACTOR = 2
TABLE = {"a": [1, 2, 3], "b": (4, 5)}
TAGS = {"x", "y", "z"}
UNUSED_CONST = 1


def scale(x):
    return x * FACTOR


def chain_a(x):
    return chain_b(x) + 1


def chain_b(x):
    return chain_c(x) * 2


def chain_c(x):
    return x - 3


def table_sum():
    return sum(TABLE["a"]) + len(TAGS)


def unrelated(x):
    return x**2


def only_b(x):
    return x + 100


def traced(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper
'''

PKG_SUB = """\
def func(x):
    return x + 1


def unused_in_sub(x):
    return x + 9
"""

PKG_SUB2 = """\
def other(x):
    return x + 2
"""

ALIASMOD = """\
def f(x):
    return x * 5
"""

MODELS = """\
class Model:
    bias = 1

    def __init__(self, w):
        self.w = w

    def predict(self, x):
        return self.w * x + self.bias


class Unused:
    def go(self):
        return 1
"""

PIPELINE = '''\
"""The test pipeline."""
import dataclasses
import enum
import functools
import json
import pathlib
import threading
from typing import Annotated

import helpers
import pkg.sub
import pkg.sub2 as s2
from aliasmod import f as g
from models import Model
from pivot import loaders, outputs
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams

LIMIT = 10
UNUSED = 5


class Color(enum.Enum):
    RED = 1
    BLUE = 2


@dataclasses.dataclass(frozen=True)
class Settings:
    depth: int = 3
    name: str = "s"


SETTINGS = Settings(depth=4)
LOCK = threading.Lock()


def local_helper(x):
    return x + LIMIT


def recurse(n):
    return 0 if n <= 0 else recurse(n - 1) + 1


def ping(n):
    return 0 if n <= 0 else pong(n - 1)


def pong(n):
    return 1 if n <= 0 else ping(n - 1)


def make_adder(k):
    def add(x):
        return x + k

    return add


adder = make_adder(5)


def handler_v1(x):
    return x


def handler_v2(x):
    return -x


handler = handler_v1

square = lambda x: x * x  # noqa: E731

_ns = {}
exec("def generated(x):\\n    return x * 7\\n", _ns)
generated = _ns["generated"]


def with_default(x, step=3):
    return x + step


partial_scale = functools.partial(helpers.scale, 3)


@helpers.traced
def decorated(x):
    return x + 1


class Params(StageParams):
    lr: float = 0.1
    epochs: int = 3


@dataclasses.dataclass(frozen=True)
class IndentJSON(loaders.Writer):
    indent: int = 2

    def save(self, value, path):
        pathlib.Path(path).write_text(json.dumps(value, indent=self.indent))


def s_basic():
    total = local_helper(1)
    print(total)


def s_helpers():
    print(helpers.scale(1), helpers.chain_a(2), helpers.table_sum())


def s_pkg():
    print(pkg.sub.func(1), s2.other(2), g(3))


def s_closure():
    print(adder(1), with_default(2), partial_scale(), decorated(3))


def s_class():
    model = Model(2)
    print(model.predict(3))


def s_misc():
    print(Color.RED.value, SETTINGS.depth, handler(1), square(2), generated(3))
    print(recurse(3), ping(4))


def s_lock():
    with LOCK:
        print("locked")


def s_params(params: Params):
    print(params.lr)


def s_loader(
    table: Annotated[object, outputs.Dep("data/in.csv", loaders.CSV(sep=","))],
) -> Annotated[dict, outputs.Out("out/result.json", IndentJSON(indent=2))]:
    return {"n": len(table)}


def s_other():
    print(helpers.only_b(1))


pipeline = Pipeline("matrix")
for _stage in (
    s_basic, s_helpers, s_pkg, s_closure, s_class, s_misc, s_lock, s_params, s_loader, s_other
):
    pipeline.register(_stage)
'''

FILES = {
    "pipeline.py": PIPELINE,
    "helpers.py": HELPERS,
    "pkg/__init__.py": "",
    "pkg/sub.py": PKG_SUB,
    "pkg/sub2.py": PKG_SUB2,
    "aliasmod.py": ALIASMOD,
    "models.py": MODELS,
}
