"""The scheduler: decide in the main process, run what must run in worker processes, record.

Flow per stage, in the order the caller gives (repro: `graph.order`, run: `graph.exact`):
  1. upstream (earlier in the order and a producer of one of its deps) must have finished OK,
     else the stage is blocked;
  2. a stage the initial plan calls unchanged is skipped at once (no lock, no process);
  3. otherwise take the stage's execution lock (waiting, without blocking the scheduler, if
     another pivot holds it), decide again on the real files, then restore / use the run cache
     / submit to the process pool;
  4. after the worker returns OK, a main-process thread inserts outputs into the cache, writes
     the lock, then the run-cache entry; the execution lock is released after that.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pivot.config import resolve_jobs
from pivot.engine import plan, record
from pivot.engine.events import RunSummary, Sink, StageResult, Status, emit_output
from pivot.engine.execlock import StageLock
from pivot.exceptions import DependencyMissingError, PivotError

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from pivot.engine.cluster.executor import DaskExecutor
    from pivot.engine.context import Context

# multiprocessing, concurrent.futures.process and pivot.engine.worker (~0.1 s of imports) are
# loaded only when a stage actually has to run in a worker: a no-op repro never needs them.

logger = logging.getLogger(__name__)

RESTORED = "restored from cache"
RUN_CACHE_HIT = "unchanged (run cache)"
_POLL_S = 0.05  # how often a stage waiting for another pivot's execution lock is retried

JobKind = Literal["restore", "runcache", "record"]


@dataclass
class RunOptions:
    force: bool = False
    keep_going: bool = False
    no_commit: bool = False
    jobs: int | None = None  # None: `resolve_jobs` (config core.jobs, else CPU count)
    checkout_missing: bool = False
    allow_uncached_incremental: bool = False
    # Stream each running stage's stdout/stderr to the sinks' `stage_output`, line by line.
    stream_output: bool = False
    # `repro --pull`: called (main thread) with (ctx, stage, state) before the run-cache lookup
    # of a stage about to run, to fetch its run-cache entry and outputs from a remote
    # (`engine.transfer.pull_hook`; the context is passed because `--watch` reloads it).
    pull: Callable[[Context, str, plan.StageState], None] | None = None
    # `--executor dask://…`: stages that must run go to this executor (a Dask cluster,
    # `engine/cluster/executor.py`) instead of local worker processes; None: local.
    executor: DaskExecutor | None = None


CANCELLED = "cancelled"
NOT_RUN_CANCELLED = "not run: cancelled"


def run(
    ctx: Context,
    order: Sequence[str],
    opts: RunOptions,
    sinks: Sequence[Sink],
    cancel: threading.Event | None = None,
) -> RunSummary:
    """Run `order` (see module docstring); never raises for a stage failure.

    Setting `cancel` (from any thread) stops the run: running workers are killed (their
    stages fail with reason "cancelled"), nothing new starts, records in progress finish.
    """
    mp = sys.modules.get("multiprocessing")  # not imported: cannot be a starting worker
    # (getattr: another thread may be importing it right now, leaving it half initialized)
    current_process = getattr(mp, "current_process", None)
    if current_process is not None and getattr(current_process(), "_inheriting", False):
        # A worker is importing the caller's main script (spawn/forkserver do): do nothing.
        raise PivotError(
            "pivot.engine.runner.run() called while a worker process was starting; guard the "
            "calling script with `if __name__ == '__main__':`"
        )
    started = time.perf_counter()
    order = list(dict.fromkeys(order))
    if opts.checkout_missing:
        from pivot.engine.checkout import restore_missing_tracked

        restore_missing_tracked(ctx, jobs=opts.jobs)
    decisions = plan.decide(ctx, order, force=opts.force)
    sched = _Scheduler(ctx, order, decisions, opts, sinks, cancel)
    try:
        sched.loop()
    except BaseException:
        sched.abort()
        raise
    finally:
        sched.close()
        ctx.save()
    sched.summary.duration_ms = (time.perf_counter() - started) * 1000.0
    return sched.summary


def _forkserver_context() -> Any:
    import multiprocessing

    # Never fork: the Rust thread pool may already be running in this process. The fork
    # server need not import __main__ (the default preload): workers load the pipeline.
    mp_context = multiprocessing.get_context("forkserver")
    mp_context.set_forkserver_preload([])
    return mp_context


def start_worker_server() -> None:
    """Start the fork server now, while sys.stderr is still the real one.

    It is started lazily otherwise; a full-screen UI replaces sys.stderr with an object
    without a file descriptor, and multiprocessing then cannot start its helper processes.
    """
    from multiprocessing import forkserver

    _forkserver_context()
    forkserver.ensure_running()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class _Scheduler:
    def __init__(
        self,
        ctx: Context,
        order: list[str],
        decisions: dict[str, plan.Decision],
        opts: RunOptions,
        sinks: Sequence[Sink],
        cancel: threading.Event | None = None,
    ) -> None:
        self.ctx = ctx
        self.cancel = cancel
        self.stop_reason = "not run: an earlier stage failed"
        self.tails: dict[str, _Tail] = {}  # running stage -> its streamed output file
        self.order = order
        self.decisions = decisions
        self.opts = opts
        self.sinks = list(sinks)
        self.summary = RunSummary()
        self.total = len(order)
        self.pos = {n: i + 1 for i, n in enumerate(order)}
        self.ups = {
            n: [u for u in ctx.graph.upstream(n) if u in self.pos and self.pos[u] < self.pos[n]]
            for n in order
        }
        self.pending: list[str] = list(order)
        self.done: dict[str, StageResult] = {}
        self.started: dict[str, float] = {}
        self.locks: dict[str, StageLock] = {}
        self.logged_wait: set[str] = set()
        self.lock_waiting = False
        self.busy_mutex: dict[str, str] = {}
        self.proc_futs: dict[Future[Any], tuple[str, plan.Decision]] = {}
        self.thread_futs: dict[Future[Any], tuple[str, JobKind, plan.Decision, str]] = {}
        self.stopping = False
        self.stopping_cancel = False
        self.to_run = sum(1 for d in decisions.values() if d.will_run and not d.restore)
        self.remote = opts.executor
        if self.remote is not None:
            # The cluster's parallelism (connecting only when something may have to run;
            # restores and run-cache hits stay local).
            self.jobs = opts.jobs or (
                self.remote.slots() if self.to_run else resolve_jobs(None, ctx.config)
            )
        else:
            self.jobs = resolve_jobs(opts.jobs, ctx.config)
        self.executor: ProcessPoolExecutor | None = None
        self.threads = ThreadPoolExecutor(
            max_workers=max(2, min(self.jobs, 8)), thread_name_prefix="pivot-record"
        )

    # --- events ----------------------------------------------------------------------------
    def _start(self, name: str) -> None:
        self.started[name] = time.perf_counter()
        for s in self.sinks:
            s.stage_start(name, self.pos[name], self.total)

    def _complete(self, name: str, status: Status, reason: str, output: str = "") -> None:
        if name in self.pending:
            self.pending.remove(name)
        t0 = self.started.get(name)
        ms = (time.perf_counter() - t0) * 1000.0 if t0 is not None else 0.0
        result = StageResult(name, status, reason, ms, output)
        self.done[name] = result
        self.summary.add(result)
        self._release(name)
        if status == "failed" and not self.opts.keep_going:
            self.stopping = True
        for s in self.sinks:
            s.stage_complete(result, self.pos[name], self.total)

    def _release(self, name: str) -> None:
        lock = self.locks.pop(name, None)
        if lock is not None:
            lock.release()

    # --- main loop -------------------------------------------------------------------------
    def loop(self) -> None:
        while self.pending or self.proc_futs or self.thread_futs:
            if self.cancel is not None and self.cancel.is_set() and not self.stopping_cancel:
                self._cancel()
            self._schedule()
            futs: list[Future[Any]] = [*self.proc_futs, *self.thread_futs]
            # Wake up regularly while output is streamed or a cancel may come.
            polling = self.lock_waiting or bool(self.tails) or self.cancel is not None
            if futs:
                timeout = _POLL_S if polling else None
                done, _ = wait_futures(futs, timeout=timeout, return_when=FIRST_COMPLETED)
                self._pump()
                for fut in done:
                    self._finish(fut)
            elif self.pending:
                if polling:
                    time.sleep(_POLL_S)
                else:  # cannot happen: every pending stage has a finished or pending upstream
                    for name in list(self.pending):
                        self._complete(name, "blocked", "not run: unschedulable")

    def _schedule(self) -> None:
        self.lock_waiting = False
        for name in list(self.pending):
            if name not in self.pending:
                continue
            bad = next(
                (u for u in self.ups[name] if u in self.done and self.done[u].status in _BAD),
                None,
            )
            if bad is not None:
                self._complete(name, "blocked", f"blocked by {bad}")
                continue
            if self.stopping:
                self._complete(name, "blocked", self.stop_reason)
                continue
            if any(u not in self.done for u in self.ups[name]):
                continue
            if not self.decisions[name].will_run:
                self._start(name)
                self._complete(name, "skipped", plan.UNCHANGED)
                continue
            if len(self.proc_futs) >= self.jobs:
                continue  # bounded submission: fail-fast then really stops what has not started
            stage = self.ctx.pipeline.stages[name]
            if any(g in self.busy_mutex for g in stage.mutex):
                continue
            lock = StageLock(self.ctx.locks_dir, name)
            if not lock.try_acquire():
                if name not in self.logged_wait:
                    self.logged_wait.add(name)
                    logger.warning("waiting for %s", lock.blocker())
                self.lock_waiting = True
                continue
            self.locks[name] = lock
            self.pending.remove(name)
            self._start(name)
            try:
                self._begin(name)
            except Exception as e:  # one stage's problem must not abort the others
                if not isinstance(e, (PivotError, OSError)):
                    logger.debug("unexpected error deciding %s", name, exc_info=True)
                self._complete(name, "failed", _one_line(e))

    def _begin(self, name: str) -> None:
        """Holding the execution lock: decide again on real files, then act."""
        d = plan.Planner(self.ctx).decide_stage(name, force=self.opts.force)
        planned = self.decisions[name].reason
        if planned.startswith("Upstream stale") and d.will_run and d.reason == plan.DEPS_CHANGED:
            d.reason = planned  # its deps changed because that upstream ran: say so, as planned
        self.decisions[name] = d
        if not d.will_run:
            self._complete(name, "skipped", plan.UNCHANGED)
            return
        if d.restore:
            self._job(name, "restore", d, self._restore, d)
            return
        state = d.state
        assert state is not None  # upstream finished, so the state is known
        if state.missing_deps:
            raise DependencyMissingError(
                f"stage '{name}': dependency missing: {', '.join(state.missing_deps)}"
            )
        if not self.opts.force:
            if self.opts.pull is not None:
                self.opts.pull(self.ctx, name, state)
            hit = record.usable_run_cache_hit(self.ctx, name, state)
            if hit is not None:
                self._job(name, "runcache", d, self._apply_run_cache, name, state, hit)
                return
        self._submit(name, d)

    # --- main-process jobs (threads: the Rust calls release the GIL) ----------------------
    def _job(self, name: str, kind: JobKind, d: plan.Decision, fn: Any, *args: Any) -> None:
        fut = self.threads.submit(fn, *args)
        self.thread_futs[fut] = (name, kind, d, "")

    def _restore(self, d: plan.Decision) -> None:
        assert d.lock is not None
        record.restore_outputs(self.ctx, {k: d.lock["outs"][k] for k in d.restore_paths})

    def _apply_run_cache(self, name: str, state: plan.StageState, hit: dict[str, Any]) -> None:
        record.restore_outputs(self.ctx, hit)
        if not self.opts.no_commit:
            record.write_records(self.ctx, name, state, hit)

    def _record(self, name: str, state: plan.StageState) -> None:
        outs = record.collect_outputs(self.ctx, name, insert=not self.opts.no_commit)
        if not self.opts.no_commit:  # --no-commit: hashed only, nothing durable (docs/cli.md)
            record.write_records(self.ctx, name, state, outs)

    # --- worker processes ------------------------------------------------------------------
    def _pool(self) -> ProcessPoolExecutor:
        if self.executor is None:
            from concurrent.futures import ProcessPoolExecutor

            from pivot.engine import worker

            n = max(1, min(self.jobs, self.to_run or 1))
            mp_context = _forkserver_context()
            self.executor = ProcessPoolExecutor(
                max_workers=n,
                mp_context=mp_context,
                initializer=worker.init_worker,
                initargs=(os.getpid(),),
            )
        return self.executor

    def _submit(self, name: str, d: plan.Decision) -> None:
        from pivot.engine import worker

        ctx = self.ctx
        stage = ctx.pipeline.stages[name]
        if self.remote is not None:
            for g in stage.mutex:
                self.busy_mutex[g] = name
            rfut = self.remote.submit(
                ctx,
                name,
                d,
                no_commit=self.opts.no_commit,
                allow_uncached_incremental=self.opts.allow_uncached_incremental,
            )
            self.proc_futs[rfut] = (name, d)
            return
        incremental = [
            worker.IncrementalPrep(str(ctx.abspath(key)), previous)
            for key, previous in plan.incremental_previous(ctx, stage, d)
        ]
        # A stage merged by `--all` is loaded by the worker from its own pipeline file.
        origin_dir, origin_name = ctx.pipeline.origins.get(name, (ctx.cwd, name))
        task = worker.WorkerTask(
            stage=origin_name,
            root=str(ctx.root),
            cwd=str(origin_dir),
            remove=tuple(str(ctx.abspath(o.path)) for o in stage.outs if o.kind != "incremental"),
            incremental=tuple(incremental),
            cache_dir=str(ctx.cache.cache_dir),
            state_dir=str(ctx.cache.state_dir) if ctx.cache.state_dir is not None else None,
            allow_uncached_incremental=self.opts.allow_uncached_incremental,
            trash_dir=str(ctx.project.tmp_dir) if ctx.project.tmp_dir.is_dir() else None,
            log_path=self._log_path(name) if self.opts.stream_output else None,
        )
        for g in stage.mutex:
            self.busy_mutex[g] = name
        fut = self._pool().submit(worker.execute, task)
        self.proc_futs[fut] = (name, d)

    def _free_mutex(self, name: str) -> None:
        for g in [g for g, holder in self.busy_mutex.items() if holder == name]:
            del self.busy_mutex[g]

    # --- completions -----------------------------------------------------------------------
    def _finish(self, fut: Future[Any]) -> None:
        if fut in self.proc_futs:
            from concurrent.futures.process import BrokenProcessPool

            name, d = self.proc_futs.pop(fut)
            self._free_mutex(name)
            self._end_tail(name)
            try:
                outcome = fut.result()  # worker.WorkerOutcome, or a cluster TaskResult
            except BrokenProcessPool as e:
                self._drop_pool()
                self._complete(name, "failed", f"worker process died: {e}")
                return
            except Exception as e:
                self._complete(name, "failed", _one_line(e))
                return
            if not outcome.ok:
                self._complete(name, "failed", outcome.error, outcome.output)
                return
            assert d.state is not None
            if self.remote is not None:  # verify the worker's outputs, restore, record
                fut2 = self.threads.submit(
                    self.remote.record,
                    self.ctx,
                    name,
                    d.state,
                    outcome,
                    no_commit=self.opts.no_commit,
                )
            else:
                fut2 = self.threads.submit(self._record, name, d.state)
            self.thread_futs[fut2] = (name, "record", d, outcome.output)
            return

        name, kind, d, output = self.thread_futs.pop(fut)
        try:
            fut.result()
        except Exception as e:  # a stage's record failing must not abort the other stages
            restorable = isinstance(e, (PivotError, OSError))
            if (
                kind in ("restore", "runcache")
                and restorable
                and d.state is not None
                and not d.state.missing_deps
            ):
                # The cache could not give the outputs back (corrupt or vanished object): run.
                logger.warning("%s: cannot restore outputs (%s); running it", name, _one_line(e))
                d.restore = False
                self._submit(name, d)
                return
            self._complete(name, "failed", _one_line(e), output)
            return
        if kind == "restore":
            self._complete(name, "skipped", RESTORED)
        elif kind == "runcache":
            self._complete(name, "skipped", RUN_CACHE_HIT)
        else:
            self._complete(name, "ran", d.reason, output)

    def _drop_pool(self) -> None:
        # Join a broken pool's manager thread now: left running, it can race interpreter exit
        # and print a "Bad file descriptor" traceback. Its workers are already gone, so this is
        # quick.
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None

    # --- streamed output ------------------------------------------------------------------
    def _log_path(self, name: str) -> str:
        # `.pvtmp-<pid>-…` in .pivot/tmp: removed by a later command if this process dies.
        tmp = self.ctx.project.tmp_dir
        tmp.mkdir(parents=True, exist_ok=True)
        path = tmp / f".pvtmp-{os.getpid()}-out-{name.replace('/', '%2F')}"
        self.tails[name] = _Tail(path)
        return str(path)

    def _pump(self) -> None:
        for name, tail in self.tails.items():
            for line in tail.read():
                emit_output(self.sinks, name, line)

    def _end_tail(self, name: str) -> None:
        tail = self.tails.pop(name, None)
        if tail is None:
            return
        for line in tail.read(final=True):
            emit_output(self.sinks, name, line)
        tail.path.unlink(missing_ok=True)

    # --- cancel ----------------------------------------------------------------------------
    def _cancel(self) -> None:
        """Kill running workers, start nothing new; records already running finish."""
        self.stopping = self.stopping_cancel = True
        self.stop_reason = NOT_RUN_CANCELLED
        self._kill_workers()
        for fut, (name, _d) in list(self.proc_futs.items()):
            del self.proc_futs[fut]
            self._free_mutex(name)
            self._end_tail(name)
            self._complete(name, "failed", CANCELLED)

    def _kill_workers(self, wait: bool = True) -> None:
        """SIGKILL every worker process and drop the pool (`wait`: join its manager thread,
        quick once the workers are dead); cluster tasks are released."""
        if self.remote is not None:
            self.remote.cancel()
        if self.executor is not None:
            procs = getattr(self.executor, "_processes", None) or {}  # no public API for this
            for p in list(procs.values()):
                try:
                    p.kill()
                except (OSError, AttributeError):
                    pass
            self.executor.shutdown(wait=wait, cancel_futures=True)
            self.executor = None

    # --- teardown --------------------------------------------------------------------------
    def abort(self) -> None:
        """Ctrl-C or an internal error: stop workers now; held locks are released in close()."""
        self._kill_workers(wait=False)
        self.threads.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None
        if self.remote is not None:
            self.remote.close()
        self.threads.shutdown(wait=True)
        for name in list(self.locks):
            self._release(name)
        for tail in self.tails.values():
            tail.path.unlink(missing_ok=True)
        self.tails.clear()


class _Tail:
    """Reads a worker's capture file as it grows and splits it into lines."""

    _MAX_LINE = 64 * 1024  # a longer run of bytes without a newline is passed on as a line

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self, final: bool = False) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            data = b""
        self.offset += len(data)
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        if final or len(self.partial) > self._MAX_LINE:
            if self.partial:
                lines.append(self.partial)
            self.partial = b""
        return [ln.rstrip(b"\r").decode("utf-8", errors="replace") for ln in lines]


_BAD = frozenset({"failed", "blocked"})
