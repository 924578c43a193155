"""Invariants I1–I5 of docs/reliability.md, checked after every reliability case.

Imported as `_invariants` by every module in tests/reliability (pytest's default import mode
puts this directory on sys.path). Everything reads the project from disk; nothing imports the
code under test except through the real `pivot` CLI, so a bug cannot hide itself.

- I1 `check_i1(root)`: every object under `.pivot/cache/files` hashes (PyPI blake3) to its name.
- I2 `check_i2(root)`: every lock's cached outs (and the files of directory manifests) and every
  `.pvt` tracked file are in the cache — or `pivot verify --cache` reports the problem.
- I3 `snapshot(root, exclude)` / `check_i3(before, root, exclude)`: user files outside declared
  outputs and `.pivot` are unchanged (path -> blake3 of bytes).
- I4 `check_i4(proc, *names)`: a failed command exits non-zero with a one-line `Error:`-style
  cause naming a file/stage on stderr and no traceback.
- I5 `check_i5(root, args)`: simply re-running succeeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import blake3

REPO = Path(__file__).resolve().parents[2]
PYTHON_SRC = REPO / "python"
HEX = frozenset("0123456789abcdef")


# --------------------------------------------------------------------------------------------
# running the real CLI


def env(**extra: str) -> dict[str, str]:
    """Environment for a `pivot` subprocess importing this checkout (no kill point inherited)."""
    e = dict(os.environ)
    e.pop("PIVOT_KILL_AT", None)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(PYTHON_SRC), e.get("PYTHONPATH", "")) if p)
    e.update(extra)
    return e


def pivot(
    args: Sequence[str], root: Path, *, timeout: float = 120, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run `pivot ARGS` in `root` in a fresh interpreter; text output captured."""
    return subprocess.run(
        [sys.executable, "-c", "from pivot.cli import main; main()", *args],
        cwd=root,
        env=env(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pivot_popen(args: Sequence[str], root: Path, **extra_env: str) -> subprocess.Popen[str]:
    """Start `pivot ARGS` in `root` without waiting (stdout/stderr piped, text)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from pivot.cli import main; main()", *args],
        cwd=root,
        env=env(**extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"rc={proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


# --------------------------------------------------------------------------------------------
# cache layout helpers


def cache_dir(root: Path) -> Path:
    return root / ".pivot" / "cache"


def object_path(root: Path, h: str) -> Path:
    return cache_dir(root) / "files" / h[:2] / h[2:]


def file_hash(path: Path) -> str:
    h = blake3.blake3()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def all_objects(root: Path) -> list[tuple[str, Path]]:
    """(name, path) of every object file under `.pivot/cache/files` (temps excluded)."""
    files = cache_dir(root) / "files"
    found: list[tuple[str, Path]] = []
    if not files.is_dir():
        return found
    for shard in sorted(files.iterdir()):
        if not shard.is_dir() or len(shard.name) != 2:
            continue
        for obj in sorted(shard.iterdir()):
            if obj.name.startswith(".pv"):
                continue
            found.append((shard.name + obj.name, obj))
    return found


def read_locks(root: Path) -> dict[str, dict]:
    """stage name -> parsed lock (locks are JSON)."""
    stages = root / ".pivot" / "stages"
    out: dict[str, dict] = {}
    if stages.is_dir():
        for p in sorted(stages.glob("*.lock")):
            out[p.name[: -len(".lock")]] = json.loads(p.read_text(encoding="utf-8"))
    return out


def manifest_entries(root: Path, dir_hash: str) -> list[dict] | None:
    """The entries of a directory manifest object, or None when absent/unparsable."""
    p = object_path(root, dir_hash)
    try:
        lines = p.read_bytes().decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0] != '{"pivot_manifest":1}':
        return None
    try:
        return [json.loads(line) for line in lines[1:]]
    except ValueError:
        return None


def pvt_files(root: Path) -> list[Path]:
    skip = {".git", ".pivot", ".venv", "__pycache__"}
    found: list[Path] = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        found += [Path(dirpath) / f for f in files if f.endswith(".pvt")]
    return sorted(found)


def reachable(root: Path) -> dict[str, list[str]]:
    """Every object hash the locks and `.pvt` files need -> the owners (`stage: path`)."""
    need: dict[str, list[str]] = {}

    def add(h: str, is_dir: bool, owner: str) -> None:
        need.setdefault(h, []).append(owner)
        if is_dir:
            for e in manifest_entries(root, h) or []:
                if "link" not in e:
                    need.setdefault(e["hash"], []).append(f"{owner}{e['path']}")

    for stage, lock in read_locks(root).items():
        for path, e in lock["outs"].items():
            if e["cache"]:
                add(e["hash"], e["is_dir"], f"{stage}: {path}")
    for pvt in pvt_files(root):
        t = json.loads(pvt.read_text(encoding="utf-8"))
        add(t["hash"], t["is_dir"], f"{pvt.relative_to(root)}: ")
    return need


# --------------------------------------------------------------------------------------------
# I1–I5


def check_i1(root: Path) -> int:
    """I1: every cache object's blake3 equals its name. Returns the number of objects."""
    bad = []
    objs = all_objects(root)
    for name, path in objs:
        assert len(name) == 64 and set(name) <= HEX, f"I1: stray name in cache: {path}"
        if file_hash(path) != name:
            bad.append(name)
    assert not bad, f"I1: cache objects whose content differs from their name: {bad}"
    return len(objs)


def missing_objects(root: Path) -> dict[str, list[str]]:
    """Reachable objects (I2) absent from the cache -> owners."""
    return {h: o for h, o in reachable(root).items() if not object_path(root, h).is_file()}


def check_i2(root: Path) -> None:
    """I2: every lock / `.pvt` names only objects the cache holds, or `pivot verify --cache`
    reports each missing one (exit 1, the hash in `--json`)."""
    gone = missing_objects(root)
    if not gone:
        return
    proc = pivot(["verify", "--cache", "--json"], root)
    assert proc.returncode == 1, f"I2: objects {sorted(gone)} missing but verify: {describe(proc)}"
    report = json.loads(proc.stdout)
    reported = set(report.get("cache", {}).get("missing", {}))
    assert set(gone) <= reported, f"I2: missing {sorted(gone)} not reported: {describe(proc)}"


def snapshot(root: Path, exclude: Iterable[str] = ()) -> dict[str, str]:
    """I3: project-relative path -> blake3 of every user file outside `exclude` (declared
    outputs: files or directories, `/` suffix optional), `.pivot`, `.git` and caches."""
    ex = [e.rstrip("/") for e in exclude]
    skip_dirs = {".git", ".pivot", "__pycache__", ".pytest_cache"}
    snap: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        dirs[:] = [d for d in dirs if d not in skip_dirs and os.path.join(rel_dir, d) not in ex]
        for f in files:
            rel = os.path.join(rel_dir, f)
            if rel in ex or any(rel.startswith(e + "/") for e in ex):
                continue
            p = Path(dirpath) / f
            snap[rel] = "symlink:" + os.readlink(p) if p.is_symlink() else file_hash(p)
    return snap


def check_i3(before: Mapping[str, str], root: Path, exclude: Iterable[str] = ()) -> None:
    """I3: no user file outside declared outputs was deleted or changed (new files allowed:
    stage bodies may write markers)."""
    after = snapshot(root, exclude)
    lost = sorted(set(before) - set(after))
    changed = sorted(p for p in before if p in after and after[p] != before[p])
    assert not lost and not changed, f"I3: user files deleted {lost} / changed {changed}"


def check_i4(proc: subprocess.CompletedProcess[str], *names: str) -> None:
    """I4: failure exits non-zero, stderr has a one-line `Error`-style cause naming one of
    `names` (a file or stage), and no traceback (the command ran without -v)."""
    assert proc.returncode != 0, f"I4: expected failure: {describe(proc)}"
    assert proc.returncode > 0, f"I4: killed by a signal: {describe(proc)}"
    # pivot's own traceback would start a line; a failing stage's captured output (its own
    # traceback included: that is the user's code) is shown indented under the stage.
    own = [ln for ln in proc.stderr.splitlines() if ln.startswith("Traceback")]
    assert not own, f"I4: traceback without -v: {describe(proc)}"
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    causes = [ln for ln in lines if "error" in ln.lower() or "fail" in ln.lower()]
    assert causes, f"I4: no one-line cause on stderr: {describe(proc)}"
    if names:
        assert any(n in ln for ln in causes for n in names), (
            f"I4: no cause line names any of {names}: {describe(proc)}"
        )


def check_i5(root: Path, args: Sequence[str], **extra_env: str) -> subprocess.CompletedProcess[str]:
    """I5: simply re-running the command succeeds (no manual clean-up)."""
    proc = pivot(args, root, **extra_env)
    assert proc.returncode == 0, f"I5: re-running {list(args)} failed: {describe(proc)}"
    return proc


def check_all(
    root: Path,
    before: Mapping[str, str] | None = None,
    exclude: Iterable[str] = (),
) -> None:
    """I1, I2 and (when a snapshot is given) I3."""
    check_i1(root)
    check_i2(root)
    if before is not None:
        check_i3(before, root, exclude)
