"""`repro`'s live options: `--watch`, `--debounce`, `--serve`, `--display tui|plain`, `--tui-log`.

This module wires front-ends (console, JSONL, TUI, socket server, event-log file) to the
engine: a one-shot run with the TUI, or the watch loop (`pivot.engine.watch`) with any of them.
"""

from __future__ import annotations

import pathlib
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

if TYPE_CHECKING:
    from pivot.cli.output import ConsoleSink, JsonlSink
    from pivot.engine.context import Context
    from pivot.engine.events import RunSummary, StageResult
    from pivot.engine.runner import RunOptions

F = TypeVar("F", bound=Callable[..., Any])

DISPLAYS = ("tui", "plain")


def live_options(func: F) -> F:
    """The live-loop options of `repro` (docs/cli.md): watch options, then display options."""
    return watch_options(display_options(func))


def watch_options(func: F) -> F:
    """`--watch`, `--debounce`, `--serve` (repro only)."""
    options = [
        click.option(
            "--watch",
            is_flag=True,
            help="Run, then re-run what each change to data, params or code makes stale.",
        ),
        click.option(
            "--debounce",
            type=click.IntRange(min=0),
            default=None,
            metavar="MS",
            help="With --watch: wait for MS milliseconds of quiet before re-running (300).",
        ),
        click.option(
            "--serve",
            is_flag=True,
            help="With --watch: accept JSON-RPC on .pivot/tmp/serve.sock (docs/serve.md).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def display_options(func: F) -> F:
    """`--display`, `--tui-log` (repro and run)."""
    options = [
        click.option(
            "--display",
            type=click.Choice(DISPLAYS),
            default=None,
            help="tui: a live table of stages (needs the 'tui' extra); plain: lines on stderr. "
            "Default: tui on a terminal when textual is installed.",
        ),
        click.option(
            "--tui-log",
            type=click.Path(dir_okay=False, path_type=pathlib.Path),
            default=None,
            metavar="PATH",
            help="Also write every run event (stage output included) to PATH as JSONL.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


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
    dry_run: bool,
) -> None:
    if serve and not watch:
        raise click.UsageError("--serve requires --watch")
    if debounce is not None and not watch:
        raise click.UsageError("--debounce requires --watch")
    if watch and dry_run:
        raise click.UsageError("--watch cannot be combined with --dry-run or --explain")
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
class ConsoleObserver:
    """The console sink plus the loop's own lines (pipeline errors, "watching")."""

    def __init__(self, sink: ConsoleSink, *, watch: bool) -> None:
        self.sink = sink
        self.watch = watch

    def _say(self, line: str) -> None:
        if not self.sink.quiet:
            self.sink._write(line)

    def stage_start(self, stage: str, index: int, total: int) -> None:
        self.sink.stage_start(stage, index, total)

    def stage_output(self, stage: str, line: str) -> None:
        self.sink.stage_output(stage, line)

    def stage_complete(self, result: StageResult, index: int, total: int) -> None:
        self.sink.stage_complete(result, index, total)

    def run_started(self, run_id: int, trigger: str, stages: list[str]) -> None:
        if trigger != "initial":
            self._say(f"--- run {run_id} ({trigger})")

    def run_finished(self, run_id: int, summary: RunSummary) -> None:
        self.sink.finish(summary)

    def pipeline_error(self, message: str, kept_last_good: bool) -> None:
        # An error, so shown even with -q.
        self.sink._write(_pipeline_error_line(message, kept_last_good))

    def watching(self) -> None:
        self._say("Watching for changes (Ctrl-C to stop)")


def _pipeline_error_line(message: str, kept_last_good: bool) -> str:
    keep = "keeping the last good pipeline" if kept_last_good else "waiting for a fix"
    return f"pipeline error: {message} ({keep})"


class JsonlObserver:
    """`--json` / `--tui-log` in the watch loop: one schema line, then events of every run."""

    def __init__(self, sink: JsonlSink, *, errors_to_stderr: bool = False) -> None:
        self.sink = sink
        self.errors_to_stderr = errors_to_stderr  # the main `--json` stream: say it on stderr too

    def stage_start(self, stage: str, index: int, total: int) -> None:
        self.sink.stage_start(stage, index, total)

    def stage_output(self, stage: str, line: str) -> None:
        self.sink.stage_output(stage, line)

    def stage_complete(self, result: StageResult, index: int, total: int) -> None:
        self.sink.stage_complete(result, index, total)

    def run_started(self, run_id: int, trigger: str, stages: list[str]) -> None:
        self.sink.emit(
            {"type": "run_start", "run_id": run_id, "trigger": trigger, "stages": stages}
        )

    def run_finished(self, run_id: int, summary: RunSummary) -> None:
        self.sink.finish(summary)

    def pipeline_error(self, message: str, kept_last_good: bool) -> None:
        if self.errors_to_stderr:
            click.echo(_pipeline_error_line(message, kept_last_good), err=True)
        self.sink.emit(
            {"type": "pipeline_error", "message": message, "kept_last_good": kept_last_good}
        )


def _open_log(path: pathlib.Path) -> TextIO:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8")
    except OSError as e:
        raise click.BadParameter(
            f"cannot write {path}: {e.strerror or e}", param_hint="--tui-log"
        ) from None


# --- one-shot run with the TUI or an event log ------------------------------------------------
def run_once(
    click_ctx: click.Context,
    ctx: Context,
    order: list[str],
    opts: RunOptions,
    *,
    display: str,
    as_json: bool,
    show_output: bool,
    tui_log: pathlib.Path | None,
) -> None:
    """`repro` without --watch, with the TUI and/or --tui-log; exit 1 on failure, 130 if quit."""
    from pivot.cli import output
    from pivot.cli._run_common import global_flag
    from pivot.engine import runner

    quiet = global_flag(click_ctx, "quiet")
    log = _open_log(tui_log) if tui_log is not None else None
    observers: list[Any] = []
    try:
        if log is not None:
            log_sink = output.JsonlSink(log, show_output=True)
            log_sink.begin()
            observers.append(JsonlObserver(log_sink))
        opts.stream_output = True
        if display != "tui":
            main: Any
            if as_json:
                main = output.JsonlSink(show_output=show_output)
            else:
                main = output.ConsoleSink(quiet=quiet, show_output=show_output)
            main.begin()
            summary = runner.run(ctx, order, opts, [main, *observers])
            main.finish(summary)
            for o in observers:
                o.run_finished(0, summary)
            if not summary.ok:
                click_ctx.exit(1)
            return

        from pivot.tui.app import PivotApp

        cancel = threading.Event()
        box: dict[str, Any] = {}

        def work(app: PivotApp) -> None:
            sinks = [app.sink, *observers]
            for o in sinks:
                o.run_started(1, "repro", order)
            try:
                summary = runner.run(ctx, order, opts, sinks, cancel=cancel)
            except BaseException as e:
                box["error"] = e
                app.post_finished(None)
                return
            box["summary"] = summary
            for o in sinks:
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
    click_ctx: click.Context,
    *,
    cwd: pathlib.Path,
    cache_dir: pathlib.Path | None,
    targets: list[str],
    opts: RunOptions,
    debounce: int | None,
    serve: bool,
    display: str,
    as_json: bool,
    show_output: bool,
    tui_log: pathlib.Path | None,
) -> None:
    """`repro --watch`: runs until Ctrl-C (exit 130) or, in the TUI, until quit (exit 0)."""
    from pivot.cli import output
    from pivot.cli._run_common import global_flag
    from pivot.engine import watch as engine_watch

    quiet = global_flag(click_ctx, "quiet")
    opts.stream_output = True
    settings = engine_watch.WatchSettings(
        cwd=cwd,
        cache_dir=cache_dir,
        targets=targets,
        opts=opts,
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
    server = None
    if serve:
        from pivot.cli._serve import Server, socket_path
        from pivot.project import Project

        project = Project.load(loop.root, cache_dir)
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
