"""Case 3: a dependency appended to while `commit` hashes it; case 4: a same-size edit with the
mtime set back (caught by ctime) and an edit in the same timestamp tick as the last hash (caught
by the racy-clean rule)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import _invariants as inv
from _project import Proj, make

BIG_PIPELINE = """
import pathlib
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def consume(
    big: Annotated[pathlib.Path, outputs.Dep("big.bin", loaders.PathOnly())],
) -> Annotated[str, outputs.Out("size.txt", loaders.Text())]:
    with open("runs.log", "a", encoding="utf-8") as f:
        f.write("consume\\n")
    return str(pathlib.Path(big).stat().st_size) + "\\n"


pipeline = Pipeline("races")
pipeline.register(consume)
"""


def test_dependency_appended_while_commit_hashes_it(tmp_path: Path) -> None:
    p = make(tmp_path / "p")
    p.write("pipeline.py", BIG_PIPELINE)
    big = p.root / "big.bin"
    big.write_bytes(os.urandom(1 << 20) * 48)  # 48 MiB: hashing takes a while
    p.ok("repro")
    before = inv.snapshot(p.root, ("size.txt",))

    stop = threading.Event()

    def append() -> None:
        with open(big, "ab") as f:
            while not stop.is_set():
                f.write(b"x" * 4096)
                f.flush()
                time.sleep(0.001)

    t = threading.Thread(target=append)
    t.start()
    try:
        time.sleep(0.1)
        proc = p.pivot("commit", "consume")
        status = p.pivot("status", "-q")
    finally:
        stop.set()
        t.join()
    if proc.returncode != 0:
        inv.check_i4(proc, "big.bin")  # "changed while pivot was reading it"
    # Either way the stage is not up to date: the dependency kept changing after any hash.
    assert status.returncode == 1, inv.describe(status)
    inv.check_i1(p.root)  # no object whose content differs from its name
    inv.check_i2(p.root)
    before.pop("big.bin")
    inv.check_i3(before, p.root, ("size.txt",))
    inv.check_i5(p.root, ["repro"])
    p.up_to_date()
    assert p.read("size.txt") == f"{big.stat().st_size}\n"


def index_hit(p: Proj, rel: str) -> tuple[str, int]:
    """(hash, bytes read) of `rel` through the project's stat index, in process."""
    from pivot import _native

    before = _native._debug_stats()["bytes_read"]
    info = _native.hash_path(str(p.root / rel), str(p.root / ".pivot" / "state"))
    return info["hash"], _native._debug_stats()["bytes_read"] - before


def test_same_size_edit_with_mtime_set_back_is_detected(tmp_path: Path) -> None:
    p = make(tmp_path / "p")
    old = os.stat(p.root / "input.txt")
    time.sleep(2.2)  # let input.txt become older than the racy-clean window
    p.ok("repro")
    before = p.snapshot()
    h, read = index_hit(p, "input.txt")
    assert read == 0, "the stat index should trust input.txt (else this test proves nothing)"
    p.up_to_date()

    p.write("input.txt", "HELLO\n")  # same size
    os.utime(p.root / "input.txt", ns=(old.st_atime_ns, old.st_mtime_ns))
    st = os.stat(p.root / "input.txt")
    assert (st.st_size, st.st_mtime_ns) == (old.st_size, old.st_mtime_ns)

    assert index_hit(p, "input.txt")[0] != h  # ctime moved: re-hashed
    assert p.pivot("status", "-q").returncode == 1
    before["input.txt"] = inv.file_hash(p.root / "input.txt")
    p.clear_runs()
    inv.check_i5(p.root, ["repro"])
    assert p.runs() == ["produce", "summarize"]
    p.outputs_correct()
    p.check(before)


def test_edit_in_same_tick_as_last_hash_is_detected(tmp_path: Path) -> None:
    p = make(tmp_path / "p")
    p.ok("repro")  # hashes input.txt moments after it was written: racily clean
    st = os.stat(p.root / "input.txt")
    p.write("input.txt", "HELLO\n")  # same size, right after the hash
    os.utime(p.root / "input.txt", ns=(st.st_atime_ns, st.st_mtime_ns))  # same tick
    assert p.pivot("status", "-q").returncode == 1
    p.clear_runs()
    inv.check_i5(p.root, ["repro"])
    assert p.runs() == ["produce", "summarize"]
    p.outputs_correct()
    p.check()
