"""Progress of long commands on stderr: a live line on a terminal, else a plain line now and then.

On a terminal, rich redraws one transient line. Elsewhere (CI logs, `2> file`) redrawing is
impossible and silence looks like a hang, so a plain line is printed at most every
`PIVOT_PROGRESS_INTERVAL` seconds (default 5; the first one only after that long, so quick
commands print nothing). The engine only reports (a `ProgressSink`, a callback); the CLI
draws: `output.CommitProgress` for `commit`, the `checkout` command, `push`/`pull`, and
`hashing` for the hashing that `status` and `repro`/`run` do before deciding what is stale.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

INTERVAL_ENV = "PIVOT_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 5.0
_TICK_S = 0.2


def interval_s() -> float:
    """Seconds between plain progress lines (`PIVOT_PROGRESS_INTERVAL`, default 5)."""
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


class ThrottledLine:
    """Writes a line when at least `interval` seconds passed since the start or the last line."""

    def __init__(self, stream: TextIO | None = None, interval: float | None = None) -> None:
        self._stream = stream
        self.interval = interval_s() if interval is None else interval
        self._last = time.monotonic()
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def update(self, text: str) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval:
                return False
            self._last = now
            self.stream.write(text + "\n")
            self.stream.flush()
            return True


class LiveLine:
    """Shows `text()` while a command works: rich on a terminal, `ThrottledLine` elsewhere.

    `text` is called from a ticker thread (and from `poke`), so it must be cheap and
    thread-safe. `poke()` after a unit of work lets the plain line appear without waiting
    for the next tick.
    """

    def __init__(self, text: Callable[[], str], stream: TextIO | None = None) -> None:
        self._text = text
        out = stream if stream is not None else sys.stderr
        self._live: Any = None
        self._plain: ThrottledLine | None = None
        if out.isatty():
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._live = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(file=out),
                transient=True,
            )
            self._task = self._live.add_task(text(), total=None)
            self._live.start()
        else:
            self._plain = ThrottledLine(out)
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="pivot-progress", daemon=True)
        self._ticker.start()

    def poke(self) -> None:
        if self._plain is not None:
            self._plain.update(self._text())
        else:
            self._live.update(self._task, description=self._text())

    def _tick(self) -> None:
        while not self._stop.wait(_TICK_S):
            self.poke()

    def close(self) -> None:
        self._stop.set()
        self._ticker.join()
        if self._live is not None:
            self._live.stop()


@contextmanager
def hashing(enabled: bool = True, stream: TextIO | None = None) -> Iterator[None]:
    """Plain "Hashing: ..." lines while the block hashes files, off a terminal only (a terminal
    shows the command's own output). Like the others: none before `interval_s()`, and one
    more at the end if the block hashed at all and a line is due, so the last count is shown."""
    out = stream if stream is not None else sys.stderr
    if not enabled or out.isatty():
        yield
        return
    from pivot.storage.cache import hash_progress

    start = hash_progress()

    def text() -> str | None:
        checked, read, nbytes = (a - b for a, b in zip(hash_progress(), start, strict=True))
        if not checked:
            return None
        files = "file" if checked == 1 else "files"
        return f"Hashing: {checked:,} {files} checked, {read:,} read ({nbytes / 2**20:,.1f} MiB)"

    line = ThrottledLine(out)
    stop = threading.Event()
    shown: list[str] = []  # the last line written: a count that did not move is not repeated

    def show() -> None:
        t = text()
        if t is not None and t not in shown[-1:] and line.update(t):
            shown[:] = [t]

    def tick() -> None:
        while not stop.wait(_TICK_S):
            show()

    ticker = threading.Thread(target=tick, name="pivot-hash-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        show()
