"""Readers and writers that turn files into stage values and back (docs/architecture.md, "Pipeline model").

Built-in loaders are frozen dataclasses so that their configuration is part of the stage's code
fingerprint (the fingerprint hashes the loader class's code and its dataclass fields). User
loaders should subclass `Reader`, `Writer` or `Loader` and be `@dataclass(frozen=True)` too.
Heavy libraries (pandas, matplotlib) are imported only inside `load`/`save`.
"""

from __future__ import annotations

import pathlib
import pickle
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

T = TypeVar("T")


class Reader(Generic[T]):
    """Reads a dependency file into the value injected into the stage."""

    def load(self, path: pathlib.Path) -> T:
        raise NotImplementedError(f"{type(self).__name__}.load")


class Writer(Generic[T]):
    """Saves a value returned by the stage to an output file."""

    def save(self, value: T, path: pathlib.Path) -> None:
        raise NotImplementedError(f"{type(self).__name__}.save")


class Loader(Reader[T], Writer[T]):
    """Both reader and writer; `empty()` is what an IncrementalOut gets on its first run."""

    def empty(self) -> T:
        raise NotImplementedError(f"{type(self).__name__}.empty")


@dataclass(frozen=True)
class PathOnly(Loader[pathlib.Path]):
    """Injects the path itself; as a writer, the stage wrote the file (or directory) itself."""

    def load(self, path: pathlib.Path) -> pathlib.Path:
        return pathlib.Path(path)

    def save(self, value: Any, path: pathlib.Path) -> None:
        if not pathlib.Path(path).exists():
            raise FileNotFoundError(2, "the stage did not create this output", str(path))

    def empty(self) -> pathlib.Path:
        # Incremental PathOnly outputs are injected as their path (see pivot.pipeline.invoke).
        raise NotImplementedError("PathOnly.empty: the path itself is injected")


@dataclass(frozen=True)
class Text(Loader[str]):
    encoding: str = "utf-8"

    def load(self, path: pathlib.Path) -> str:
        return pathlib.Path(path).read_text(encoding=self.encoding)

    def save(self, value: str, path: pathlib.Path) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Text writer needs a str, got {type(value).__name__}")
        pathlib.Path(path).write_text(value, encoding=self.encoding)

    def empty(self) -> str:
        return ""


_JSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class JSON(Loader[Any]):
    """JSON via orjson, written deterministically (sorted keys, indent 2, trailing newline)."""

    def load(self, path: pathlib.Path) -> Any:
        return orjson.loads(pathlib.Path(path).read_bytes())

    def save(self, value: Any, path: pathlib.Path) -> None:
        pathlib.Path(path).write_bytes(orjson.dumps(value, option=_JSON_OPTS) + b"\n")

    def empty(self) -> Any:
        return {}


@dataclass(frozen=True)
class JSONL(Loader[list[Any]]):
    """One JSON value per line (sorted keys); loads to a list."""

    def load(self, path: pathlib.Path) -> list[Any]:
        with pathlib.Path(path).open("rb") as f:
            return [orjson.loads(line) for line in f if line.strip()]

    def save(self, value: list[Any], path: pathlib.Path) -> None:
        opts = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
        with pathlib.Path(path).open("wb") as f:
            for item in value:
                f.write(orjson.dumps(item, option=opts) + b"\n")

    def empty(self) -> list[Any]:
        return []


@dataclass(frozen=True)
class YAML(Loader[Any]):
    """Safe YAML: no python tags, no aliases; written with sorted keys."""

    def load(self, path: pathlib.Path) -> Any:
        from pivot import yamlsafe

        return yamlsafe.load_yaml(path, max_bytes=None)

    def save(self, value: Any, path: pathlib.Path) -> None:
        from pivot import yamlsafe

        pathlib.Path(path).write_text(yamlsafe.dump_yaml(value), encoding="utf-8")

    def empty(self) -> Any:
        return {}


@dataclass(frozen=True)
class Pickle(Loader[Any]):
    """Python pickle (only for files this pipeline wrote: unpickling runs code)."""

    protocol: int = pickle.HIGHEST_PROTOCOL

    def load(self, path: pathlib.Path) -> Any:
        with pathlib.Path(path).open("rb") as f:
            return pickle.load(f)

    def save(self, value: Any, path: pathlib.Path) -> None:
        with pathlib.Path(path).open("wb") as f:
            pickle.dump(value, f, protocol=self.protocol)

    def empty(self) -> Any:
        return None


@dataclass(frozen=True)
class CSV(Loader[Any]):
    """pandas DataFrame <-> CSV; pandas is imported only when a file is read or written."""

    index_col: int | str | None = None
    index: bool = False
    sep: str = ","

    def load(self, path: pathlib.Path) -> Any:
        import pandas as pd

        return pd.read_csv(path, index_col=self.index_col, sep=self.sep)

    def save(self, value: Any, path: pathlib.Path) -> None:
        value.to_csv(path, index=self.index, sep=self.sep)

    def empty(self) -> Any:
        import pandas as pd

        return pd.DataFrame()


@dataclass(frozen=True)
class MatplotlibFigure(Writer[Any]):
    """Saves a matplotlib Figure (format from the file suffix) and closes it."""

    dpi: int | None = None
    bbox_inches: str | None = "tight"

    def save(self, value: Any, path: pathlib.Path) -> None:
        kwargs: dict[str, Any] = {"bbox_inches": self.bbox_inches}
        if self.dpi is not None:
            kwargs["dpi"] = self.dpi
        value.savefig(path, **kwargs)
        try:
            import matplotlib.pyplot as plt
        except ImportError:  # a Figure built without pyplot needs no closing
            return
        plt.close(value)


__all__ = [
    "CSV",
    "JSON",
    "JSONL",
    "YAML",
    "Loader",
    "MatplotlibFigure",
    "PathOnly",
    "Pickle",
    "Reader",
    "Text",
    "Writer",
]
