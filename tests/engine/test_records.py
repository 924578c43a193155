"""commit, checkout, track and verify on a real project (directory output included)."""

from __future__ import annotations

import os
import shutil
import threading

import orjson
import pytest
from _engine_helpers import Proj, statuses

from pivot.engine import checkout, commit, track, verify
from pivot.engine.events import Progress

DIR_PIPELINE = """
def shout(text):
    return text.upper()


def prep(raw: Annotated[str, outputs.Dep("data/raw.txt", loaders.Text())]) -> Annotated[
    str, outputs.Out("out/clean.txt", loaders.Text())
]:
    _mark("prep")
    return shout(raw)


def split(clean: Annotated[str, outputs.Dep("out/clean.txt", loaders.Text())]) -> Annotated[
    dict, outputs.DirectoryOut("out/parts/", loaders.Text())
]:
    _mark("split")
    return {f"p{i}.txt": ch for i, ch in enumerate(clean.strip())}


pipeline = Pipeline("d")
pipeline.register(prep)
pipeline.register(split)
"""


@pytest.fixture
def ran(proj: Proj) -> Proj:
    proj.pipeline(DIR_PIPELINE)
    proj.write("data/raw.txt", "abc\n")
    summary, _ = proj.repro()
    assert summary.ran == 2, statuses(summary)
    return proj


def test_commit_no_args_only_stale_named_unconditional(ran: Proj) -> None:
    assert commit.commit(ran.ctx(), None).committed == []
    split_lock = (ran.root / ".pivot/stages/split.lock").read_bytes()

    # a code change that does not change results: record it without running
    ran.pipeline(DIR_PIPELINE.replace("return text.upper()", "return str.upper(text)"))
    assert ran.decide()["prep"].reason == "Code changed"
    result = commit.commit(ran.ctx(), None)
    assert (result.committed, result.failed) == (["prep"], {})
    assert ran.reasons() == {"prep": "unchanged", "split": "unchanged"}
    assert ran.marks("prep") == 1

    # named: unconditionally (same state -> same lock bytes)
    result = commit.commit(ran.ctx(), ["split"])
    assert result.committed == ["split"]
    assert (ran.root / ".pivot/stages/split.lock").read_bytes() == split_lock

    # a missing output fails that stage only; the others are still committed
    shutil.rmtree(ran.root / "out/parts")
    ran.pipeline(DIR_PIPELINE.replace("return text.upper()", "return text.upper() + ''"))
    result = commit.commit(ran.ctx(), None)
    assert result.committed == ["prep"]
    assert list(result.failed) == ["split"]
    assert "out/parts" in result.failed["split"]
    assert (ran.root / ".pivot/stages/split.lock").read_bytes() == split_lock


class _Progress:
    def __init__(self) -> None:
        self.seen: list[Progress] = []
        self.threads: set[int] = set()

    def progress(self, progress: Progress) -> None:
        self.seen.append(progress)
        self.threads.add(threading.get_ident())


def test_commit_missing_dep_and_progress(proj: Proj) -> None:
    proj.pipeline(DIR_PIPELINE)
    proj.write("data/raw.txt", "xy\n")
    proj.write("out/clean.txt", "XY\n")
    proj.write("out/parts/p0.txt", "X")
    sink = _Progress()
    result = commit.commit(proj.ctx(), None, progress=sink)
    assert sorted(result.committed) == ["prep", "split"]
    # reported on this thread, from nothing done to everything done, with the files and bytes
    # the cache counted as it inserted them (at least out/parts/p0.txt, 1 byte)
    assert sink.seen[0].stages == 0 and sink.seen[-1].stages == sink.seen[-1].total == 2
    assert sink.seen[-1].files >= 1 and sink.seen[-1].bytes >= 1
    assert sink.threads == {threading.get_ident()}
    lock = proj.lock("split")
    assert lock is not None and lock["outs"]["out/parts"]["is_dir"]
    assert lock["outs"]["out/parts"]["nfiles"] == 1
    os.unlink(proj.root / "data/raw.txt")
    result = commit.commit(proj.ctx(check_missing=False), ["prep"])
    assert result.committed == []
    assert "data/raw.txt" in result.failed["prep"]


def test_checkout_refuse_force_only_missing(ran: Proj) -> None:
    parts = ran.root / "out/parts"
    shutil.rmtree(parts)
    ran.write("out/clean.txt", "user edit\n")
    ctx = ran.ctx()

    result = checkout.checkout(ctx, None, only_missing=True)
    assert result.restored == ["out/parts"]
    assert sorted(p.name for p in parts.iterdir()) == ["p0.txt", "p1.txt", "p2.txt"]
    assert ran.read("out/clean.txt") == "user edit\n"

    result = checkout.checkout(ctx, ["out/clean.txt"])
    assert list(result.refused) == ["out/clean.txt"]
    assert "--force" in result.refused["out/clean.txt"]
    assert not result.ok
    assert ran.read("out/clean.txt") == "user edit\n"

    result = checkout.checkout(ctx, ["prep"], force=True)
    assert result.restored == ["out/clean.txt"] and result.ok
    assert ran.read("out/clean.txt") == "ABC\n"
    assert checkout.checkout(ctx, None).skipped == ["out/clean.txt", "out/parts"]

    # a missing cache object is reported per path
    lock = ran.lock("prep")
    assert lock is not None
    h = lock["outs"]["out/clean.txt"]["hash"]
    obj = ran.root / ".pivot/cache/files" / h[:2] / h[2:]
    os.chmod(obj.parent, 0o755)
    os.unlink(obj)
    os.unlink(ran.root / "out/clean.txt")
    result = checkout.checkout(ctx, ["out/clean.txt"])
    assert list(result.missing) == ["out/clean.txt"] and not result.ok

    # verify: the missing object and the stale stage are both reported
    v = verify.verify(ran.ctx())
    assert not v.ok
    assert v.missing == {"prep": ["out/clean.txt"]}
    assert v.stale["prep"] == "Outputs missing or modified"
    assert orjson.loads(orjson.dumps(v.to_json()))["ok"] is False


def test_track_checkout_and_verify(ran: Proj) -> None:
    ran.write("data/extra/a.txt", "a")
    ran.write("data/extra/b.txt", "bb")
    written = track.track(ran.ctx(), [ran.root / "data/extra"])
    pvt = ran.root / "data/extra.pvt"
    assert written == [pvt]
    doc = orjson.loads(pvt.read_bytes())
    assert doc["path"] == "extra" and doc["is_dir"] and doc["nfiles"] == 2 and doc["size"] == 3
    assert pvt.read_bytes() == orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) + b"\n"
    assert verify.verify(ran.ctx()).ok

    shutil.rmtree(ran.root / "data/extra")
    result = checkout.checkout(ran.ctx(), ["data/extra.pvt"])
    assert result.restored == ["data/extra"]
    assert ran.read("data/extra/b.txt") == "bb"

    with pytest.raises(Exception, match="stage 'prep'"):
        track.track(ran.ctx(), [ran.root / "out/clean.txt"])
