"""`python -m pivot.engine.cluster.stage_main JOB RESULT`: run one stage for a Dask task.

The process the Dask task starts (`task._run_stage_process`) in the task's scratch project: it
dies with the Dask worker (`worker.init_worker`), loads the pipeline from the code snapshot,
checks that the stage's fingerprint and params are the coordinator's, then runs the stage with
the local runner's worker code (`worker.execute`) and writes the outcome as JSON to RESULT.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from pivot.engine import worker
from pivot.engine.cluster.task import install_guard


def _check_code(job: dict[str, Any]) -> str | None:
    """Why the snapshot's stage is not the coordinator's (None: it is)."""
    from pivot.engine import plan
    from pivot.fingerprint import stage_fingerprint

    stage = worker._pipeline(job["root"], job["cwd"]).stages[job["stage"]]
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


def main(job_path: str, result_path: str) -> int:
    install_guard()
    worker.init_worker(os.getppid())
    job = json.loads(Path(job_path).read_text())
    os.chdir(job["root"])
    try:
        problem = _check_code(job)
    except Exception as e:
        problem = f"stage '{job['display']}': cannot load the pipeline on the worker: {e}"
    if problem is not None:
        outcome = worker.WorkerOutcome(ok=False, error=f"PivotError: {problem}")
    else:
        task = worker.WorkerTask(
            stage=job["stage"],
            root=job["root"],
            cwd=job["cwd"],
            remove=(),  # a fresh scratch project: nothing old to delete
            incremental=tuple(worker.IncrementalPrep(p, info) for p, info in job["incremental"]),
            cache_dir=job["cache_dir"],
            state_dir=None,
            allow_uncached_incremental=job["allow_uncached_incremental"],
        )
        outcome = worker.execute(task)
    doc = {"ok": outcome.ok, "error": outcome.error, "output": outcome.output}
    Path(result_path).write_text(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
