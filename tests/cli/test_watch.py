"""`pivot repro --watch`: a real watching subprocess on a temp project, driven by file edits."""

from __future__ import annotations

import json
import pathlib
import subprocess
import textwrap
import time

import pytest
from _pivot_helpers import Project, make_project, pivot_argv, run_ok
from _watch_helpers import HELPERS, PIPELINE, TIMEOUT_S, WatchProc, alive, descendants, ran

EXTRA_STAGE = """

def extra(
    text: Annotated[str, outputs.Dep("count.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("extra.txt", loaders.Text())]:
    _mark("extra")
    return text * 2


pipeline.register(extra)
"""


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    p = make_project(tmp_path / "p", PIPELINE)
    p.write("helpers.py", textwrap.dedent(HELPERS))
    return p


def _edit(proj: Project, rel: str, text: str) -> None:
    proj.write(rel, text)


def test_watch_reruns_what_changes_make_stale(proj: Project) -> None:
    w = WatchProc(proj.root)
    try:
        # initial run, without --force
        first = w.next_run()
        assert first[0]["trigger"] == "initial"
        assert ran(first) == {"shout", "count"}
        assert proj.read("shout.txt") == "HELLO\n"

        # a data dependency changed: shout and its dependent re-run
        _edit(proj, "input.txt", "hi\n")
        events = w.next_run()
        assert ran(events) == {"shout", "count"}
        assert proj.read("shout.txt") == "HI\n"

        # a helper function in a sibling module changed: re-imported, re-fingerprinted, re-run
        _edit(proj, "helpers.py", "def decorate(text):\n    return text.upper() + '!'\n")
        events = w.next_run()
        by_stage = {e["stage"]: e for e in events if e["type"] == "stage_complete"}
        assert by_stage["shout"]["status"] == "ran"
        assert by_stage["shout"]["reason"] == "Code changed"
        assert proj.read("shout.txt") == "HI\n!"  # the worker ran the new code

        # a stage added: only it runs
        _edit(proj, "pipeline.py", textwrap.dedent(PIPELINE) + textwrap.dedent(EXTRA_STAGE))
        events = w.next_run()
        assert ran(events) == {"extra"}
        assert proj.exists("extra.txt")

        # a broken pipeline: an error that names the file, the loop keeps going
        good = proj.read("pipeline.py")
        _edit(proj, "pipeline.py", good + "\nthis is not python(\n")
        err = w.wait_for(lambda e: e["type"] == "pipeline_error", "a pipeline error")
        assert "pipeline.py" in err["message"] and err["kept_last_good"] is True
        assert "keeping the last good pipeline" in w.stderr()
        assert w.proc.poll() is None

        # fixed (and a param of the work changed meanwhile): runs again
        _edit(proj, "input.txt", "fixed\n")
        _edit(proj, "pipeline.py", good)
        events = w.next_run()
        assert {"shout", "count", "extra"} <= ran(events)
        assert proj.read("shout.txt") == "FIXED\n!"

        # params.yaml changed: the stage whose params changed runs, and its dependent
        _edit(proj, "params.yaml", "count:\n  times: 3\n")
        events = w.next_run()
        by_stage = {e["stage"]: e for e in events if e["type"] == "stage_complete"}
        assert ran(events) == {"count", "extra"}
        assert by_stage["count"]["reason"] == "Params changed"
        assert proj.read("count.txt") == str(len("FIXED\n!") * 3)

        # a stage removed: gone from the runs, nothing else runs
        _edit(proj, "pipeline.py", textwrap.dedent(PIPELINE))
        events = w.next_run()
        assert events[0]["stages"] == ["shout", "count"]
        assert ran(events) == set()

        # the outputs (and runs.log) written by that run do not trigger another run
        proj.clear_runs()
        assert [e for e in w.quiet_for(2.0) if e["type"] == "run_start"] == []
        assert proj.runs() == []
    finally:
        code = w.interrupt()
    assert code == 130, w.stderr()
    assert "Traceback" not in w.stderr()


def test_watch_ctrl_c_kills_workers_and_leaves_no_lock(proj: Project) -> None:
    proj.write("BLOCK", "")
    w = WatchProc(proj.root)
    try:
        w.wait_for(lambda e: e["type"] == "stage_start" and e["stage"] == "shout", "shout")
        deadline = time.monotonic() + TIMEOUT_S
        while not proj.exists("started"):
            assert time.monotonic() < deadline, w.stderr()
            assert w.proc.poll() is None, w.stderr()
            time.sleep(0.05)
        family = descendants(w.proc.pid)
        assert family  # the fork server and the worker running `shout`
    finally:
        code = w.interrupt()
    assert code == 130
    err = w.stderr()
    assert "Interrupted" in err and "Traceback" not in err
    deadline = time.monotonic() + 20
    while alive(family):
        assert time.monotonic() < deadline, f"processes left behind: {alive(family)}"
        time.sleep(0.1)
    # no stale execution lock: the next run starts at once and does not wait for anyone
    (proj.root / "BLOCK").unlink()
    done = subprocess.run(
        [*pivot_argv(), "repro"], cwd=proj.root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "waiting for" not in done.stderr
    assert "✓ shout done" in done.stderr


def test_watch_starts_with_a_broken_pipeline_and_waits_for_a_fix(proj: Project) -> None:
    good = proj.read("pipeline.py")
    proj.write(
        "pipeline.py", good.replace("from helpers import decorate", "from helpers import nope")
    )
    w = WatchProc(proj.root)
    try:
        err = w.wait_for(lambda e: e["type"] == "pipeline_error", "a pipeline error")
        assert err["kept_last_good"] is False and "nope" in err["message"]
        assert "(waiting for a fix)" in w.stderr()
        proj.write("pipeline.py", good)
        assert ran(w.next_run()) == {"shout", "count"}
    finally:
        assert w.interrupt() == 130


def test_serve_requires_watch(proj: Project) -> None:
    result = run_ok(proj.cli("repro", "--serve"), 2)
    assert "--serve requires --watch" in result.output
    result = run_ok(proj.cli("repro", "--debounce", "50"), 2)
    assert "--debounce requires --watch" in result.output
    result = run_ok(proj.cli("repro", "--watch", "--dry-run"), 2)
    assert "--watch" in result.output


def test_watch_records_each_run_in_history_and_expands_patterns(proj: Project) -> None:
    """docs/cli.md, "Run history": every run of the loop is a history record; STAGES may be a
    pattern (docs/cli.md, "Selecting stages"), expanded against the loaded pipeline."""
    w = WatchProc(proj.root, "sh*")
    try:
        first = w.next_run()
        assert first[0]["stages"] == ["shout"]
        assert ran(first) == {"shout"}
        _edit(proj, "input.txt", "again\n")
        assert ran(w.next_run()) == {"shout"}
    finally:
        assert w.interrupt() == 130
    shown = subprocess.run(
        [*pivot_argv(), "history", "--json"],
        cwd=proj.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    runs = json.loads(shown.stdout)["runs"]
    assert [r["command"] for r in runs] == ["repro", "repro"]
    assert [r["args"]["trigger"] for r in runs] == ["changed: input.txt", "initial"]
    assert all(r["args"]["watch"] is True and r["ok"] for r in runs)
    assert [[s["stage"] for s in r["stages"]] for r in runs] == [["shout"], ["shout"]]
