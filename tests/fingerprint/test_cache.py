"""The stat-keyed fingerprint cache: warm runs reuse it, edits invalidate it, corruption is ignored."""

from __future__ import annotations

import json
from pathlib import Path

import _fp_base_project as base_project
import _fp_harness as harness

from pivot.fingerprint import FingerprintCache, function_fingerprint
from pivot.fingerprint.cache import FILE_NAME


def _cache_file(project: Path) -> Path:
    return project / ".pivot" / "state" / FILE_NAME


def test_warm_cache_reuses_and_edits_invalidate(tmp_path: Path) -> None:
    d = harness.write_project(tmp_path / "p", base_project.FILES)
    # racy_ns=0: trust the fresh files' stats (this test does not edit within a timestamp tick).
    cold = harness.fingerprint_projects([d], cache=True, racy_ns=0)[str(d)]
    assert cold["parses"] > 0 and _cache_file(d).is_file()
    warm = harness.fingerprint_projects([d], cache=True, racy_ns=0)[str(d)]
    assert warm["parses"] == 0, "an unchanged project must not re-parse any file"
    assert warm["stages"] == cold["stages"]
    uncached = harness.fingerprint_projects([d])[str(d)]
    assert uncached["stages"] == cold["stages"]

    harness.apply_edits(d, [("helpers.py", "return x - 3", "return x - 3 + 0")])
    edited = harness.fingerprint_projects([d], cache=True, racy_ns=0)[str(d)]
    assert edited["parses"] == 1, "only the edited file is parsed again"
    assert harness.changed_stages(cold["stages"], edited["stages"]) == {"s_helpers"}
    again = harness.fingerprint_projects([d], cache=True, racy_ns=0)[str(d)]
    assert again["parses"] == 0 and again["stages"] == edited["stages"]


def test_same_size_edit_right_after_caching_is_detected(tmp_path: Path) -> None:
    # Default racy window: entries for files modified moments ago are not persisted, so an
    # edit that keeps size (and possibly mtime tick) cannot be masked by the cache.
    d = harness.write_project(tmp_path / "p", base_project.FILES)
    first = harness.fingerprint_projects([d], cache=True)[str(d)]
    harness.apply_edits(d, [("helpers.py", "return x - 3", "return x - 4")])
    second = harness.fingerprint_projects([d], cache=True)[str(d)]
    assert harness.changed_stages(first["stages"], second["stages"]) == {"s_helpers"}


def test_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    garbage = [b"{not json", b"[]", b'{"header": 1, "files": {"x": 3}}', b"\xff\xfe", b""]
    dirs = [
        harness.write_project(tmp_path / f"p{i}", base_project.FILES) for i in range(len(garbage))
    ]
    for d, data in zip(dirs, garbage, strict=True):
        _cache_file(d).parent.mkdir(parents=True, exist_ok=True)
        _cache_file(d).write_bytes(data)
    reference = harness.fingerprint_projects(dirs[:1])[str(dirs[0])]
    got = harness.fingerprint_projects(dirs, cache=True, racy_ns=0)
    for d in dirs:
        assert got[str(d)]["stages"] == reference["stages"]
        assert json.loads(_cache_file(d).read_text())["files"]  # rewritten, valid


def test_load_missing_and_save_atomically(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cache = FingerprintCache.load(state)  # no directory yet
    cache.save()  # nothing computed: nothing written
    assert not state.exists()
    module = tmp_path / "mod_for_cache.py"
    module.write_text("def f(x):\n    return x + 1\n")
    namespace: dict[str, object] = {"__name__": "mod_for_cache"}
    exec(compile(module.read_text(), str(module), "exec", dont_inherit=True), namespace)
    import pivot.fingerprint.cache as cache_module

    old = cache_module.RACY_NS
    cache_module.RACY_NS = 0
    try:
        manifest = function_fingerprint(namespace["f"], cache)  # type: ignore[arg-type]
        cache.save()
    finally:
        cache_module.RACY_NS = old
    assert [p.name for p in state.iterdir()] == [FILE_NAME]  # no temp file left behind
    data = json.loads((state / FILE_NAME).read_text())
    assert str(module) in data["files"]
    reloaded = FingerprintCache.load(state)
    assert function_fingerprint(namespace["f"], reloaded) == manifest  # type: ignore[arg-type]


def test_racy_files_are_not_persisted(tmp_path: Path) -> None:
    module = tmp_path / "fresh_mod.py"
    module.write_text("def f(x):\n    return x + 1\n")
    namespace: dict[str, object] = {"__name__": "fresh_mod"}
    exec(compile(module.read_text(), str(module), "exec", dont_inherit=True), namespace)
    cache = FingerprintCache.load(tmp_path / "state")
    function_fingerprint(namespace["f"], cache)  # type: ignore[arg-type]
    cache.save()
    data = json.loads((tmp_path / "state" / FILE_NAME).read_text())
    assert str(module) not in data["files"]
