"""Run history: one JSON record per `repro`/`run` in `.pivot/state/history/` (docs/formats.md).

`RunRecorder` is a run-event sink: the CLI passes it to the runner next to the console sink and
saves the record when the run returns. Records are written with the durable-write helper; the
newest `RETENTION` are kept. Like everything under `.pivot/state/`, the history is local to the
machine and disposable.
"""

from __future__ import annotations

import datetime
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pivot.exceptions import PivotError

if TYPE_CHECKING:
    from pivot.engine.events import RunSummary, StageResult
    from pivot.project import Project

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
RETENTION = 100  # runs kept; older records are deleted when a new one is written
DIR_NAME = "history"
SUFFIX = ".json"


def history_dir(project: Project) -> Path:
    return project.state_dir / DIR_NAME


def new_id(now: datetime.datetime) -> str:
    """`YYYYMMDD-HHMMSS-mmm-<6 hex>`: sorts by start time; the random part keeps two runs
    started in the same millisecond apart."""
    stamp = now.strftime("%Y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}"
    return f"{stamp}-{secrets.token_hex(3)}"


def _plain_args(params: Mapping[str, Any]) -> dict[str, Any]:
    """The options that were set (non-default), JSON-ready."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or value is False or value == ():
            continue
        if isinstance(value, tuple | list):
            value = [str(v) for v in value]
        elif not isinstance(value, bool | int | float | str):
            value = str(value)
        out[key] = value
    return out


class RunRecorder:
    """A Sink collecting stage results, plus the command that started the run."""

    def __init__(self, command: str, args: Mapping[str, Any]) -> None:
        self.command = command
        self.args = _plain_args(args)
        self.started = datetime.datetime.now(datetime.UTC)
        self.results: list[StageResult] = []

    def stage_start(self, stage: str, index: int, total: int) -> None:
        """Only completed stages are recorded."""

    def stage_complete(self, result: StageResult, index: int, total: int) -> None:
        self.results.append(result)

    def stage_output(self, stage: str, line: str) -> None:
        """Streamed output is not recorded (`pivot show` lists outcomes)."""

    def record(self, summary: RunSummary) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "id": new_id(self.started),
            "command": self.command,
            "args": self.args,
            "started": self.started.isoformat(),
            "duration_ms": round(summary.duration_ms, 3),
            "ok": summary.ok,
            "counts": {
                "ran": summary.ran,
                "skipped": summary.skipped,
                "failed": summary.failed,
                "blocked": summary.blocked,
            },
            "stages": [
                {
                    "stage": r.stage,
                    "status": r.status,
                    "reason": r.reason,
                    "duration_ms": round(r.duration_ms, 3),
                }
                for r in self.results
            ],
        }

    def save(self, project: Project, summary: RunSummary) -> str | None:
        """Write the record and apply the retention; the run's outcome never depends on it
        (a failure is logged). Returns the run id."""
        rec = self.record(summary)
        try:
            write_record(project, rec)
        except (OSError, PivotError) as e:
            logger.warning("could not record the run in %s: %s", history_dir(project), e)
            return None
        return str(rec["id"])


def write_record(project: Project, rec: Mapping[str, Any], retention: int = RETENTION) -> None:
    from pivot.storage.files import write_atomic

    directory = history_dir(project)
    directory.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps(rec, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    write_atomic(directory / f"{rec['id']}{SUFFIX}", data)
    for old in run_ids(project)[retention:]:
        try:
            os.unlink(directory / f"{old}{SUFFIX}")
        except FileNotFoundError:
            pass  # another pivot pruned it first


def run_ids(project: Project) -> list[str]:
    """Recorded run ids, newest first."""
    try:
        names = os.listdir(history_dir(project))
    except FileNotFoundError:
        return []
    ids = [n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX) and not n.startswith(".")]
    return sorted(ids, reverse=True)


def load(project: Project, run_id: str) -> dict[str, Any] | None:
    """One record; None (with a debug note) when unreadable."""
    path = history_dir(project) / f"{run_id}{SUFFIX}"
    try:
        rec = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        logger.debug("%s: unreadable run record: %s", path, e)
        return None
    if not isinstance(rec, dict) or rec.get("schema_version") != SCHEMA_VERSION:
        return None
    return rec


def recent(project: Project, n: int) -> list[dict[str, Any]]:
    """The newest `n` readable records, newest first."""
    out = []
    for run_id in run_ids(project):
        rec = load(project, run_id)
        if rec is not None:
            out.append(rec)
            if len(out) >= n:
                break
    return out


def find(project: Project, ref: str) -> dict[str, Any]:
    """The run named by its id, a unique id prefix, or `last`."""
    ids = run_ids(project)
    if ref == "last":
        matches = ids[:1]
    else:
        matches = [i for i in ids if i == ref] or [i for i in ids if i.startswith(ref)]
    if not matches:
        raise PivotError(f"no run '{ref}' in {history_dir(project)} (see 'pivot history')")
    if len(matches) > 1:
        raise PivotError(f"run '{ref}' is ambiguous: {', '.join(matches[:5])}")
    rec = load(project, matches[0])
    if rec is None:
        raise PivotError(f"{history_dir(project)}/{matches[0]}{SUFFIX}: unreadable run record")
    return rec
