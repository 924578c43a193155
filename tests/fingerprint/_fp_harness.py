"""Fingerprint real projects in fresh interpreters (many projects per process, for speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_PYTHON = Path(__file__).resolve().parents[2] / "python"

# Runs in the child: load each project with the real discovery code, fingerprint every stage,
# then forget the project's modules so the next project starts clean.
_RUNNER = r"""
import json, os, sys, traceback, warnings
from pathlib import Path
import pivot.fingerprint.cache as fp_cache
from pivot.exceptions import FingerprintWarning
from pivot.fingerprint import FingerprintCache, stage_fingerprint
from pivot.fingerprint.ast_normalize import FileIndex
from pivot.pipeline import load_pipeline

req = json.loads(sys.stdin.read())
if req.get("racy_ns") is not None:
    fp_cache.RACY_NS = req["racy_ns"]
parses = [0]
_parse = FileIndex.parse.__func__
def counting_parse(cls, path):
    parses[0] += 1
    return _parse(cls, path)
FileIndex.parse = classmethod(counting_parse)

out = {}
req_key = {os.path.realpath(p): p for p in req["projects"]}
for d in req["projects"]:
    d = os.path.realpath(d)
    parses[0] = 0
    result = {"stages": None, "warnings": [], "error": None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cache = FingerprintCache.load(Path(d) / ".pivot" / "state") if req["cache"] else None
            pipeline = load_pipeline(Path(d))
            result["stages"] = {n: stage_fingerprint(s, cache) for n, s in pipeline.stages.items()}
            if cache is not None:
                cache.save()
        except Exception:
            result["error"] = traceback.format_exc()
    result["warnings"] = sorted(
        {str(w.message) for w in caught if issubclass(w.category, FingerprintWarning)}
    )
    result["parses"] = parses[0]
    out[req_key[d]] = result
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None) or ""
        if name.startswith("_pivot_pipeline") or file.startswith(d + os.sep):
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p != d]
print(json.dumps(out))
"""


def write_project(root: Path, files: Mapping[str, str]) -> Path:
    (root / ".pivot").mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def apply_edits(root: Path, edits: Sequence[tuple[str, str, str]]) -> None:
    """Each edit replaces one exact, unique occurrence of `old` by `new` in a file."""
    for rel, old, new in edits:
        path = root / rel
        text = path.read_text()
        assert text.count(old) == 1, f"{rel}: {old!r} occurs {text.count(old)} times"
        path.write_text(text.replace(old, new))


def fingerprint_projects(
    projects: Sequence[Path],
    *,
    cache: bool = False,
    racy_ns: int | None = None,
    hash_seed: str = "0",
) -> dict[str, dict[str, Any]]:
    """{project dir: {"stages": {stage: manifest}, "warnings": [...], "error", "parses"}}."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_PYTHON)
    env["PYTHONHASHSEED"] = hash_seed
    # No .pyc: an edit keeping size and mtime second would otherwise import stale bytecode.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    request = {"projects": [str(p) for p in projects], "cache": cache, "racy_ns": racy_ns}
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results: dict[str, dict[str, Any]] = json.loads(proc.stdout)
    for d, res in results.items():
        assert res["error"] is None, f"{d}:\n{res['error']}"
    return results


def changed_stages(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    assert set(before) == set(after), "the edit changed the set of stages"
    return {name for name in before if before[name] != after[name]}
