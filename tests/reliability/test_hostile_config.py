"""Case 12: hostile configuration and hostile cache/lock contents.

- `pivot.yaml`, `params.yaml` and `.pivot/config.yaml` with an alias bomb ("billion laughs"),
  `!!python/...` tags or 200 MB of content: refused quickly with a message naming the file; the
  tags are never executed.
- Lock entries and directory-manifest objects naming `../`, absolute or NUL paths (or link
  targets leaving the tree), and a `.pvt` file doing the same: `checkout` rejects them before
  writing anything, inside or outside the project.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import tracemalloc
from pathlib import Path

import _invariants as inv
import blake3
import pytest
from _hostile import PIPELINE_HEAD, cause_line, fails, new_project, ok, tree

STAGES_MODULE = (
    PIPELINE_HEAD.replace("from pivot.pipeline import Pipeline\n", "")
    + """
from pivot.stage_def import StageParams


class MakeParams(StageParams):
    n: int = 1


def make(
    params: MakeParams,
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("out.txt", loaders.Text())]:
    return src * params.n
"""
)

PIVOT_YAML = """\
stages:
  make:
    python: stages_mod.make
    params:
      n: 2
"""


def _bomb(levels: int = 9) -> str:
    """The classic alias bomb: 9 levels of 9 references expand to 9**9 (387M) strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def yproj(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    from pivot import project

    root.mkdir()
    project.init(root)
    (root / "stages_mod.py").write_text(STAGES_MODULE, encoding="utf-8")
    (root / "pivot.yaml").write_text(PIVOT_YAML, encoding="utf-8")
    (root / "input.txt").write_text("hi\n", encoding="utf-8")
    ok(root, "repro")
    assert (root / "out.txt").read_text(encoding="utf-8") == "hi\nhi\n"
    return root


TARGETS = ["pivot.yaml", "params.yaml", ".pivot/config.yaml"]


def _install(root: Path, rel: str, text: str) -> bytes | None:
    """Write `text` as `rel` (prefixed to the real pivot.yaml); returns the old bytes."""
    p = root / rel
    old = p.read_bytes() if p.exists() else None
    if rel == "pivot.yaml":
        text = text + PIVOT_YAML
    p.write_text(text, encoding="utf-8")
    return old


def _restore(root: Path, rel: str, old: bytes | None) -> None:
    p = root / rel
    if old is None:
        p.unlink()
    else:
        p.write_bytes(old)


def test_alias_bomb_is_refused_in_bounded_time_and_memory(yproj: Path) -> None:
    from pivot.exceptions import ConfigError
    from pivot.yamlsafe import parse_yaml

    bomb = _bomb()
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"aliases|anchors"):
        parse_yaml(bomb, "bomb.yaml")
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 2.0 and peak < 10 << 20, (elapsed, peak)

    for rel in TARGETS:
        old = _install(yproj, rel, bomb)
        start = time.perf_counter()
        proc = fails(yproj, "status")
        # The parse itself is bounded above; the process bound also covers interpreter start
        # on a loaded 2-core machine.
        assert time.perf_counter() - start < 10
        line = cause_line(proc, str(yproj / rel), "line 1", "anchors are not allowed")
        assert line.startswith("Error: "), line
        _restore(yproj, rel, old)
    assert ok(yproj, "status", "-q").stderr == ""


TAGS = [
    '!!python/object/apply:os.system ["touch {marker}"]',
    "!!python/object/new:subprocess.Popen [[touch, {marker}]]",
    "!!python/name:os.system",
    '!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {marker}"]',
]


def test_python_tags_are_never_executed(yproj: Path, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    docs = {
        "pivot.yaml": "stages:\n  make:\n    python: stages_mod.make\n    params:\n      n: {}\n",
        "params.yaml": "make:\n  n: {}\n",
        ".pivot/config.yaml": "core:\n  jobs: {}\n",
    }
    # Every tag in every file would be 12 processes; each tag and each file is covered.
    for i, tag in enumerate(TAGS):
        rel = list(docs)[i % len(docs)]
        p = yproj / rel
        old = p.read_bytes() if p.exists() else None
        p.write_text(docs[rel].format(tag.format(marker=marker)), encoding="utf-8")
        proc = fails(yproj, "repro" if i == 0 else "status")
        cause_line(proc, str(p), "python tags are not allowed")
        assert not marker.exists(), f"{rel}: the python tag was executed"
        _restore(yproj, rel, old)
    ok(yproj, "status", "-q")


def test_oversized_yaml_files_are_refused(yproj: Path) -> None:
    for rel in TARGETS:
        p = yproj / rel
        old = p.read_bytes() if p.exists() else None
        with open(p, "wb") as f:  # 200 MB, fast: a valid-looking start, then a hole
            f.write(b"# " + b"x" * 1000 + b"\n")
            f.truncate(200 * 1024 * 1024)
        start = time.perf_counter()
        proc = fails(yproj, "status")
        assert time.perf_counter() - start < 10
        line = cause_line(proc, str(p), "larger than the", "limit for YAML files")
        assert line.startswith("Error: "), line
        _restore(yproj, rel, old)
    ok(yproj, "status", "-q")


# ---------------------------------------------------------------------------------------------
# hostile lock entries, manifest objects and .pvt files

DIR_PIPELINE = """
def make(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("out/", loaders.PathOnly())]:
    out = pathlib.Path("out")
    out.mkdir(exist_ok=True)
    (out / "a.txt").write_text(src, encoding="utf-8")
    return out


pipeline = Pipeline("hostile")
pipeline.register(make)
"""

LOCK = Path(".pivot/stages/make.lock")
PAYLOAD = b"written by a hostile manifest\n"


def _put(root: Path, data: bytes) -> str:
    """Hand-craft a (correctly named) cache object."""
    h = blake3.blake3(data).hexdigest()
    p = root / ".pivot" / "cache" / "files" / h[:2] / h[2:]
    p.parent.mkdir(parents=True, exist_ok=True)
    if not p.exists():
        p.write_bytes(data)
        p.chmod(0o444)
    return h


def _manifest(entry_path: str, link: str | None = None, file_hash: str = "") -> bytes:
    entry: dict[str, object] = {"path": entry_path, "hash": file_hash, "size": len(PAYLOAD)}
    entry["exec"] = False
    if link is not None:
        entry = {"path": entry_path, "hash": blake3.blake3(os.fsencode(link)).hexdigest()}
        entry.update({"size": len(os.fsencode(link)), "exec": False, "link": link})
    return b'{"pivot_manifest":1}\n' + json.dumps(entry, separators=(",", ":")).encode() + b"\n"


@pytest.fixture
def dproj(tmp_path: Path) -> Path:
    root = new_project(tmp_path / "p", DIR_PIPELINE)
    ok(root, "repro")
    return root


def _no_writes(root: Path, outside: Path, outside_before: dict[bytes, str]) -> None:
    assert not (root / "out").exists(), "the destination was written"
    assert tree(outside) == outside_before, "something was written outside the project"
    stray = [p for p in root.parent.rglob("*") if ".pv" in p.name and ".pivot" not in p.parts]
    assert stray == [], stray


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("dotdot", "contains '..'"),
        ("absolute", "absolute path"),
        ("nul", "contains NUL"),
        ("link_out", "link target leaves the directory"),
    ],
)
def test_hostile_manifest_is_rejected_before_any_write(
    dproj: Path, tmp_path: Path, case: str, why: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "pwn"
    fh = _put(dproj, PAYLOAD)
    depth = "../" * (len(dproj.relative_to(tmp_path).parts) + 1)  # from out/ up to tmp_path
    data = {
        "dotdot": _manifest(f"{depth}outside/pwn", file_hash=fh),
        "absolute": _manifest(str(target), file_hash=fh),
        "nul": _manifest("a\x00b", file_hash=fh),
        "link_out": _manifest("evil", link=f"{depth}outside/pwn"),
    }[case]
    mh = _put(dproj, data)
    lock = json.loads((dproj / LOCK).read_text(encoding="utf-8"))
    lock["outs"]["out"].update(hash=mh, nfiles=1, size=len(PAYLOAD))
    (dproj / LOCK).write_text(json.dumps(lock), encoding="utf-8")
    outside_before = tree(outside)
    shutil.rmtree(dproj / "out")
    for args in (["checkout"], ["checkout", "--force", "out"]):
        proc = fails(dproj, *args)
        line = cause_line(proc, mh[2:], "unsafe path", why)
        assert line.startswith("Error: out: "), line
        _no_writes(dproj, outside, outside_before)
    assert not target.exists()
    # I5: re-running the stage replaces the hostile lock entry.
    ok(dproj, "repro")
    assert (dproj / "out" / "a.txt").read_text(encoding="utf-8") == "hello\n"
    assert tree(outside) == outside_before


@pytest.mark.parametrize(
    ("key", "why"),
    [("../evil", "contains '..'"), ("/tmp/evil", "absolute"), ("ev\x00il", "NUL")],
)
def test_hostile_lock_paths_are_rejected_before_any_write(
    dproj: Path, tmp_path: Path, key: str, why: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    fh = _put(dproj, PAYLOAD)
    lock = json.loads((dproj / LOCK).read_text(encoding="utf-8"))
    bad_key = key if key != "/tmp/evil" else str(outside / "evil")
    lock["outs"][bad_key] = {"cache": True, "hash": fh, "is_dir": False, "nfiles": 1, "size": 30}
    text = json.dumps(lock, indent=2)
    (dproj / LOCK).write_text(text, encoding="utf-8")
    shutil.rmtree(dproj / "out")
    before = tree(tmp_path)
    proc = inv.pivot(["checkout"], dproj)
    assert "Traceback" not in proc.stderr, inv.describe(proc)
    field = "outs[" + json.dumps(bad_key) + "]"
    line = cause_line(proc, str(dproj / LOCK), field, why)
    assert line.startswith("WARNING: "), line
    # Nothing written anywhere (the lock is unreadable, so `out` is not restored either).
    assert tree(tmp_path) == before
    assert (dproj / LOCK).read_text(encoding="utf-8") == text
    assert not (outside / "evil").exists() and not (tmp_path / "evil").exists()
    # I5: fixing the lock (here: re-running the stage) makes everything consistent again.
    ok(dproj, "repro")
    assert ok(dproj, "status", "-q").stderr == ""


def test_hostile_pvt_file_is_rejected(dproj: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    fh = _put(dproj, PAYLOAD)
    for bad in ("../outside/pwn", str(outside / "pwn"), "a\x00b"):
        pvt = dproj / "evil.pvt"
        record = {"hash": fh, "is_dir": False, "nfiles": 1, "path": bad, "size": len(PAYLOAD)}
        pvt.write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")
        before = tree(tmp_path)
        proc = fails(dproj, "checkout", "evil.pvt")
        cause_line(proc, "evil.pvt", "path")
        assert tree(tmp_path) == before
        assert not (outside / "pwn").exists()
    (dproj / "evil.pvt").unlink()
    ok(dproj, "checkout")
