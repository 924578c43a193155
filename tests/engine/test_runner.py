"""Execution: failures, keep-going / fail-fast, mutex, exact runs, IncrementalOut, --no-commit."""

from __future__ import annotations

import json

from _engine_helpers import Proj, statuses

from pivot.engine import commit

FAILING = """
def bad() -> Annotated[str, outputs.Out("out/a.txt", loaders.Text())]:
    _mark("bad")
    pathlib.Path("out").mkdir(exist_ok=True)
    pathlib.Path("out/a.txt").write_text("partial")
    print("hello from bad")
    import subprocess, sys
    subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('child stderr\\\\n')"])
    raise ValueError("boom")


def after_bad(a: Annotated[str, outputs.Dep("out/a.txt", loaders.Text())]) -> Annotated[
    str, outputs.Out("out/b.txt", loaders.Text())
]:
    _mark("after_bad")
    return a


def slow() -> Annotated[str, outputs.Out("out/slow.txt", loaders.Text())]:
    _mark("slow")
    time.sleep(0.8)
    return "slow"


def after_slow(s: Annotated[str, outputs.Dep("out/slow.txt", loaders.Text())]) -> Annotated[
    str, outputs.Out("out/after_slow.txt", loaders.Text())
]:
    _mark("after_slow")
    return s + "!"


pipeline = Pipeline("f")
pipeline.register(bad)
pipeline.register(after_bad)
pipeline.register(slow)
pipeline.register(after_slow)
"""


def test_fail_fast_then_keep_going(proj: Proj) -> None:
    proj.pipeline(FAILING)
    summary, _ = proj.repro(jobs=2)
    st = statuses(summary)
    assert st["bad"] == ("failed", "ValueError: boom")
    assert st["after_bad"] == ("blocked", "blocked by bad")
    assert st["slow"][0] == "ran"  # already running when bad failed: allowed to finish
    assert st["after_slow"][0] == "blocked"  # fail-fast: nothing new starts
    out = summary.results["bad"].output
    assert "hello from bad" in out and "child stderr" in out and "boom" in out
    # a failed stage records nothing; its partial output stays on disk
    assert proj.lock("bad") is None
    assert proj.read("out/a.txt") == "partial"
    assert proj.lock("slow") is not None
    assert proj.marks("after_bad") == 0

    summary, _ = proj.repro(jobs=2, keep_going=True)
    st = statuses(summary)
    assert st["bad"][0] == "failed"
    assert st["after_bad"] == ("blocked", "blocked by bad")
    assert st["slow"] == ("skipped", "unchanged")
    assert st["after_slow"] == ("ran", "No previous run")
    assert (summary.failed, summary.blocked, summary.ran, summary.skipped) == (1, 1, 1, 1)


MUTEX = """
def _span(name):
    start = time.time()
    time.sleep(0.4)
    with open(f"span_{name}.json", "w") as f:
        f.write(f"[{start}, {time.time()}]")


def one() -> None:
    _span("one")


def two() -> None:
    _span("two")


def three() -> None:
    _span("three")


pipeline = Pipeline("m")
pipeline.register(one, mutex="gpu")
pipeline.register(two, mutex=["gpu"])
pipeline.register(three)
"""


def test_mutex_groups_never_overlap(proj: Proj) -> None:
    proj.pipeline(MUTEX)
    summary = proj.run_exact(["one", "two", "three"], jobs=3)
    assert summary.ran == 3
    a, b = (json.loads(proj.read(f"span_{n}.json")) for n in ("one", "two"))
    assert a[1] <= b[0] or b[1] <= a[0], (a, b)


EXACT = """
def first() -> Annotated[str, outputs.Out("out/1.txt", loaders.Text())]:
    _mark("first")
    return "1"


def second(x: Annotated[str, outputs.Dep("out/1.txt", loaders.Text())]) -> Annotated[
    str, outputs.Out("out/2.txt", loaders.Text())
]:
    _mark("second")
    return x + "2"


def boom() -> None:
    raise RuntimeError("nope")


def die() -> None:
    import os

    os._exit(3)


def log(
    prev: Annotated[str, outputs.IncrementalOut("out/log.txt", loaders.Text())],
    x: Annotated[str, outputs.Dep("out/1.txt", loaders.Text())],
) -> Annotated[str, outputs.IncrementalOut("out/log.txt", loaders.Text())]:
    _mark("log")
    return prev + x + "\\n"


pipeline = Pipeline("e")
pipeline.register(first)
pipeline.register(second)
pipeline.register(boom)
pipeline.register(die)
pipeline.register(log)
"""


def test_exact_run_keep_going_incremental_and_no_commit(proj: Proj) -> None:
    proj.pipeline(EXACT)
    # `run`: exact stages in the given order, keep going past a failure
    summary = proj.run_exact(["boom", "die", "first", "log"], jobs=1)
    assert list(summary.results) == ["boom", "die", "first", "log"]
    assert statuses(summary)["boom"] == ("failed", "RuntimeError: nope")
    # a worker that dies takes only its stage down; a new pool serves the rest
    assert statuses(summary)["die"][0] == "failed"
    assert "worker process died" in statuses(summary)["die"][1]
    assert summary.ran == 2
    assert proj.read("out/log.txt") == "1\n"

    # IncrementalOut: the previous version comes back as a writable copy and grows
    proj.write("out/1.txt", "X")  # edit the dep (a declared output: recorded version differs)
    summary = proj.run_exact(["log"])
    assert statuses(summary)["log"] == ("ran", "Input dependencies changed")
    assert proj.read("out/log.txt") == "1\nX\n"

    # --no-commit: runs and hashes, writes nothing durable
    objects, entries = len(proj.objects()), len(proj.run_entries())
    summary, _ = proj.repro(["second"], no_commit=True)
    st = statuses(summary)
    # first's output was edited above but is cached: restored, not run
    assert st == {
        "first": ("skipped", "restored from cache"),
        "second": ("ran", "No previous run"),
    }
    assert proj.lock("second") is None
    assert (len(proj.objects()), len(proj.run_entries())) == (objects, entries)
    # a later repro runs it again; `commit` records it instead
    assert proj.decide(["second"])["second"].reason == "No previous run"
    result = commit.commit(proj.ctx(), None)
    assert "second" in result.committed and "first" not in result.committed
    assert not result.failed
    assert proj.decide(["second"])["second"].reason == "unchanged"
    summary, _ = proj.repro(["second"])
    assert summary.ran == 0
    assert proj.marks("second") == 1


def test_uncached_incremental_needs_permission(proj: Proj) -> None:
    proj.pipeline(EXACT)
    proj.write("out/1.txt", "seed")
    proj.write("out/log.txt", "from before\n")
    summary = proj.run_exact(["log"])
    failed = summary.results["log"]
    assert failed.status == "failed"
    assert "out/log.txt" in failed.reason and "--allow-uncached-incremental" in failed.reason
    assert proj.read("out/log.txt") == "from before\n"
    summary = proj.run_exact(["log"], allow_uncached_incremental=True)
    assert summary.ran == 1
    assert proj.read("out/log.txt") == "from before\nseed\n"


OLD_OUTPUT_DIR = """
class P(StageParams):
    n: int = 3


def tree(params: P) -> Annotated[pathlib.Path, outputs.Out("out/tree", loaders.PathOnly())]:
    root = pathlib.Path("out/tree")
    # The old output is gone before the stage starts (it is deleted while the stage runs).
    assert not root.exists(), "old output still present"
    for i in range(params.n):
        (root / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 2}" / f"f{i}.txt").write_text(f"{i}")
    return root


pipeline = Pipeline("old")
pipeline.register(tree)
"""


def test_old_output_directory_is_gone_before_the_stage_and_leaves_nothing(proj: Proj) -> None:
    proj.pipeline(OLD_OUTPUT_DIR)
    summary, _ = proj.repro()
    assert statuses(summary)["tree"][0] == "ran"
    proj.write("params.yaml", "tree:\n  n: 5\n")
    summary, _ = proj.repro()
    assert statuses(summary)["tree"] == ("ran", "Params changed")
    # Whether the moved-aside tree is still being deleted when the stage starts is a race; what
    # holds every time: the stage never saw it in place, and it is gone once the stage is done.
    tmp = proj.root / ".pivot" / "tmp"
    assert not [p.name for p in tmp.iterdir() if p.name.startswith(".pvtmp-")]
    files = sorted(p.name for p in (proj.root / "out" / "tree").rglob("*.txt"))
    assert files == [f"f{i}.txt" for i in range(5)]


def test_trash_left_by_a_dead_worker_is_removed_by_the_next_command(proj: Proj) -> None:
    proj.pipeline(OLD_OUTPUT_DIR)
    proj.repro()
    tmp = proj.root / ".pivot" / "tmp"
    stray = tmp / ".pvtmp-2147483646-trash-0"  # no such pid
    (stray / "sub").mkdir(parents=True)
    (stray / "sub" / "f").write_text("x")
    (stray / "sub" / "f").chmod(0o444)
    proj.ctx()  # any command loading the project
    assert not stray.exists()


def test_state_temps_left_by_a_dead_process_are_removed_by_the_next_command(
    proj: Proj,
) -> None:
    # The fingerprint cache and params state are written with write_atomic: a crash leaves a
    # `.pvtmp-<pid>-…` beside them, which the next command removes.
    proj.pipeline(OLD_OUTPUT_DIR)
    proj.repro()
    state = proj.root / ".pivot" / "state"
    assert (state / "fingerprints.json").is_file()
    assert not [p.name for p in state.iterdir() if p.name.startswith(".pvtmp-")]
    stray = state / ".pvtmp-2147483646-0-abc"  # no such pid
    stray.write_text("half a fingerprint cache")
    proj.ctx()
    assert not stray.exists()
