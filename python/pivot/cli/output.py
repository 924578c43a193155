"""Everything the CLI displays about engine work: plain console lines on stderr and JSONL on
stdout for runs, a live progress line for `commit`.

`ConsoleSink` and `JsonlSink` implement the engine's `Sink` protocol (`stage_start`,
`stage_complete`, `stage_output`); `begin()` and `finish()` are called by the CLI around
`engine.run`. `CommitProgress` implements `ProgressSink` with `cli/progress.py`.
"""

from __future__ import annotations

import datetime
import json
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from pivot.cli.progress import LiveLine
    from pivot.engine.events import Progress, RunSummary, StageResult

JSONL_SCHEMA_VERSION = 1


def format_seconds(ms: float) -> str:
    """`0.7s`, `12.3s`, `2m05s`."""
    seconds = ms / 1000.0
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def _cached_suffix(reason: str) -> str:
    """`unchanged` → ``; `unchanged (run cache)` → ` (run cache)`; anything else verbatim."""
    if not reason or reason == "unchanged":
        return ""
    if reason.startswith("unchanged (") and reason.endswith(")"):
        return " " + reason[len("unchanged ") :]
    return f" ({reason})"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.rstrip("\n").splitlines())


class ConsoleSink:
    """One line per finished stage on stderr; failures always, the rest unless quiet."""

    def __init__(
        self, stream: TextIO | None = None, *, quiet: bool = False, show_output: bool = False
    ) -> None:
        self._stream = stream
        self.quiet = quiet
        self.show_output = show_output  # `--show-output`: stream stage output as `[stage] line`

    @property
    def stream(self) -> TextIO:
        # Resolved lazily so that CliRunner's swapped stderr is the one written to.
        return self._stream if self._stream is not None else sys.stderr

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def begin(self) -> None:
        """Nothing to announce on the console."""

    def stage_start(self, stage: str, index: int, total: int) -> None:
        """Plain mode prints stages when they finish, so parallel stages do not interleave."""

    def stage_output(self, stage: str, line: str) -> None:
        if self.show_output and not self.quiet:
            self._write(f"[{stage}] {line}")

    def stage_complete(self, result: StageResult, index: int, total: int) -> None:
        status = result.status
        if status == "failed":
            line = f"✗ {result.stage} FAILED"
            if result.reason and not result.output:
                line += f": {result.reason}"
            self._write(line)
            if result.output and result.output.strip():
                self._write(_indent(result.output))
            return
        if self.quiet:
            return
        if status == "ran":
            self._write(f"✓ {result.stage} done {format_seconds(result.duration_ms)}")
        elif status == "skipped":
            self._write(f"○ {result.stage} cached{_cached_suffix(result.reason)}")
        elif status == "blocked":
            why = result.reason
            if why.startswith("blocked "):
                why = why[len("blocked ") :]  # "blocked by train" -> "(by train)"
            suffix = f" ({why})" if why else ""
            self._write(f"⊘ {result.stage} blocked{suffix}")
        else:
            self._write(f"? {result.stage} {status} {result.reason}".rstrip())

    def finish(self, summary: RunSummary) -> None:
        if self.quiet:
            return
        self._write(
            f"Summary: {summary.ran} ran, {summary.skipped} cached, {summary.blocked} blocked, "
            f"{summary.failed} failed [{format_seconds(summary.duration_ms)}]"
        )


class JsonlSink:
    """The `--json` event stream (docs/cli.md, "--json events"), one object per line on stdout.

    Blocked stages never start: they get no `stage_start`, and their `stage_complete` has
    status `blocked` with the engine's reason (e.g. `blocked by train`); `execution_result`
    counts them in `blocked`, apart from `failed`, as the console summary does.
    """

    def __init__(self, stream: TextIO | None = None, *, show_output: bool = False) -> None:
        self._stream = stream
        self.show_output = show_output  # emit `stage_output` events (`--json --show-output`)
        self._ran = 0
        self._skipped = 0
        self._failed = 0
        self._blocked = 0

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def emit(self, event: dict[str, Any]) -> None:
        self.stream.write(json.dumps(event) + "\n")
        self.stream.flush()

    def begin(self) -> None:
        self.emit({"type": "schema_version", "version": JSONL_SCHEMA_VERSION})

    def stage_start(self, stage: str, index: int, total: int) -> None:
        self.emit({"type": "stage_start", "stage": stage, "index": index, "total": total})

    def stage_output(self, stage: str, line: str) -> None:
        if self.show_output:
            self.emit({"type": "stage_output", "stage": stage, "line": line})

    def stage_complete(self, result: StageResult, index: int, total: int) -> None:
        status = result.status
        reason = result.reason
        if status == "ran":
            self._ran += 1
        elif status == "skipped":
            self._skipped += 1
        elif status == "blocked":
            self._blocked += 1
        else:
            self._failed += 1
        self.emit(
            {
                "type": "stage_complete",
                "stage": result.stage,
                "status": status,
                "reason": reason,
                "duration_ms": round(float(result.duration_ms), 3),
                "index": index,
                "total": total,
            }
        )

    def finish(self, summary: RunSummary | None, duration_ms: float | None = None) -> None:
        if summary is not None:
            ran, skipped = summary.ran, summary.skipped
            failed, blocked = summary.failed, summary.blocked
            total_ms = summary.duration_ms if duration_ms is None else duration_ms
        else:
            ran, skipped, failed = self._ran, self._skipped, self._failed
            blocked = self._blocked
            total_ms = duration_ms or 0.0
        self.emit(
            {
                "type": "execution_result",
                "ran": ran,
                "skipped": skipped,
                "failed": failed,
                "blocked": blocked,
                "total_duration_ms": round(float(total_ms), 3),
                "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
            }
        )


def human_bytes(n: float) -> str:
    """`512 B`, `1.5 KB`, `3.2 GB` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class CommitProgress:
    """`pivot commit` progress on stderr: stages, files, bytes (`cli/progress.py`: a transient
    live line on a terminal, a plain line every few seconds elsewhere).

    A `ProgressSink` and a context manager: the line is shown while the block runs and erased
    (or simply stops) after it.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._latest: Progress | None = None
        self._line: LiveLine | None = None

    def __enter__(self) -> CommitProgress:
        from pivot.cli.progress import LiveLine

        self._line = LiveLine(self._text, self._stream)
        return self

    def _text(self) -> str:
        # Read from the line's ticker thread too: one attribute read, no lock needed.
        latest = self._latest
        return "Committing" if latest is None else self.describe(latest)

    def progress(self, progress: Progress) -> None:
        self._latest = progress
        if self._line is not None:
            self._line.poke()

    @staticmethod
    def describe(progress: Progress) -> str:
        return (
            f"Committing: {progress.stages}/{progress.total} stage(s), "
            f"{progress.files} file(s), {human_bytes(progress.bytes)} inserted"
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._line is not None:
            self._line.close()
            self._line = None
