"""Load + validate + fingerprint a generated 500-stage pipeline vs merely importing it (issue 3).

Target: (b) load_pipeline + PipelineGraph.build + stage_fingerprint of every stage with a warm
FingerprintCache  <=  1.5 x  (a) importing pipeline.py alone, each in a fresh interpreter.

    PYTHONPATH=python .venv/bin/python benchmarks/bench_pipeline_load.py [--stages 500] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO_PYTHON = Path(__file__).resolve().parents[1] / "python"

HELPER_MODULES = 4


def _helpers(k: int) -> str:
    funcs = "\n\n".join(
        textwrap.dedent(
            f'''
            def transform_{j}(values, scale=SCALE):
                """Scale and shift."""
                out = [v * scale + OFFSETS[{j % 4}] for v in values]
                return _clip(out)
            '''
        )
        for j in range(25)
    )
    return (
        textwrap.dedent(
            f"""
        import math

        SCALE = {k + 1}
        OFFSETS = [0, 1, 2, 3]
        NAMES = {{"a": "x", "b": "y"}}


        def _clip(values, low=0.0, high=math.inf):
            return [min(max(v, low), high) for v in values]
        """
        )
        + funcs
    )


def _pipeline(n: int) -> str:
    head = textwrap.dedent(
        """
        import pathlib
        from typing import Annotated

        import helpers_0, helpers_1, helpers_2, helpers_3
        from pivot import loaders, outputs
        from pivot.pipeline import Pipeline
        from pivot.stage_def import StageParams

        THRESHOLD = 0.5
        LABELS = ("low", "high")


        class Params(StageParams):
            factor: float = 1.5
            rounds: int = 2


        def summarize(values):
            return {"n": len(values), "max": max(values, default=0), "label": LABELS[0]}


        pipeline = Pipeline("bench")
        """
    )
    stages = []
    for i in range(n):
        src = "data/input.txt" if i % 50 == 0 else f"out/s{i - 1}.json"
        reader = "loaders.Text()" if i % 50 == 0 else "loaders.JSON()"
        stages.append(
            textwrap.dedent(
                f'''
                def s{i}(
                    params: Params,
                    data: Annotated[object, outputs.Dep("{src}", {reader})],
                ) -> Annotated[dict, outputs.Out("out/s{i}.json", loaders.JSON())]:
                    """Stage {i}."""
                    values = helpers_{i % HELPER_MODULES}.transform_{i % 25}([1.0, 2.0, float({i})])
                    if params.factor > THRESHOLD:
                        values = [v * params.factor for v in values]
                    return summarize(values)


                pipeline.register(s{i})
                '''
            )
        )
    return head.replace("HELPER_MODULES", str(HELPER_MODULES)) + "".join(stages).replace(
        "HELPER_MODULES", str(HELPER_MODULES)
    )


def generate(root: Path, n: int) -> None:
    (root / ".pivot" / "state").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "input.txt").write_text("hello\n")
    for k in range(HELPER_MODULES):
        (root / f"helpers_{k}.py").write_text(_helpers(k))
    (root / "pipeline.py").write_text(_pipeline(n))


IMPORT_ONLY = """
import runpy, sys
sys.path.insert(0, {root!r})
runpy.run_path({pipeline!r}, run_name="_pivot_pipeline")
"""

LOAD_ALL = """
from pathlib import Path
from pivot.fingerprint import FingerprintCache, stage_fingerprint
from pivot.pipeline import load_pipeline
root = Path({root!r})
pipeline = load_pipeline(root)
try:
    from pivot.graph import PipelineGraph
except ImportError:
    PipelineGraph = None
if PipelineGraph is not None:
    PipelineGraph.build(pipeline.stages, root)
cache = FingerprintCache.load(root / ".pivot" / "state")
fingerprints = {{name: stage_fingerprint(s, cache) for name, s in pipeline.stages.items()}}
cache.save()
assert len(fingerprints) == {n}
print("graph" if PipelineGraph is not None else "nograph")
"""


def _run(code: str, env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    return elapsed, proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_PYTHON), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # both sides compile the project's sources each run
    with tempfile.TemporaryDirectory(prefix="pivot-bench-") as tmp:
        root = Path(tmp)
        generate(root, args.stages)
        # Fresh files are "racily clean" for 2 s: age them so the warm cache may persist.
        time.sleep(2.2)
        import_code = IMPORT_ONLY.format(root=str(root), pipeline=str(root / "pipeline.py"))
        load_code = LOAD_ALL.format(root=str(root), n=args.stages)
        cold, mode = _run(load_code, env, root)  # fills the fingerprint cache
        _run(import_code, env, root)  # warm the OS file cache for both
        a: list[float] = []
        b: list[float] = []
        for _ in range(args.runs):  # interleaved, so machine noise hits both alike
            a.append(_run(import_code, env, root)[0])
            b.append(_run(load_code, env, root)[0])
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"stages: {args.stages}, runs: {args.runs} (median wall time, fresh interpreters)")
        print(f"(a) import pipeline.py only:                 {ma * 1000:8.1f} ms")
        print(f"(b) load + validate + fingerprint, warm:     {mb * 1000:8.1f} ms")
        print(f"    same, cold fingerprint cache (1 run):    {cold * 1000:8.1f} ms")
        if mode != "graph":
            print("    note: pivot.graph.PipelineGraph missing: (b) skipped graph validation")
        print(f"ratio (b)/(a): {mb / ma:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
