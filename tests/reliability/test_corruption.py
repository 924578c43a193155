"""Case 5: a cache object flipped in one byte, overwritten with same-length random bytes,
truncated or deleted; case 6: a hard-linked output edited in place after `chmod u+w`.

`verify --cache` reports each (naming the output path), `checkout` refuses the object (one line
naming object and output, destination untouched), `status` never calls the stage up to date on
the strength of it, and `repro` re-runs the stage instead of restoring corrupt bytes — which also
repairs the object (I1 holds again afterwards).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import _invariants as inv
import pytest
from _project import Proj

VICTIM = 7  # data/out/d3/f0007.txt
VICTIM_REL = "data/out/d3/f0007.txt"


def victim_hash(p: Proj) -> str:
    return inv.file_hash(p.out_file(VICTIM)) if p.out_file(VICTIM).exists() else ""


def corrupt(path: Path, how: str) -> None:
    os.chmod(path, stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
    data = path.read_bytes()
    if how == "flip":
        with open(path, "r+b") as f:
            f.seek(len(data) // 2)
            f.write(bytes([data[len(data) // 2] ^ 0x01]))
    elif how == "random":
        with open(path, "r+b") as f:
            f.write(os.urandom(len(data)))
    elif how == "truncate":
        os.truncate(path, len(data) // 2)
    else:
        path.unlink()


@pytest.mark.parametrize("how", ["flip", "random", "truncate", "delete"])
def test_corrupt_object_is_reported_refused_and_never_trusted(built: Proj, how: str) -> None:
    before = built.snapshot()
    h = victim_hash(built)
    obj = inv.object_path(built.root, h)
    assert obj.is_file()
    # Restore the workspace as a private copy so only the cache object is damaged (the
    # hard-linked case, where both change together, is test_hardlinked_output_edited_in_place).
    shutil.rmtree(built.root / "data" / "out")
    built.ok("checkout", "data/out", "--checkout-mode", "copy")
    built.up_to_date()
    corrupt(obj, how)

    # verify --cache: reported as corrupt / missing, with the output path it belongs to.
    proc = built.pivot("verify", "--cache", "--json")
    assert proc.returncode == 1, inv.describe(proc)
    report = json.loads(proc.stdout)["cache"]
    kind = "missing" if how == "delete" else "corrupt"
    assert report[kind] == {h: [f"produce: data/out/{VICTIM_REL[len('data/out/') :]}"]}, report
    if how in ("flip", "delete"):
        human = built.pivot("verify", "--cache")
        assert human.returncode == 1
        line = f"produce: {VICTIM_REL}: cache object {h} {kind}"
        assert line in human.stdout, inv.describe(human)
        sample = built.pivot("verify", "--cache", "--sample", "100", "--json")
        assert json.loads(sample.stdout)["cache"][kind] == report[kind]

    # The workspace is intact, so the stage is up to date; now lose the workspace output.
    shutil.rmtree(built.root / "data" / "out")
    assert built.pivot("status", "-q").returncode == 1

    # checkout refuses the object in every mode and leaves the destination untouched.
    for mode in ("hardlink", "copy"):
        proc = built.pivot("checkout", "data/out", "--checkout-mode", mode)
        inv.check_i4(proc, "data/out")
        assert h in proc.stderr, inv.describe(proc)
        assert not (built.root / "data" / "out").exists(), mode
    inv.check_i3(before, built.root, ("data/out/", "summary.txt"))  # I1 is broken on purpose

    # repro: restoring fails, so the stage runs again — never corrupt outputs.
    built.clear_runs()
    inv.check_i5(built.root, ["repro"])
    assert "produce" in built.runs()
    built.outputs_correct()
    built.up_to_date()
    built.check(before)  # I1: the object was replaced by the re-run's correct bytes


def test_corrupt_single_file_object_refused(built: Proj) -> None:
    h = inv.file_hash(built.root / "summary.txt")
    (built.root / "summary.txt").unlink()
    corrupt(inv.object_path(built.root, h), "flip")
    proc = built.pivot("checkout", "summary.txt")
    inv.check_i4(proc, "summary.txt")
    assert not (built.root / "summary.txt").exists()
    inv.check_i5(built.root, ["repro"])
    built.up_to_date()
    inv.check_i1(built.root)


@pytest.mark.parametrize("size", ["same", "longer"])
def test_hardlinked_output_edited_in_place(built: Proj, size: str) -> None:
    before = built.snapshot()
    ws = built.out_file(VICTIM)
    h = inv.file_hash(ws)
    obj = inv.object_path(built.root, h)
    assert os.stat(ws).st_ino == os.stat(obj).st_ino, "hardlink mode expected"
    assert not os.access(ws, os.W_OK) or os.getuid() == 0
    os.chmod(ws, 0o644)
    data = ws.read_bytes()
    with open(ws, "r+b") as f:  # in place: same inode, so the object changes too
        f.write(b"X" * len(data) if size == "same" else data + b"more")
    os.utime(ws, ns=(os.stat(obj).st_atime_ns, os.stat(obj).st_mtime_ns))

    proc = built.pivot("status", "--json")
    assert built.pivot("status", "-q").returncode == 1, inv.describe(proc)
    assert "produce" in proc.stdout
    v = built.pivot("verify", "--cache", "--json")
    assert v.returncode == 1, inv.describe(v)
    doc = json.loads(v.stdout)
    assert "produce" in doc["stale"]
    assert h in doc["cache"]["corrupt"], doc["cache"]

    built.clear_runs()
    inv.check_i5(built.root, ["repro"])
    assert built.runs()[0] == "produce"
    built.outputs_correct()
    built.up_to_date()
    built.check(before)
