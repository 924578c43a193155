"""`--display tui`: the Textual app driven by a real run (Textual's pilot), and once for real in
a terminal under tmux."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "cli"))
from _pivot_helpers import Project, make_project, pivot_argv

pytest.importorskip("textual")  # the `tui` extra; part of `dev`, so it runs in `make test`

# `first` prints and then waits for a file `go`, so the test can see it running; `second`
# depends on it and prints one line.
PIPELINE = """
import os
import time
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def first(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("first.txt", loaders.Text())]:
    print("first says hello", flush=True)
    deadline = time.monotonic() + 60
    while os.path.exists("WAIT") and not os.path.exists("go") and time.monotonic() < deadline:
        time.sleep(0.05)
    print("first is done", flush=True)
    return src.upper()


def second(
    text: Annotated[str, outputs.Dep("first.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("second.txt", loaders.Text())]:
    print("second line", flush=True)
    return text + "!"


pipeline = Pipeline("tui")
pipeline.register(first)
pipeline.register(second)
"""

TIMEOUT_S = 60.0


@pytest.fixture
def proj(tmp_path: pathlib.Path) -> Project:
    return make_project(tmp_path / "p", textwrap.dedent(PIPELINE))


def test_pilot_stages_states_and_selected_log(proj: Project) -> None:
    from textual.widgets import DataTable, Log

    from pivot.engine import runner
    from pivot.engine.context import load_context
    from pivot.tui.app import PivotApp

    proj.write("WAIT", "")
    runner.start_worker_server()  # as the CLI does: the app replaces sys.stderr
    ctx = load_context(proj.root)
    order = ctx.graph.order(None)

    def work(app: PivotApp) -> None:
        app.sink.run_started(1, "test", order)
        summary = runner.run(ctx, order, runner.RunOptions(stream_output=True), [app.sink])
        app.sink.run_finished(1, summary)

    async def until(pilot: object, cond: object, what: str) -> None:
        app = pilot.app  # type: ignore[attr-defined]
        deadline = time.monotonic() + TIMEOUT_S
        while not cond():  # type: ignore[operator]
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {app.rows}"
            await pilot.pause(0.05)  # type: ignore[attr-defined]

    async def scenario() -> None:
        app = PivotApp(work)
        async with app.run_test(size=(120, 30)) as pilot:
            table = app.query_one("#stages", DataTable)
            log = app.query_one("#log", Log)
            # both stages listed at once; first running and streaming, second still pending
            await until(pilot, lambda: app.rows.get("first", None) is not None, "rows")
            assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == [
                "first",
                "second",
            ]
            await until(pilot, lambda: "first says hello" in log.lines, "first's output")
            assert app.rows["first"].state == "running"
            assert app.rows["second"].state == "pending"
            proj.write("go", "")
            await until(pilot, lambda: app.summary is not None, "the end of the run")
            assert app.rows["first"].state == "ran"
            assert app.rows["first"].reason == "No previous run"
            assert app.rows["first"].duration.endswith("s")
            assert table.get_row("second")[1] == "ran"
            assert app.status.startswith("Summary: 2 ran")
            # the log pane follows the selected stage
            assert list(log.lines) == ["first says hello", "first is done"]
            await pilot.press("down")
            await until(pilot, lambda: app.selected == "second", "selection")
            assert list(log.lines) == ["second line"]
            await pilot.press("up")
            await until(pilot, lambda: "first is done" in log.lines, "first's log again")
            await pilot.press("q")
        assert app.worker_thread is not None
        app.worker_thread.join(timeout=TIMEOUT_S)

    asyncio.run(scenario())


def _tmux(sock: str, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", sock, *args], capture_output=True, text=True, timeout=30, check=True
    ).stdout


def _in_tmux(sock: str, proj: Project, *args: str) -> None:
    """Start `pivot ARGS` in a detached 120x40 tmux session `t`; it echoes its exit code."""
    cmd = " ".join([*pivot_argv(), *args])
    # COLUMNS/LINES from the calling environment would override the pane's real size.
    env_cmd = (
        f"cd {proj.root} && env -u COLUMNS -u LINES TERM=xterm-256color {cmd};"
        " echo pivot-exit=$?; sleep 30"
    )
    _tmux(sock, "new-session", "-d", "-s", "t", "-x", "120", "-y", "40", env_cmd)


def _screen_until(sock: str, text: str) -> str:
    deadline = time.monotonic() + TIMEOUT_S
    screen = ""
    while text not in screen:
        assert time.monotonic() < deadline, f"no {text!r} on the screen:\n{screen}"
        time.sleep(0.2)
        screen = _tmux(sock, "capture-pane", "-p", "-t", "t")
    return screen


needs_tmux = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux missing (make test installs it)"
)


@needs_tmux
def test_tui_for_real_under_tmux(proj: Project) -> None:
    sock = f"pivot-test-{uuid.uuid4().hex[:8]}"  # a tmux server of our own
    log = proj.root.parent / "events.jsonl"
    _in_tmux(sock, proj, "repro", "--watch", "--display", "tui", "--tui-log", str(log))
    try:
        deadline = time.monotonic() + TIMEOUT_S
        screen = ""
        while "watching for changes" not in screen:
            assert time.monotonic() < deadline, f"TUI did not show the run:\n{screen}"
            time.sleep(0.2)
            screen = _tmux(sock, "capture-pane", "-p", "-t", "t")
        # The "screenshot": printed (pytest -rP / -s shows it) and kept beside the project.
        print("--- tmux capture-pane of `pivot repro --watch --display tui` ---")
        print(screen)
        (proj.root.parent / "tui-screen.txt").write_text(screen)
        rows = [line.split() for line in screen.splitlines()]
        assert ["Stage", "State", "Reason", "Duration"] in rows
        assert any(r[:2] == ["first", "ran"] for r in rows)
        assert any(r[:2] == ["second", "ran"] for r in rows)
        _tmux(sock, "send-keys", "-t", "t", "q")
        while "pivot-exit=" not in screen:
            assert time.monotonic() < deadline, f"pivot did not quit:\n{screen}"
            time.sleep(0.2)
            screen = _tmux(sock, "capture-pane", "-p", "-t", "t")
        assert "pivot-exit=0" in screen
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, timeout=30)
    events = [line for line in log.read_text().splitlines() if line.strip()]
    assert '"type": "stage_output"' in "\n".join(events)
    assert os.path.getsize(log) > 0


@needs_tmux
def test_one_shot_tui_closes_and_prints_the_summary(proj: Project) -> None:
    sock = f"pivot-test-{uuid.uuid4().hex[:8]}"
    _in_tmux(sock, proj, "repro")  # a terminal and textual: the TUI by default
    try:
        screen = _screen_until(sock, "pivot-exit=")
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, timeout=30)
    assert "pivot-exit=0" in screen, screen
    assert "✓ first done" in screen and "Summary: 2 ran" in screen
    assert proj.read("second.txt") == "HELLO\n!"
