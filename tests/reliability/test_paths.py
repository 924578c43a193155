"""Case 11: hostile paths. Every name round-trips repro -> delete outputs -> checkout
byte-identically; symlinks never let pivot read or write outside the project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import _invariants as inv
import blake3
import pytest
from _hostile import cause_line, fails, new_project, ok, tree

NFC = unicodedata.normalize("NFC", "caf\u00e9")
NFD = unicodedata.normalize("NFD", "caf\u00e9")
# 255 bytes (the NAME_MAX of ext4/tmpfs), multi-byte UTF-8: 127 x "é" (2 bytes) + "x".
LONG_UTF8 = "\u00e9" * 127 + "x"
ODD_NAMES = [
    "with space.txt",
    " leading and trailing ",
    "new\nline.txt",
    "tab\tand\rcr",
    os.fsdecode(b"latin1-\xe9-\xff\xfe.bin"),  # not UTF-8: surrogateescape round-trip
    NFC,
    NFD,  # a second, distinct file: pivot must not normalise names
    "x" * 255,
    LONG_UTF8,
    'quote"back\\slash',
    "empty",  # 0 bytes
]
SPARSE = 1 << 30  # 1 GiB, no blocks allocated

PATHS_PIPELINE = f"""
NAMES = {ODD_NAMES!r}


def odd(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("odd/", loaders.PathOnly())]:
    out = pathlib.Path("odd")
    (out / "sub dir" / {LONG_UTF8!r}).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(NAMES):
        data = b"" if name == "empty" else (str(i) + ":" + repr(name) + src).encode()
        (out / name).write_bytes(data)
    (out / "sub dir" / {LONG_UTF8!r} / {LONG_UTF8!r}).write_text("deep " + src, encoding="utf-8")
    with open(out / "sparse.bin", "wb") as f:
        f.truncate({SPARSE})
    return out


def long_name(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out({"y" * 255!r}, loaders.PathOnly())]:
    p = pathlib.Path({"y" * 255!r})
    p.write_text("a file output whose own name is 255 bytes", encoding="utf-8")
    return p


def spaced(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("my data/{NFD} é.txt", loaders.Text())]:
    return "spaced " + src


pipeline = Pipeline("paths")
pipeline.register(odd)
pipeline.register(long_name)
pipeline.register(spaced)
"""
PATHS_OUTS = ["odd", "y" * 255, f"my data/{NFD} é.txt"]


def test_hostile_names_round_trip(tmp_path: Path) -> None:
    root = new_project(tmp_path / "p", PATHS_PIPELINE, {"notes/user.txt": "mine\n"})
    user = inv.snapshot(root, PATHS_OUTS)
    start = time.monotonic()
    ok(root, "repro")
    odd = root / "odd"
    names = set(os.listdir(os.fsencode(odd)))
    assert {os.fsencode(n) for n in ODD_NAMES} <= names
    assert os.fsencode(NFC) != os.fsencode(NFD) and len(names) == len(ODD_NAMES) + 2
    assert (odd / "sparse.bin").stat().st_size == SPARSE
    before = {rel: tree(root / rel) for rel in PATHS_OUTS}
    assert before["odd"][b"empty"].endswith(":" + blake3.blake3(b"").hexdigest())
    ok(root, "status", "-q")

    for rel in PATHS_OUTS:
        p = root / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    restored = ok(root, "checkout")
    assert "Restored 3" in restored.stderr, restored.stderr
    assert {rel: tree(root / rel) for rel in PATHS_OUTS} == before
    assert ok(root, "status", "-q").stderr == ""
    # Restores leave no temp names behind (they are short, so the 255-byte names fit).
    leftovers = [p for p in root.rglob(".pv*") if ".pivot" not in p.parts]
    assert leftovers == []
    inv.check_all(root, user, PATHS_OUTS)
    # The 1 GiB sparse file is hashed, not read forever (generous bound for a loaded 2-core box).
    assert time.monotonic() - start < 60


@pytest.fixture
def shm_root(tmp_path: Path) -> Iterator[Path]:
    """A project directory on tmpfs: 200,000 tiny files measure pivot, not the disk. Our own
    tmpfs mount when we may mount (unmounting frees 400,000 names at once), else `/dev/shm`."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4g,mode=0755", "tmpfs", str(mnt)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if mounted:
        d = mnt
    else:
        shm = Path("/dev/shm")
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
        d = Path(tempfile.mkdtemp(prefix="pivot-200k-", dir=base))
    try:
        yield d
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)
        else:
            subprocess.run(["rm", "-rf", str(d)], check=False)


MANY_PIPELINE = """
def many(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("many/", loaders.PathOnly())]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for d in range(200):
        sub = "many/d" + str(d).zfill(3)
        os.makedirs(sub, exist_ok=True)
        for i in range(1000):
            fd = os.open(sub + "/" + str(i), flags, 0o644)
            os.write(fd, (str(d) + "." + str(i)).encode())
            os.close(fd)
    return pathlib.Path("many")


pipeline = Pipeline("many")
pipeline.register(many)
"""


@pytest.mark.slow
def test_directory_output_with_200k_entries(shm_root: Path) -> None:
    root = new_project(shm_root / "p", MANY_PIPELINE)
    ok(root, "repro")
    many = root / "many"
    assert sum(len(files) for _, _, files in os.walk(many)) == 200_000
    shutil.rmtree(many)
    ok(root, "checkout")
    count = 0
    for dirpath, _, files in os.walk(many):
        d = int(os.path.basename(dirpath)[1:]) if dirpath != str(many) else None
        for f in files:
            count += 1
            if int(f) % 97 == 0:  # spot-check contents
                assert Path(dirpath, f).read_text() == f"{d}.{f}"
    assert count == 200_000
    assert ok(root, "status", "-q").stderr == ""
    # I1 on a sample (hashing 200,000 objects in Python would dominate the test).
    objs = inv.all_objects(root)
    assert len(objs) == 200_001
    for name, path in objs[:: len(objs) // 500]:
        assert inv.file_hash(path) == name


LINK_PIPELINE = """
def tree_out(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("out/", loaders.PathOnly())]:
    sub = pathlib.Path("out/sub")
    sub.mkdir(parents=True, exist_ok=True)
    (sub / "a.txt").write_text(src, encoding="utf-8")
    target = pathlib.Path("LINK_TO")
    if target.exists():
        os.symlink(target.read_text(encoding="utf-8"), sub / "leak")
    return pathlib.Path("out")


def deep(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("d/e/f.txt", loaders.Text())]:
    return "deep " + src


pipeline = Pipeline("links")
pipeline.register(tree_out)
pipeline.register(deep)
"""


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    (outside / "e").mkdir(parents=True)
    (outside / "sub").mkdir()
    (outside / "secret.txt").write_text("not the project's\n", encoding="utf-8")
    return outside


def test_symlink_inside_output_pointing_outside(tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    root = new_project(tmp_path / "p", LINK_PIPELINE)
    ok(root, "repro")
    locks = {p.name: p.read_bytes() for p in (root / ".pivot" / "stages").iterdir()}
    objects = inv.all_objects(root)
    outside_before = tree(outside)

    (root / "LINK_TO").write_text(str(outside / "secret.txt"), encoding="utf-8")
    (root / "input.txt").write_text("changed\n", encoding="utf-8")
    proc = fails(root, "repro", "tree_out")
    line = cause_line(proc, "tree_out", str(root / "out" / "sub" / "leak"), "outside")
    assert "\n" not in line
    # Nothing cached, lock unchanged, the outside file untouched.
    assert inv.all_objects(root) == objects
    assert {p.name: p.read_bytes() for p in (root / ".pivot" / "stages").iterdir()} == locks
    assert tree(outside) == outside_before
    inv.check_all(root)
    # The same through `commit`.
    proc = fails(root, "commit", "tree_out")
    cause_line(proc, "tree_out", "leak", "outside")
    assert inv.all_objects(root) == objects

    # I5: remove the cause, re-run.
    (root / "LINK_TO").unlink()
    ok(root, "repro")
    assert (root / "out" / "sub" / "a.txt").read_text(encoding="utf-8") == "changed\n"
    assert ok(root, "status", "-q").stderr == ""
    assert tree(outside) == outside_before


def test_checkout_never_writes_through_a_symlinked_directory(tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    root = new_project(tmp_path / "p", LINK_PIPELINE)
    ok(root, "repro")
    outside_before = tree(outside)
    out_before = tree(root / "out")

    # A parent directory of a file output replaced by a symlink to outside the project.
    shutil.rmtree(root / "d")
    (root / "d").symlink_to(outside, target_is_directory=True)
    proc = fails(root, "checkout")
    cause_line(proc, "d/e/f.txt", str(root / "d"), "outside the project")
    assert tree(outside) == outside_before
    assert (root / "d").is_symlink()

    # A directory inside a directory output replaced by such a symlink: `--force` replaces
    # the link itself and never follows it.
    (root / "out" / "sub").chmod(0o755)
    shutil.rmtree(root / "out" / "sub")
    (root / "out" / "sub").symlink_to(outside / "sub", target_is_directory=True)
    proc = fails(root, "checkout", "out")
    cause_line(proc, "out", "modified")
    ok(root, "checkout", "--force", "out")
    assert tree(root / "out") == out_before
    assert tree(outside) == outside_before

    # The directory output itself replaced by a symlink to outside.
    shutil.rmtree(root / "out")
    (root / "out").symlink_to(outside, target_is_directory=True)
    ok(root, "checkout", "--force", "out")
    assert not (root / "out").is_symlink() and tree(root / "out") == out_before
    assert tree(outside) == outside_before

    # I5: the user removes the symlinked parent; a plain checkout completes the work.
    (root / "d").unlink()
    ok(root, "checkout")
    assert (root / "d" / "e" / "f.txt").read_text(encoding="utf-8") == "deep hello\n"
    assert tree(outside) == outside_before
    assert ok(root, "status", "-q").stderr == ""
