"""The live options of `repro`/`run`: `--display tui|plain`, `--tui-log`, and repro's
`--watch`, `--debounce`, `--serve` (declared with the other run options by
`_run_common.run_options`).

This module wires front-ends (console, JSONL, TUI, socket server, event-log file) to the
engine: a one-shot run with the TUI, or the watch loop (`pivot.engine.watch`) with any of them.
Every run, of the loop too, is recorded in the history (`pivot history`).
"""

from __future__ import annotations

import dataclasses
import pathlib
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

import click

from pivot.cli import _common

if TYPE_CHECKING:
    from pivot.cli._run_common import RunArgs
    from pivot.cli.output import ConsoleSink, JsonlSink
    from pivot.engine.context import Context
    from pivot.engine.events import RunSummary, StageResult
    from pivot.results.history import RunRecorder


def textual_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("textual") is not None


def check_usage(
    *,
    watch: bool,
    debounce: int | None,
    serve: bool,
    display: str | None,
    as_json: bool,
) -> None:
    """Usage errors of the live options (repro's own: `--watch` with `--dry-run`)."""
    if serve and not watch:
        raise click.UsageError("--serve requires --watch")
    if debounce is not None and not watch:
        raise click.UsageError("--debounce requires --watch")
    if display == "tui":
        if as_json:
            raise click.UsageError("--display tui cannot be combined with --json (both use stdout)")
        if not textual_available():
            raise click.UsageError(
                "--display tui needs textual: pip install 'pivot[tui]' (or use --display plain)"
            )


def resolve_display(display: str | None, as_json: bool, quiet: bool) -> str:
    """tui when asked, or by default on a terminal with textual installed; else plain."""
    if display is not None:
        return display
    if as_json or quiet or not sys.stdout.isatty() or not sys.stdin.isatty():
        return "plain"
    return "tui" if textual_available() else "plain"


# --- observers for the watch loop -----------------------------------------------------------
class _SinkObserver:
    """A run sink (console or JSONL) as a watch-loop observer: stage events and each run's
    summary go to the sink as in a one-shot run."""

    sink: ConsoleSink | JsonlSink

    def stage_start(self, stage: str, index: int, total: int) -> None:
        self.sink.stage_start(stage, index, total)

    def stage_output(self, stage: str, line: str) -> None:
        self.sink.stage_output(stage, line)

    def stage_complete(self, result: StageResult, index: int, total: int) -> None:
        self.sink.stage_complete(result, index, total)

    def run_finished(self, run_id: int, summary: RunSummary) -> None:
        self.sink.finish(summary)


class ConsoleObserver(_SinkObserver):
    """The console sink plus the loop's own lines (pipeline errors, "watching")."""

    sink: ConsoleSink

    def __init__(self, sink: ConsoleSink, *, watch: bool) -> None:
        self.sink = sink
        self.watch = watch

    def _say(self, line: str) -> None:
        if not self.sink.quiet:
            self.sink._write(line)

    def run_started(self, run_id: int, trigger: str, stages: list[str]) -> None:
        if trigger != "initial":
            self._say(f"--- run {run_id} ({trigger})")

    def pipeline_error(self, message: str, kept_last_good: bool) -> None:
        # An error, so shown even with -q.
        self.sink._write(_pipeline_error_line(message, kept_last_good))

    def watching(self) -> None:
        self._say("Watching for changes (Ctrl-C to stop)")


def _pipeline_error_line(message: str, kept_last_good: bool) -> str:
    keep = "keeping the last good pipeline" if kept_last_good else "waiting for a fix"
    return f"pipeline error: {message} ({keep})"


class JsonlObserver(_SinkObserver):
    """`--json` / `--tui-log` in the watch loop: one schema line, then events of every run."""

    sink: JsonlSink

    def __init__(self, sink: JsonlSink, *, errors_to_stderr: bool = False) -> None:
        self.sink = sink
        self.errors_to_stderr = errors_to_stderr  # the main `--json` stream: say it on stderr too

    def run_started(self, run_id: int, trigger: str, stages: list[str]) -> None:
        self.sink.emit(
            {"type": "run_start", "run_id": run_id, "trigger": trigger, "stages": stages}
        )

    def pipeline_error(self, message: str, kept_last_good: bool) -> None:
        if self.errors_to_stderr:
            click.echo(_pipeline_error_line(message, kept_last_good), err=True)
        self.sink.emit(
            {"type": "pipeline_error", "message": message, "kept_last_good": kept_last_good}
        )


class HistoryObserver:
    """Records every run of the watch loop (initial, on change, requested over `--serve`) in
    the history, as a one-shot `repro` records its run; the trigger is kept with the args."""

    def __init__(
        self, command: str, params: Mapping[str, Any], context: Callable[[], Context | None]
    ) -> None:
        self.command = command
        self.params = dict(params)
        self.context = context  # the loop's current pipeline (the one the run used)
        self.recorder: RunRecorder | None = None

    def run_started(self, run_id: int, trigger: str, stages: list[str]) -> None:
        from pivot.results.history import RunRecorder

        self.recorder = RunRecorder(self.command, {**self.params, "trigger": trigger})

    def stage_start(self, stage: str, index: int, total: int) -> None:
        """Only completed stages are recorded."""

    def stage_complete(self, result: StageResult, index: int, total: int) -> None:
        if self.recorder is not None:
            self.recorder.stage_complete(result, index, total)

    def run_finished(self, run_id: int, summary: RunSummary) -> None:
        ctx = self.context()
        if self.recorder is not None and ctx is not None:
            self.recorder.save(ctx.project, summary)
        self.recorder = None


def _open_log(path: pathlib.Path) -> TextIO:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")
    except OSError as e:
        raise click.BadParameter(
            f"cannot write {path}: {e.strerror or e}", param_hint="--tui-log"
        ) from None


# --- one-shot run with the TUI or an event log ------------------------------------------------
def run_once(click_ctx: click.Context, ctx: Context, order: list[str], run_args: RunArgs) -> None:
    """`repro`/`run` without --watch, with the TUI and/or --tui-log; exit 1 on failure, 130 if
    quit."""
    from pivot.cli import output
    from pivot.engine import runner
    from pivot.results.history import RunRecorder

    quiet = _common.quiet(click_ctx)
    display, as_json, show_output = run_args.display, run_args.as_json, run_args.show_output
    tui_log = run_args.tui_log
    opts = dataclasses.replace(run_args.options, stream_output=True)
    log = _open_log(tui_log) if tui_log is not None else None
    recorder = RunRecorder(click_ctx.info_name or "run", click_ctx.params)  # `pivot history`
    observers: list[Any] = [recorder]
    try:
        if log is not None:
            log_sink = output.JsonlSink(log, show_output=True)
            log_sink.begin()
            observers.append(JsonlObserver(log_sink))
        if display != "tui":
            main: Any
            if as_json:
                main = output.JsonlSink(show_output=show_output)
            else:
                main = output.ConsoleSink(quiet=quiet, show_output=show_output)
            main.begin()
            summary = runner.run(ctx, order, opts, [main, *observers])
            recorder.save(ctx.project, summary)
            main.finish(summary)
            for o in observers:
                if o is not recorder:
                    o.run_finished(0, summary)
            if not summary.ok:
                click_ctx.exit(1)
            return

        from pivot.tui.app import PivotApp

        cancel = threading.Event()
        box: dict[str, Any] = {}

        def work(app: PivotApp) -> None:
            sinks = [app.sink, *observers]
            shown = [o for o in sinks if o is not recorder]
            for o in shown:
                o.run_started(1, "repro", order)
            try:
                summary = runner.run(ctx, order, opts, sinks, cancel=cancel)
            except BaseException as e:
                box["error"] = e
                app.post_finished(None)
                return
            box["summary"] = summary
            recorder.save(ctx.project, summary)
            for o in shown:
                o.run_finished(1, summary)
            app.post_finished(summary, exit_after=True)

        def quit_early() -> None:
            if "summary" not in box:  # quit while the run was going: cancel it
                box["quit"] = True
                cancel.set()

        runner.start_worker_server()  # before the app replaces sys.stderr
        app = PivotApp(work, on_quit=quit_early, title="pivot repro")
        app.run()
        if app.worker_thread is not None:
            app.worker_thread.join()
        if "error" in box:
            raise box["error"]
        final: RunSummary | None = box.get("summary")
        console = output.ConsoleSink(quiet=quiet)
        if final is not None:
            for result in final.results.values():
                console.stage_complete(result, 0, 0)
            console.finish(final)
        if box.get("quit"):
            click_ctx.exit(130)
        if final is None or not final.ok:
            click_ctx.exit(1)
    finally:
        if log is not None:
            log.close()


# --- the watch loop ---------------------------------------------------------------------------
def watch(
    click_ctx: click.Context, *, cwd: pathlib.Path, targets: list[str], run_args: RunArgs
) -> None:
    """`repro --watch`: runs until Ctrl-C (exit 130) or, in the TUI, until quit (exit 0).
    `targets` are stage names, matrix groups or patterns, expanded on every reload."""
    from pivot.cli import output
    from pivot.engine import watch as engine_watch

    quiet = _common.quiet(click_ctx)
    display, as_json, show_output = run_args.display, run_args.as_json, run_args.show_output
    tui_log, debounce = run_args.tui_log, run_args.debounce_ms
    settings = engine_watch.WatchSettings(
        cwd=cwd,
        cache_dir=run_args.cache_dir,
        all_pipelines=run_args.all_pipelines,
        targets=targets,
        opts=dataclasses.replace(run_args.options, stream_output=True),
        debounce_ms=engine_watch.DEFAULT_DEBOUNCE_MS if debounce is None else debounce,
    )
    observers: list[Any] = []
    log = _open_log(tui_log) if tui_log is not None else None
    if log is not None:
        log_sink = output.JsonlSink(log, show_output=True)
        log_sink.begin()
        observers.append(JsonlObserver(log_sink))
    if display != "tui":
        if as_json:
            sink = output.JsonlSink(show_output=show_output)
            sink.begin()
            observers.insert(0, JsonlObserver(sink, errors_to_stderr=True))
        else:
            observers.insert(
                0,
                ConsoleObserver(
                    output.ConsoleSink(quiet=quiet, show_output=show_output), watch=True
                ),
            )
    loop = engine_watch.WatchLoop(settings, observers)
    # First, so that a run's history record is saved before any display reports the run done
    # (a client that stops the loop on `execution_result` must find the record).
    loop.observers.insert(
        0, HistoryObserver(click_ctx.info_name or "repro", click_ctx.params, lambda: loop.ctx)
    )
    server = None
    if run_args.serve:
        from pivot.cli._serve import Server, socket_path
        from pivot.project import open_project

        project = open_project(loop.root, run_args.cache_dir)
        server = Server(loop, socket_path(project.tmp_dir))
        server.start()
        loop.observers.append(server)
        if not quiet:
            click.echo(f"Serving JSON-RPC on {server.path}", err=True)
    previous = _sigterm_as_interrupt()
    try:
        if display == "tui":
            from pivot.tui.app import PivotApp

            def work(app: PivotApp) -> None:
                loop.observers.insert(0, app.sink)
                loop.run_forever()

            from pivot.engine.runner import start_worker_server

            start_worker_server()  # before the app replaces sys.stderr
            app = PivotApp(work, on_quit=loop.stop, title="pivot repro --watch")
            app.run()
            loop.stop()
            if app.worker_thread is not None:
                app.worker_thread.join(timeout=30)
        else:
            loop.run_forever()
    finally:
        loop.stop()
        if server is not None:
            server.close()
        if log is not None:
            log.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sigterm_as_interrupt() -> Any:
    """SIGTERM ends the watch loop like Ctrl-C (workers killed, socket removed, exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)
