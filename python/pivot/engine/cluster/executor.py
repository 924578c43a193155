"""The coordinator's side of `--executor dask://HOST:PORT` (docs/architecture.md, "The Dask
executor").

The runner plans as always (skips, restores, run-cache hits happen here, locally) and hands
each stage that must run to `DaskExecutor.submit` instead of its process pool, when the
stage's upstream stages are done; at most `slots()` (the cluster's threads) at once. For each
stage the executor
  1. makes sure every input object is on the remote (a dependency that is neither an output
     nor tracked is first copied into the local cache; the workspace file is left as it is);
  2. submits `task.run_task` to the cluster, with the code snapshot as a Dask task of its own
     (Dask moves it to each worker once, and computes it again if the worker holding it dies);
  3. when the task returns, `record` fetches every output the worker reported from the remote
     (the fetch stores an object only when its bytes hash to its name), restores it into the
     workspace, hashes it there and compares hash, size and file count with the worker's
     claim; any difference refuses the stage. Only then the lock and run-cache entry are
     written (not with --no-commit: the objects then pass through a throwaway cache).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot.engine import plan
from pivot.engine.cluster.task import TaskResult, TaskSpec, run_task
from pivot.exceptions import PivotError
from pivot.storage.links import LinkMode
from pivot.types import HashInfo, OutEntry

if TYPE_CHECKING:
    from pivot.engine.cluster.snapshot import CodeSnapshot
    from pivot.engine.context import Context
    from pivot.storage.remote import Remote

logger = logging.getLogger(__name__)

RETRIES = 2  # Dask retries of a task that raised (the remote failing, the stage process killed)


def scheduler_address(url: str) -> str:
    """`dask://HOST:PORT` -> `tcp://HOST:PORT`; `dask+tls://` -> `tls://`."""
    for prefix, scheme in (("dask://", "tcp://"), ("dask+tls://", "tls://")):
        if url.startswith(prefix) and len(url) > len(prefix):
            return scheme + url[len(prefix) :]
    raise ValueError(f"executor {url!r}: expected 'local' or dask://HOST:PORT")


class DaskExecutor:
    """One run's connection to a Dask scheduler (opened on first use)."""

    def __init__(self, url: str, remote: Remote) -> None:
        self.url = url
        self.address = scheduler_address(url)
        self.remote = remote
        self._client: Any = None
        self._code: Any = None  # the Dask future of the code snapshot
        self._snapshot: CodeSnapshot | None = None
        # One remote transfer at a time on the coordinator (one native Remote, one index set).
        self._remote_lock = threading.Lock()
        self._prep: ThreadPoolExecutor | None = None
        self._futures: dict[str, Any] = {}  # stage -> its Dask future
        self._inputs: Path | None = None  # --no-commit: the throwaway cache of plain inputs

    # --- connection ------------------------------------------------------------------------
    def client(self) -> Any:
        if self._client is None:
            from distributed import Client

            try:
                self._client = Client(  # type: ignore[no-untyped-call]
                    self.address, timeout=30, set_as_default=False
                )
            except OSError as e:
                raise PivotError(f"cannot reach the Dask scheduler at {self.url}: {e}") from None
        return self._client

    def slots(self) -> int:
        """The cluster's parallelism: its worker threads (at least 1)."""
        threads: dict[str, int] = self.client().nthreads()
        return max(1, sum(threads.values()))

    # --- submission ------------------------------------------------------------------------
    def submit(
        self,
        ctx: Context,
        name: str,
        d: plan.Decision,
        *,
        no_commit: bool,
        allow_uncached_incremental: bool,
    ) -> Future[TaskResult]:
        out: Future[TaskResult] = Future()
        out.set_running_or_notify_cancel()

        def prepare() -> None:
            try:
                t0 = time.perf_counter()
                spec = self._spec(ctx, name, d, no_commit, allow_uncached_incremental)
                logger.debug("%s: inputs published in %.0f ms", name, _ms(t0))
                fut = self.client().submit(
                    run_task,
                    spec,
                    self._code_future(ctx),
                    key=f"pivot-{name}-{os.urandom(6).hex()}",
                    retries=RETRIES,
                    pure=False,
                )
                self._futures[name] = fut
                fut.add_done_callback(lambda f: self._done(name, f, out))
            except BaseException as e:
                out.set_exception(e)

        if self._prep is None:
            self._prep = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pivot-dask-prep")
        self._prep.submit(prepare)
        return out

    def _done(self, name: str, fut: Any, out: Future[TaskResult]) -> None:
        self._futures.pop(name, None)
        try:
            result: TaskResult = fut.result()
            logger.debug(
                "%s: task done on %s in %.0f ms %s",
                name,
                result.worker,
                result.duration_ms,
                result.phases,
            )
            out.set_result(result)
        except BaseException as e:
            out.set_exception(e)

    def _code_future(self, ctx: Context) -> Any:
        with self._remote_lock:
            if self._code is None:
                from pivot.engine.cluster.snapshot import collect

                outs = [o.path for s in ctx.pipeline.stages.values() for o in s.outs]
                self._snapshot = collect(ctx.root, outs)
                # A task (not scattered data): Dask recomputes it if its worker dies.
                self._code = self.client().submit(
                    _identity, self._snapshot, key=f"pivot-code-{self._snapshot.id}", pure=False
                )
            return self._code

    def _spec(
        self,
        ctx: Context,
        name: str,
        d: plan.Decision,
        no_commit: bool,
        allow_uncached_incremental: bool,
    ) -> TaskSpec:
        state = d.state
        assert state is not None
        stage = ctx.pipeline.stages[name]
        deps = self._publish_inputs(ctx, name, state.deps, no_commit)
        incremental = plan.incremental_previous(ctx, stage, d)
        for _key, previous in incremental:
            if previous is not None:
                self._publish([previous], ctx.cache.cache_dir)
        origin_dir, own_name = ctx.pipeline.origins.get(name, (ctx.cwd, name))
        rel_dir = Path(os.path.relpath(origin_dir, ctx.root)).as_posix()
        settings = self.remote.settings
        if not settings.is_s3:  # a directory remote: the same (shared) path on every worker
            settings = dataclasses.replace(settings, url=self.remote.url)
        settings = dataclasses.replace(
            settings, access_key_id=None, secret_access_key=None, session_token=None
        )
        return TaskSpec(
            stage=name,
            own_name=own_name,
            pipeline_dir="" if rel_dir == "." else rel_dir,
            remote=settings,
            deps=tuple(deps),
            outs=tuple((plan.out_key(o.path), o.cache) for o in stage.outs),
            incremental=tuple(incremental),
            code=dict(state.code),
            params=dict(state.params),
            run_key=state.run_key,
            push_run_entry=not no_commit and not any(o.kind == "incremental" for o in stage.outs),
            allow_uncached_incremental=allow_uncached_incremental,
        )

    def _publish_inputs(
        self, ctx: Context, name: str, deps: dict[str, str], no_commit: bool
    ) -> list[tuple[str, HashInfo]]:
        """Each dependency's object, put on the remote (see module docstring, step 1). With
        --no-commit a plain-file dependency goes through a throwaway cache, not the project's."""
        from pivot.storage.cache import Cache

        found: list[tuple[str, HashInfo]] = []
        cached: list[HashInfo] = []
        copied: list[HashInfo] = []
        if no_commit:
            copier = Cache(self._inputs_dir(ctx), None, [LinkMode.COPY])
        else:
            copier = Cache(ctx.cache.cache_dir, ctx.cache.state_dir, [LinkMode.COPY])
        for path, expected in sorted(deps.items()):
            info = ctx.cache.hash(ctx.abspath(path))
            if info["hash"] != expected:
                raise PivotError(f"stage '{name}': dependency {path} changed while planning")
            if ctx.cache.contains(info):
                cached.append(info)
            else:
                with self._remote_lock:  # one insert at a time into the throwaway cache
                    copier.insert(ctx.abspath(path))  # copy mode: the workspace is untouched
                (copied if no_commit else cached).append(info)
            found.append((path, info))
        self._publish(cached, ctx.cache.cache_dir)
        if copied:
            self._publish(copied, copier.cache_dir)
        return found

    def _inputs_dir(self, ctx: Context) -> Path:
        if self._inputs is None:
            ctx.project.tmp_dir.mkdir(parents=True, exist_ok=True)
            self._inputs = ctx.project.tmp_dir / f".pvtmp-{os.getpid()}-dask-inputs"
        return self._inputs

    def _fresh_remote(self) -> Remote:
        """The remote, with its index set read now: a `Remote` reads it once, and the workers
        keep publishing (its index copies on disk make this one listing)."""
        from pivot.storage.remote import Remote

        return Remote(self.remote.settings, self.remote.project)

    def _publish(self, infos: list[HashInfo], cache_dir: Path) -> None:
        with self._remote_lock:
            rep = self._fresh_remote().push([(i["hash"], i["is_dir"]) for i in infos], cache_dir)
        bad = [*rep.missing, *rep.incomplete]
        if bad:
            raise PivotError(
                f"cannot publish inputs to remote {self.remote.name}: "
                f"{', '.join(h[:12] for h in bad)} not in the local cache"
            )

    # --- completion ------------------------------------------------------------------------
    def record(
        self,
        ctx: Context,
        name: str,
        state: plan.StageState,
        result: TaskResult,
        *,
        no_commit: bool,
    ) -> None:
        """Verify the worker's outputs against the remote, restore them, write the records."""
        from pivot.engine import record
        from pivot.storage import files
        from pivot.storage.cache import Cache

        t0 = time.perf_counter()
        stage = ctx.pipeline.stages[name]
        declared = {plan.out_key(o.path): o.cache for o in stage.outs}
        if set(result.outs) != set(declared):
            raise PivotError(
                f"stage '{name}': the worker reported outputs {sorted(result.outs)}, "
                f"expected {sorted(declared)}; refused"
            )
        if no_commit:  # nothing durable: the objects pass through a throwaway cache
            ctx.project.tmp_dir.mkdir(parents=True, exist_ok=True)
            scratch = ctx.project.tmp_dir / f".pvtmp-{os.getpid()}-dask-{name.replace('/', '%2F')}"
            cache = Cache(scratch, None, [LinkMode.COPY])
        else:
            scratch = None
            cache = ctx.cache
        try:
            with self._remote_lock:
                rep = self._fresh_remote().fetch(
                    [(e["hash"], e["is_dir"]) for e in result.outs.values()],
                    cache_dir=cache.cache_dir,
                )
            where = {e["hash"]: k for k, e in result.outs.items()}
            for problem, what in (
                (rep.missing, "has no such object"),
                (rep.corrupt, "holds bytes that do not hash to it"),
            ):
                for p in problem:
                    key = where.get(p.dir or p.hash, p.hash)
                    raise PivotError(
                        f"stage '{name}': worker {result.worker or '?'} reported {key} as "
                        f"{p.dir or p.hash}, but remote {self.remote.name} {what}; refused"
                    )
            verified: dict[str, OutEntry] = {}
            for key, claimed in sorted(result.outs.items()):
                verified[key] = self._restore(ctx, cache, name, key, claimed, declared[key])
        finally:
            if scratch is not None:
                files.remove_tree(str(scratch))
        if not no_commit:
            record.write_records(ctx, name, state, verified)
        logger.debug("%s: outputs verified and recorded in %.0f ms", name, _ms(t0))

    def _restore(
        self, ctx: Context, cache: Any, name: str, key: str, claimed: OutEntry, cached: bool
    ) -> OutEntry:
        from pivot.storage import files

        dest = ctx.abspath(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        info = plan.entry_info(claimed)
        # An uncached output (a metric) is a plain writable file, as after a local run.
        cache.restore(info, dest, None if cached else [LinkMode.COPY])
        if not cached:
            files.make_writable(str(dest))
        got = ctx.cache.hash(dest)
        if (got["hash"], got["size"], got["nfiles"], got["is_dir"]) != (
            claimed["hash"],
            claimed["size"],
            claimed["nfiles"],
            claimed["is_dir"],
        ):
            raise PivotError(
                f"stage '{name}': output {key} as fetched ({got['hash']}, {got['size']} bytes) "
                f"is not what the worker reported ({claimed['hash']}, {claimed['size']} "
                "bytes); refused"
            )
        return plan.out_entry(got, cached)

    # --- teardown --------------------------------------------------------------------------
    def cancel(self) -> None:
        """Release every submitted task (a task already running finishes on its worker)."""
        if self._client is not None and self._futures:
            try:
                self._client.cancel(list(self._futures.values()), force=True)
            except Exception:
                logger.debug("cancelling dask tasks failed", exc_info=True)

    def close(self) -> None:
        if self._prep is not None:
            self._prep.shutdown(wait=True)
            self._prep = None
        if self._inputs is not None:
            from pivot.storage import files

            files.remove_tree(str(self._inputs))
            self._inputs = None
        self._code = None
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                logger.debug("closing the dask client failed", exc_info=True)
            self._client = None


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _identity(x: Any) -> Any:
    return x
