"""`--show-output` streams stage output while stages run; long commands print progress lines
when stderr is not a terminal."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

from _pivot_helpers import Project, jsonl, make_project, pivot_argv, run_ok

# `talk` prints, then (in the streaming test) waits for a file `go` before finishing: seeing its
# first line while it still waits proves the line was streamed, not printed at the end.
TALK_PIPELINE = """
import os
import sys
import time
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def talk(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("talk.txt", loaders.Text())]:
    print("hello from talk", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if os.path.exists("WAIT"):
        deadline = time.monotonic() + 60
        while not os.path.exists("go") and time.monotonic() < deadline:
            time.sleep(0.05)
    os.system("echo from a subprocess")
    if os.path.exists("FAIL"):
        raise RuntimeError("talk failed on purpose")
    return src.upper()


pipeline = Pipeline("talk")
pipeline.register(talk)
"""


def _proj(tmp_path: pathlib.Path) -> Project:
    return make_project(tmp_path / "p", TALK_PIPELINE)


def test_show_output_prefixes_lines_plain(tmp_path: pathlib.Path) -> None:
    proj = _proj(tmp_path)
    result = run_ok(proj.cli("repro", "--show-output"))
    err = result.stderr.splitlines()
    assert "[talk] hello from talk" in err
    assert "[talk] to stderr" in err
    assert "[talk] from a subprocess" in err
    assert err.index("[talk] hello from talk") < err.index(next(x for x in err if "done" in x))
    # the streamed capture file is gone afterwards
    assert not [p for p in (proj.root / ".pivot" / "tmp").iterdir() if p.name.startswith(".pvtmp")]


def test_without_show_output_nothing_is_streamed(tmp_path: pathlib.Path) -> None:
    proj = _proj(tmp_path)
    result = run_ok(proj.cli("repro"))
    assert "hello from talk" not in result.output


def test_failure_still_shows_captured_output(tmp_path: pathlib.Path) -> None:
    proj = _proj(tmp_path)
    proj.write("FAIL", "")
    result = run_ok(proj.cli("repro", "--show-output"), 1)
    err = result.stderr
    assert "[talk] hello from talk" in err
    # the failure block keeps the whole captured output, as without --show-output
    block = err[err.index("✗ talk FAILED") :]
    assert "hello from talk" in block and "talk failed on purpose" in block


def test_json_show_output_events(tmp_path: pathlib.Path) -> None:
    proj = _proj(tmp_path)
    events = jsonl(run_ok(proj.cli("repro", "--json", "--show-output")).stdout)
    kinds = [e["type"] for e in events]
    outs = [e for e in events if e["type"] == "stage_output"]
    assert {"type": "stage_output", "stage": "talk", "line": "hello from talk"} in outs
    assert kinds.index("stage_output") < kinds.index("stage_complete")
    # without --show-output the --json stream has no stage_output events
    events = jsonl(run_ok(proj.cli("repro", "--json", "-f")).stdout)
    assert not [e for e in events if e["type"] == "stage_output"]


def test_output_is_streamed_while_the_stage_runs(tmp_path: pathlib.Path) -> None:
    proj = _proj(tmp_path)
    proj.write("WAIT", "")
    proc = subprocess.Popen(
        [*pivot_argv(), "repro", "--show-output"],
        cwd=proj.root,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # blocks until the line is streamed
        assert first.strip() == "[talk] hello from talk"
        assert proc.poll() is None  # the stage is still waiting for `go`
        proj.write("go", "")
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 0
        assert "[talk] from a subprocess" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _big_project(tmp_path: pathlib.Path) -> Project:
    proj = make_project(tmp_path / "p")
    run_ok(proj.cli("repro", "--no-commit"))
    return proj


def _pivot(proj: Project, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIVOT_PROGRESS_INTERVAL": "0"}
    return subprocess.run(
        [*pivot_argv(), *args], cwd=proj.root, capture_output=True, text=True, env=env, timeout=120
    )


def test_commit_prints_progress_lines_off_a_terminal(tmp_path: pathlib.Path) -> None:
    proj = _big_project(tmp_path)
    proc = _pivot(proj, "commit")
    assert proc.returncode == 0, proc.stderr
    assert "Committing: " in proc.stderr  # a plain line: stderr is a pipe here
    assert "\x1b[" not in proc.stderr  # no terminal control sequences
    # with the default interval a quick commit prints no progress at all
    (proj.root / "input.txt").write_text("changed\n")
    run_ok(proj.cli("repro", "--no-commit"))
    quick = subprocess.run(
        [*pivot_argv(), "commit"], cwd=proj.root, capture_output=True, text=True, timeout=120
    )
    assert quick.returncode == 0 and "Committing:" not in quick.stderr


def test_checkout_prints_progress_lines_off_a_terminal(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    run_ok(proj.cli("repro"))
    for rel in ("model.txt", "other.txt"):
        (proj.root / rel).unlink()
    proc = _pivot(proj, "checkout")
    assert proc.returncode == 0, proc.stderr
    assert "Checking out: " in proc.stderr
    assert "restored model.txt" in proc.stderr


def test_status_and_repro_print_hashing_lines_off_a_terminal(tmp_path: pathlib.Path) -> None:
    proj = make_project(tmp_path / "p")
    run_ok(proj.cli("repro"))
    (proj.root / "input.txt").write_text("changed\n")
    proc = _pivot(proj, "status")
    assert proc.returncode == 0, proc.stderr
    assert "Hashing: " in proc.stderr and " read (" in proc.stderr
    assert "\x1b[" not in proc.stderr
    proc = _pivot(proj, "repro")
    assert proc.returncode == 0, proc.stderr
    assert "Hashing: " in proc.stderr
    # with the default interval a quick status prints no progress at all
    quick = subprocess.run(
        [*pivot_argv(), "status"], cwd=proj.root, capture_output=True, text=True, timeout=120
    )
    assert quick.returncode == 0 and "Hashing:" not in quick.stderr


def test_tui_log_writes_every_event_as_jsonl(tmp_path: pathlib.Path) -> None:
    proj = _proj(tmp_path)
    log = tmp_path / "logs" / "events.jsonl"
    result = run_ok(proj.cli("repro", "--display", "plain", "--tui-log", str(log)))
    assert "✓ talk done" in result.stderr  # the console is unchanged
    assert "hello from talk" not in result.output  # output is logged, not shown
    events = jsonl(log.read_text())
    assert events[0] == {"type": "schema_version", "version": 1}
    assert {"type": "stage_output", "stage": "talk", "line": "hello from talk"} in events
    assert events[-1]["type"] == "execution_result" and events[-1]["ran"] == 1
    # recorded in the history like a run without --tui-log (docs/cli.md, "Run history")
    runs = json.loads(run_ok(proj.cli("history", "--json")).output)["runs"]
    assert [(r["command"], r["counts"]["ran"]) for r in runs] == [("repro", 1)]


def test_display_usage_errors(tmp_path: pathlib.Path) -> None:
    proj = _proj(tmp_path)
    result = run_ok(proj.cli("repro", "--display", "tui", "--json"), 2)
    assert "--display tui" in result.output and "--json" in result.output
    result = run_ok(proj.cli("repro", "--display", "fancy"), 2)
    assert "fancy" in result.output
