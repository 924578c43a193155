"""A Textual app for `pivot repro --display tui`: stages with state, reason and duration, and
the live output of the selected stage.

The engine (one run, or the watch loop) runs on a thread of its own, started when the app
mounts; its events reach the app through `TuiSink`, which posts each one as a message to the
app (thread-safe and non-blocking: the engine never waits for the screen, nor hangs on an app
that has already exited). Quitting calls `on_quit` (cancel the run / stop the loop) first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Log, Static

from pivot.cli.output import format_seconds

if TYPE_CHECKING:
    from pivot.engine.events import RunSummary, StageResult

_MAX_LOG_LINES = 10_000  # per stage, kept in memory for when the stage is selected


@dataclass
class StageRow:
    state: str = "pending"
    reason: str = ""
    duration: str = ""


class EngineCall(Message):
    """Run `fn(*args)` on the app's thread, in the order the engine posted it."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        super().__init__()
        self.fn = fn
        self.args = args


class TuiSink:
    """The engine-side half: a sink / watch-loop observer that forwards to the app thread."""

    def __init__(self, app: PivotApp) -> None:
        self.app = app

    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        self.app.post_message(EngineCall(fn, args))  # False once the app has exited: fine

    def stage_start(self, stage: str, index: int, total: int) -> None:
        self._post(self.app.stage_started, stage)

    def stage_output(self, stage: str, line: str) -> None:
        self._post(self.app.stage_line, stage, line)

    def stage_complete(self, result: StageResult, index: int, total: int) -> None:
        self._post(self.app.stage_completed, result)

    def run_started(self, run_id: int, trigger: str, stages: list[str]) -> None:
        self._post(self.app.begin_run, run_id, trigger, stages)

    def run_finished(self, run_id: int, summary: RunSummary) -> None:
        self._post(self.app.end_run, summary)

    def pipeline_error(self, message: str, kept_last_good: bool) -> None:
        keep = "keeping the last good pipeline" if kept_last_good else "waiting for a fix"
        self._post(self.app.set_status, f"pipeline error: {message} ({keep})")

    def watching(self) -> None:
        self._post(self.app.note_watching)


class PivotApp(App[None]):
    """The stage table on top, the selected stage's output below, a status line."""

    CSS = """
    #stages { height: 1fr; }
    #log { height: 1fr; border-top: solid $accent; }
    #status { height: 1; padding: 0 1; background: $boost; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_pivot", "Quit"),
        Binding("ctrl+c", "quit_pivot", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        work: Callable[[PivotApp], None] | None = None,
        *,
        on_quit: Callable[[], None] | None = None,
        title: str = "pivot",
    ) -> None:
        super().__init__()
        self.work = work
        self.on_quit = on_quit
        self.title = title
        self.sink = TuiSink(self)
        self.worker_thread: threading.Thread | None = None
        self.rows: dict[str, StageRow] = {}
        self.logs: dict[str, list[str]] = {}
        self.selected: str | None = None
        self.status = ""
        self.summary: RunSummary | None = None
        self._summary_text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="stages", cursor_type="row", zebra_stripes=True)
        yield Log(id="log", max_lines=_MAX_LOG_LINES)
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#stages", DataTable)
        table.add_column("Stage", key="stage")
        table.add_column("State", key="state", width=9)
        table.add_column("Reason", key="reason")
        table.add_column("Duration", key="duration", width=9)
        table.focus()
        if self.work is not None:
            work = self.work
            self.worker_thread = threading.Thread(
                target=work, args=(self,), name="pivot-tui-engine", daemon=True
            )
            self.worker_thread.start()

    # --- state changes (the app's thread) ---------------------------------------------------
    def _ensure_row(self, stage: str) -> StageRow:
        row = self.rows.get(stage)
        if row is None:
            row = self.rows[stage] = StageRow()
            self.query_one("#stages", DataTable).add_row(
                stage, row.state, row.reason, row.duration, key=stage
            )
            if self.selected is None:
                self.selected = stage
        return row

    def _show(self, stage: str) -> None:
        row = self.rows[stage]
        table = self.query_one("#stages", DataTable)
        table.update_cell(stage, "state", row.state)
        table.update_cell(stage, "reason", row.reason, update_width=True)
        table.update_cell(stage, "duration", row.duration)

    def begin_run(self, run_id: int, trigger: str, stages: list[str]) -> None:
        table = self.query_one("#stages", DataTable)
        for gone in [s for s in self.rows if s not in stages]:
            del self.rows[gone]
            self.logs.pop(gone, None)
            table.remove_row(gone)
            if self.selected == gone:
                self.selected = None
        for stage in stages:
            row = self._ensure_row(stage)
            row.state, row.reason, row.duration = "pending", "", ""
            self._show(stage)
        self.set_status(f"run {run_id} ({trigger}): running")

    def stage_started(self, stage: str) -> None:
        row = self._ensure_row(stage)
        row.state = "running"
        self._show(stage)
        self.logs[stage] = []
        if self.selected == stage:
            self.query_one("#log", Log).clear()

    def stage_line(self, stage: str, line: str) -> None:
        lines = self.logs.setdefault(stage, [])
        lines.append(line)
        if len(lines) > _MAX_LOG_LINES:
            del lines[: len(lines) - _MAX_LOG_LINES]
        if self.selected == stage:
            self.query_one("#log", Log).write_line(line)

    def stage_completed(self, result: StageResult) -> None:
        row = self._ensure_row(result.stage)
        row.state = str(result.status)
        row.reason = result.reason
        row.duration = format_seconds(result.duration_ms) if result.status == "ran" else ""
        self._show(result.stage)
        if result.output and not self.logs.get(result.stage):
            # Not streamed (e.g. a traceback added after the stage's own output): keep it.
            for line in result.output.rstrip("\n").splitlines():
                self.stage_line(result.stage, line)

    def end_run(self, summary: RunSummary) -> None:
        self.summary = summary
        self._summary_text = (
            f"{summary.ran} ran, {summary.skipped} cached, {summary.blocked} blocked, "
            f"{summary.failed} failed [{format_seconds(summary.duration_ms)}]"
        )
        self.set_status(f"Summary: {self._summary_text}")

    def note_watching(self) -> None:
        done = f"Summary: {self._summary_text} — " if self._summary_text else ""
        self.set_status(f"{done}watching for changes (q to quit)")

    def set_status(self, text: str) -> None:
        self.status = text
        self.query_one("#status", Static).update(text)

    def post_finished(self, summary: RunSummary | None, exit_after: bool = False) -> None:
        """Called from the engine thread when the work is over."""
        if exit_after:
            self.post_message(EngineCall(self.exit, ()))

    def on_engine_call(self, message: EngineCall) -> None:
        message.fn(*message.args)

    # --- user ----------------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        stage = event.row_key.value
        if stage is None:
            return
        self.selected = stage
        log = self.query_one("#log", Log)
        log.clear()
        lines = self.logs.get(stage, [])
        if lines:
            log.write_lines(lines)

    def action_quit_pivot(self) -> None:
        if self.on_quit is not None:
            self.on_quit()
        self.exit()
