"""A real `pivot repro --watch --json` subprocess whose JSONL events a test can wait for."""

from __future__ import annotations

import json
import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from _pivot_helpers import pivot_argv

Event = dict[str, Any]
TIMEOUT_S = 60.0  # generous: the machine is shared; a hang fails instead of blocking the suite

# A shell starts a background job with SIGINT ignored (no job control: CI runs the suite so),
# and the ignore is inherited through exec; Python then installs no KeyboardInterrupt handler.
# pivot is run as from a terminal, where Ctrl-C reaches it: SIGINT back to default, then exec.
_DEFAULT_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]


HELPERS = """
def decorate(text):
    return text.upper()
"""

# `shout` uses a helper from a sibling module; `count` depends on shout's output. Every stage
# appends its name to runs.log, a file that is neither a dep nor an output.
PIPELINE = """
import os
import time
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams

from helpers import decorate


class CountParams(StageParams):
    times: int = 1


def _mark(name):
    with open("runs.log", "a") as f:
        f.write(name + "\\n")


def shout(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("shout.txt", loaders.Text())]:
    _mark("shout")
    if os.path.exists("BLOCK"):
        open("started", "w").close()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not os.path.exists("go"):
            time.sleep(0.05)
    return decorate(src)


def count(
    params: CountParams,
    text: Annotated[str, outputs.Dep("shout.txt", loaders.Text())],
) -> Annotated[str, outputs.Out("count.txt", loaders.Text())]:
    _mark("count")
    return str(len(text) * params.times)


pipeline = Pipeline("watched")
pipeline.register(shout)
pipeline.register(count)
"""


class WatchProc:
    def __init__(self, root: pathlib.Path, *args: str) -> None:
        self.root = root
        self.err_path = root.parent / "watch.stderr"
        self._err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            [
                *_DEFAULT_SIGINT,
                *pivot_argv(),
                "repro",
                "--watch",
                "--json",
                "--debounce",
                "100",
                *args,
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.events: queue.Queue[Event] = queue.Queue()
        self.seen: list[Event] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.events.put(json.loads(line))

    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.err_path.read_text()

    def wait_for(self, pred: Callable[[Event], bool], what: str) -> Event:
        """The next event matching `pred` (events before it are kept in `seen`)."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}\nstderr:\n{self.stderr()}")
            try:
                e = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"pivot exited ({self.proc.returncode}) before {what}\n{self.stderr()}"
                    ) from None
                continue
            self.seen.append(e)
            if pred(e):
                return e

    def next_run(self) -> list[Event]:
        """Events of the next complete run, from its run_start to its execution_result."""
        start = self.wait_for(lambda e: e["type"] == "run_start", "a run to start")
        n = len(self.seen)
        self.wait_for(lambda e: e["type"] == "execution_result", "the run to finish")
        return [start, *self.seen[n:]]

    def quiet_for(self, seconds: float) -> list[Event]:
        """Events that arrive within `seconds` (used to check that nothing more runs)."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.events.get(timeout=left))
            except queue.Empty:
                break
        return got

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=TIMEOUT_S)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


def ran(events: list[Event]) -> set[str]:
    return {e["stage"] for e in events if e["type"] == "stage_complete" and e["status"] == "ran"}


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc: no psutil)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for p in pids:
        try:
            state = pathlib.Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(p)
    return out
