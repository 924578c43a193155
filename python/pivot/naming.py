"""The rules for stage names and declared paths, each in one place.

Registration (`pivot.pipeline.registration`), the graph (`pivot.graph`) and storage (lock and
`.pvt` files) all apply these; each caller only chooses the exception class and the context in
its message. docs/cli.md, "Dependency matching and validation", lists what a user sees.
"""

from __future__ import annotations

import os
import posixpath
import re

from pivot.exceptions import PivotError

# A stage name becomes `.pivot/stages/<name>.lock` and a CLI argument: characters safe on every
# filesystem and in shells; `@` is the matrix separator (`train@small`).
MAX_STAGE_NAME = 200
_STAGE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]*\Z")

RESERVED_DIRS = frozenset({".pivot", ".git"})
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


def stage_name_problem(name: object) -> str | None:
    """Why `name` cannot be a stage name, or None when it can."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if len(name) > MAX_STAGE_NAME or not _STAGE_NAME.match(name):
        return (
            "use letters, digits, '_', '-', '.', '@' "
            f"(at most {MAX_STAGE_NAME} characters, not starting with '.' or '-')"
        )
    return None


def check_stage_name(name: object, error: type[PivotError]) -> str:
    """`name` if it is a valid stage name, else `error("invalid stage name …: <why>")`."""
    problem = stage_name_problem(name)
    if problem is not None:
        raise error(f"invalid stage name {name!r}: {problem}")
    assert isinstance(name, str)
    return name


def has_nul_or_newline(text: str) -> bool:
    """NUL, LF or CR: characters the OS calls (NUL) or line-based formats (lock, manifest
    escaping aside) cannot carry in a declared path."""
    return "\0" in text or "\n" in text or "\r" in text


def normalize(text: str, base_rel: str, project_root: str | os.PathLike[str]) -> str:
    """A declared path (relative to the pipeline file's directory `base_rel`, itself relative to
    the project root, or absolute) -> a project-relative POSIX path; a directory's trailing '/'
    is kept. Lexical only (os.path.normpath semantics): safety is `path_problem`'s job."""
    trailing = text.endswith("/")
    if os.path.isabs(text):
        rel = os.path.relpath(os.path.normpath(text), project_root).replace(os.sep, "/")
    else:
        rel = posixpath.join(base_rel, text)
    rel = posixpath.normpath(rel)
    return rel + "/" if trailing and rel != "." else rel


def path_problem(path: str) -> str | None:
    """Why a project-relative path cannot be declared (as a dependency, an output or a tracked
    path), or None. The path may end with '/' (a directory)."""
    if has_nul_or_newline(path):
        return "contains NUL or newline"
    if path.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(path):
        return "is absolute; paths must be relative to the project root"
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../"):
        return "escapes the project"
    if norm == ".":
        return "is the project root itself"
    first = norm.split("/", 1)[0]
    if first in RESERVED_DIRS:
        return f"is under {first}/, which pivot reserves"
    return None
