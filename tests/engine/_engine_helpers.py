"""Engine test helpers (imported as `_engine_helpers`: tests/engine is on sys.path under pytest)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pivot.engine import events, plan, runner
from pivot.engine.context import Context, load_context
from pivot.types import LockData

HEADER = """\
import pathlib
import time
from typing import Annotated, TypedDict

from pivot import loaders, outputs
from pivot.pipeline import Pipeline
from pivot.stage_def import StageParams


def _mark(name):
    d = pathlib.Path("marks")
    d.mkdir(exist_ok=True)
    with open(d / name, "a") as f:
        f.write("x\\n")

"""


class Proj:
    """A project on disk plus shortcuts to the engine API."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            path.unlink()  # may be a read-only link into the cache
        path.write_text(text, encoding="utf-8")
        return path

    def pipeline(self, body: str) -> None:
        self.write("pipeline.py", HEADER + textwrap.dedent(body).lstrip("\n"))

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def ctx(self, check_missing: bool = True) -> Context:
        return load_context(self.root, check_missing=check_missing)

    def decide(self, targets: Sequence[str] | None = None, **kw: Any) -> dict[str, plan.Decision]:
        ctx = self.ctx()
        return plan.decide(ctx, ctx.graph.order(targets), **kw)

    def reasons(self, **kw: Any) -> dict[str, str]:
        return {n: d.reason for n, d in self.decide(**kw).items()}

    def repro(
        self, targets: Sequence[str] | None = None, **opts: Any
    ) -> tuple[events.RunSummary, events.CollectSink]:
        ctx = self.ctx()
        sink = events.CollectSink()
        summary = runner.run(ctx, ctx.graph.order(targets), runner.RunOptions(**opts), [sink])
        return summary, sink

    def run_exact(self, stages: Sequence[str], **opts: Any) -> events.RunSummary:
        ctx = self.ctx()
        opts.setdefault("keep_going", True)
        return runner.run(ctx, ctx.graph.exact(stages), runner.RunOptions(**opts), [])

    def marks(self, name: str) -> int:
        path = self.root / "marks" / name
        return len(path.read_text().splitlines()) if path.exists() else 0

    def lock(self, stage: str) -> LockData | None:
        from pivot.storage.lock import lock_path, read_lock

        return read_lock(lock_path(self.root / ".pivot" / "stages", stage))

    def objects(self) -> list[Path]:
        files = self.root / ".pivot" / "cache" / "files"
        return [p for p in files.rglob("*") if p.is_file()] if files.exists() else []

    def run_entries(self) -> list[Path]:
        runs = self.root / ".pivot" / "cache" / "runs"
        return [p for p in runs.rglob("*") if p.is_file()] if runs.exists() else []


def statuses(summary: events.RunSummary) -> dict[str, tuple[str, str]]:
    return {n: (r.status, r.reason) for n, r in summary.results.items()}
