"""What the engine reports: per-stage results, the run summary, progress, and the sink
protocols. The engine never displays anything itself: the CLI's sinks do (`pivot.cli.output`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

Status = Literal["ran", "skipped", "failed", "blocked"]


@dataclass
class StageResult:
    """The outcome of one stage in a run."""

    stage: str
    status: Status
    reason: str  # "unchanged", "unchanged (run cache)", "restored from cache", spec reasons, error
    duration_ms: float = 0.0
    output: str = ""  # captured stdout/stderr of the stage body (shown on failure)


@dataclass
class RunSummary:
    results: dict[str, StageResult] = field(default_factory=dict)  # in completion order
    ran: int = 0
    skipped: int = 0
    failed: int = 0
    blocked: int = 0
    duration_ms: float = 0.0

    def add(self, result: StageResult) -> None:
        self.results[result.stage] = result
        if result.status == "ran":
            self.ran += 1
        elif result.status == "skipped":
            self.skipped += 1
        elif result.status == "failed":
            self.failed += 1
        else:
            self.blocked += 1

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked


class Sink(Protocol):
    """Receives events from the runner, always on the thread that called `runner.run`."""

    def stage_start(self, stage: str, index: int, total: int) -> None: ...

    def stage_complete(self, result: StageResult, index: int, total: int) -> None: ...

    def stage_output(self, stage: str, line: str) -> None:
        """One line of a running stage's stdout/stderr (only when the run streams output)."""
        return None


def emit_output(sinks: Iterable[object], stage: str, line: str) -> None:
    """Call `stage_output` on the sinks that have it (older sinks need not define it)."""
    for s in sinks:
        method = getattr(s, "stage_output", None)
        if method is not None:
            method(stage, line)


class CollectSink:
    """Keeps every event in memory (tests, embedding)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int, int]] = []
        self.results: list[StageResult] = []
        self.output: list[tuple[str, str]] = []  # (stage, line) streamed while stages ran

    def stage_start(self, stage: str, index: int, total: int) -> None:
        self.events.append(("start", stage, index, total))

    def stage_complete(self, result: StageResult, index: int, total: int) -> None:
        self.events.append(("complete", result.stage, index, total))
        self.results.append(result)

    def stage_output(self, stage: str, line: str) -> None:
        self.output.append((stage, line))


@dataclass(frozen=True)
class Progress:
    """How far a long operation (`commit`) has got."""

    stages: int  # stages finished (recorded or failed)
    total: int  # stages to record
    files: int  # files put into the cache so far
    bytes: int  # their bytes


class ProgressSink(Protocol):
    """Receives `Progress` a few times a second, always on the calling (main) thread."""

    def progress(self, progress: Progress) -> None: ...
