"""`python -m pivot.engine.cluster.stage DASK_WORKER_PID`: the processes that run stages for
the Dask tasks of one worker (`task.py`).

Each Dask worker keeps these (at most one per task running at once) for the code snapshot in
use; they are plain child processes (Dask's worker processes are daemonic and may not start
multiprocessing children). Jobs arrive as JSON lines on stdin; after each, the result goes to
the job's file and `PIVOT-STAGE-DONE <id>` to stdout. The pipeline is loaded once per process
from the snapshot's directory (`worker.WorkerTask.load_root`), and each task runs in its own
scratch project with the local runner's worker code (`worker.execute`: cwd, fd capture,
IncrementalOut preparation). A process dies with its Dask worker (`worker.init_worker`).
Before a stage first runs in a process, its fingerprint and params from the snapshot are
compared with the coordinator's.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from pivot.engine import worker
from pivot.engine.cluster.task import install_guard

WORKER_PID_ENV = "PIVOT_DASK_WORKER_PID"  # the Dask worker process (the kill test uses it)

_checked: dict[tuple[str, str], str | None] = {}  # (load root, stage) -> problem


def init_process(dask_worker_pid: int) -> None:
    worker.init_worker(dask_worker_pid)
    os.environ[WORKER_PID_ENV] = str(dask_worker_pid)
    install_guard()


def _check_code(job: dict[str, Any]) -> str | None:
    """Why the snapshot's stage is not the coordinator's (None: it is)."""
    from pivot.engine import plan
    from pivot.fingerprint import stage_fingerprint

    stage = worker._pipeline(job["load_root"], job["cwd"]).stages[job["stage"]]
    code = stage_fingerprint(stage)
    if code != job["code"]:
        changed = sorted(k for k in {*code, *job["code"]} if code.get(k) != job["code"].get(k))
        return (
            f"stage '{job['display']}': the code sent to the worker does not give the "
            f"coordinator's fingerprint (entries: {', '.join(changed[:5])}); is some of its code "
            "outside the project? (docs/cluster.md)"
        )
    if plan.effective_params(stage) != job["params"]:
        return f"stage '{job['display']}': the worker's params differ from the coordinator's"
    return None


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one stage in the scratch project `job["root"]`; the outcome as plain data."""
    key = (job["load_root"], job["stage"])
    if key not in _checked:
        try:
            _checked[key] = _check_code(job)
        except Exception as e:
            _checked[key] = f"stage '{job['display']}': cannot load the pipeline on the worker: {e}"
    problem = _checked[key]
    if problem is not None:
        return {"ok": False, "error": f"PivotError: {problem}", "output": ""}
    task = worker.WorkerTask(
        stage=job["stage"],
        root=job["root"],
        cwd=job["cwd"],
        load_root=job["load_root"],
        remove=(),  # a fresh scratch project: nothing old to delete
        incremental=tuple(worker.IncrementalPrep(p, info) for p, info in job["incremental"]),
        cache_dir=job["cache_dir"],
        state_dir=None,
        allow_uncached_incremental=job["allow_uncached_incremental"],
    )
    outcome = worker.execute(task)
    return {"ok": outcome.ok, "error": outcome.error, "output": outcome.output}


def main(dask_worker_pid: int) -> int:
    from pivot.engine.cluster.task import DONE

    init_process(dask_worker_pid)
    for line in sys.stdin:
        job = json.loads(line)
        result = run_job(job)
        Path(job["result"]).write_text(json.dumps(result))
        sys.stdout.write(f"{DONE} {job['id']}\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
