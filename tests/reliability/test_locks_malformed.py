"""Case 7: malformed lock files are reported by path and field (docs/formats.md "Lock file").

A corrupt lock is a warning naming the file and the field, and the stage is treated as never run
(`status` says so, `repro` re-runs it and writes a valid lock: I5). A lock from a newer schema is
an error ("upgrade pivot", exit 1) that changes nothing.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import _invariants as inv
import pytest
from _hostile import cause_line, fails, new_project, ok

PIPELINE = """
def make(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("out/", loaders.PathOnly())]:
    with open("runs.log", "a", encoding="utf-8") as f:
        f.write("make\\n")
    out = pathlib.Path("out")
    out.mkdir(exist_ok=True)
    (out / "a.txt").write_text(src, encoding="utf-8")
    return out


pipeline = Pipeline("locks")
pipeline.register(make)
"""

LOCK = Path(".pivot/stages/make.lock")
_TEMPLATE: list[Path] = []


def _first_hash(text: str, section: str) -> str:
    m = re.search(rf'"{section}": \{{\n    "[^"]+": (?:"|\{{.*"hash":")([0-9a-f]{{64}})', text)
    assert m, text
    return m.group(1)


def _truncated(t: str) -> str:
    return t[: len(t) // 2]


def _conflict(t: str) -> str:
    other = t.replace(_first_hash(t, "deps"), "0" * 64)
    return f"<<<<<<< HEAD\n{t}=======\n{other}>>>>>>> theirs\n"


def _non_hex(t: str) -> str:
    return t.replace(_first_hash(t, "deps"), "g" * 64)


def _short(t: str) -> str:
    h = _first_hash(t, "outs")
    return t.replace(h, h[:40])


# kind -> (how to damage the lock text, expected field, expected words in the message)
CORRUPT: dict[str, tuple[Callable[[str], str], str, str]] = {
    "truncated": (_truncated, "(content)", "not valid JSON"),
    "empty": (lambda t: "", "(content)", "empty file"),
    "conflict": (_conflict, "(content)", "git conflict marker"),
    "non_hex": (_non_hex, 'deps["input.txt"]', "not a 64-hex blake3 hash"),
    "wrong_length": (_short, 'outs["out"].hash', "not a 64-hex blake3 hash"),
}


@pytest.fixture
def built(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A copy of a project after one `repro` (one real run per worker process)."""
    if not _TEMPLATE:
        root = new_project(tmp_path_factory.mktemp("locks") / "p", PIPELINE)
        ok(root, "repro")
        (root / "runs.log").unlink()
        _TEMPLATE.append(root)
    dest = tmp_path / "p"
    shutil.copytree(_TEMPLATE[0], dest, symlinks=True)
    return dest


def _damage(root: Path, data: bytes) -> bytes:
    good = (root / LOCK).read_bytes()
    (root / LOCK).write_bytes(data)
    return good


def _expect_never_run(root: Path, field: str, why: str) -> None:
    lock = str(root / LOCK)
    status = ok(root, "status")
    line = cause_line(status, lock, field, why)
    assert line.startswith("WARNING: "), line
    assert "treating make as never run" in line
    assert "make: No previous run" in status.stdout
    dry = ok(root, "repro", "--dry-run")
    assert "make: would run (No previous run)" in dry.stdout
    cause_line(dry, lock, field)
    # I5: re-running rewrites a valid lock and the stage is up to date again.
    before = inv.snapshot(root, ["out/"])
    # (the run cache knows these inputs, so the outputs may be restored instead of re-run)
    ok(root, "repro")
    data = json.loads((root / LOCK).read_text(encoding="utf-8"))
    assert data["schema_version"] == 1 and set(data["outs"]) == {"out"}
    assert ok(root, "status", "-q").stderr == ""
    assert (root / "out" / "a.txt").read_text(encoding="utf-8") == "hello\n"
    inv.check_all(root, before, ["out/", "runs.log"])


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_corrupt_lock_is_named_and_treated_as_never_run(built: Path, kind: str) -> None:
    damage, field, why = CORRUPT[kind]
    good = (built / LOCK).read_text(encoding="utf-8")
    _damage(built, damage(good).encode("utf-8"))
    _expect_never_run(built, field, why)


def test_invalid_utf8_lock(built: Path) -> None:
    good = (built / LOCK).read_bytes()
    _damage(built, good.replace(b'"make"', b'"m\xff\xfeke"', 1))
    _expect_never_run(built, "(content)", "not valid UTF-8")


def test_future_schema_is_refused_with_upgrade_pivot(built: Path) -> None:
    text = (built / LOCK).read_text(encoding="utf-8")
    future = text.replace('"schema_version": 1', '"schema_version": 7')
    # Newer fields must not matter: the version is checked before anything else.
    future = future.replace('"params": {}', '"params": {},\n  "new_field": [1, 2]')
    _damage(built, future.encode("utf-8"))
    before = inv.snapshot(built)
    objects = inv.all_objects(built)
    lock = str(built / LOCK)
    for args in (["status"], ["repro"], ["repro", "--dry-run"], ["verify"], ["checkout"]):
        proc = fails(built, *args)
        line = cause_line(proc, lock, "schema 7", "upgrade pivot")
        assert line.startswith("Error: "), line
    # Nothing was run, rewritten or cached on the strength of the newer lock.
    assert (built / LOCK).read_text(encoding="utf-8") == future
    assert not (built / "runs.log").exists()
    assert inv.all_objects(built) == objects
    inv.check_all(built, before)
    # I5: put a lock this pivot can read back (e.g. `git checkout` of it): everything works.
    (built / LOCK).write_text(text, encoding="utf-8")
    assert ok(built, "status", "-q").stderr == ""
