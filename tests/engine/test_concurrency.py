"""Two pivots on one project never run the same stage at once, and both end consistent."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from _engine_helpers import Proj

PIPELINE = """
def slow_a() -> Annotated[str, outputs.Out("out/a.txt", loaders.Text())]:
    _mark("a")
    time.sleep(0.5)
    return "a"


def slow_b(a: Annotated[str, outputs.Dep("out/a.txt", loaders.Text())]) -> Annotated[
    str, outputs.Out("out/b.txt", loaders.Text())
]:
    _mark("b")
    time.sleep(0.3)
    return a + "b"


pipeline = Pipeline("c")
pipeline.register(slow_a)
pipeline.register(slow_b)
"""

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pivot.engine import runner
    from pivot.engine.context import load_context

    ctx = load_context(Path(sys.argv[1]))
    s = runner.run(ctx, ctx.graph.order(), runner.RunOptions(), [])
    print(s.ran, s.skipped, s.failed)
    sys.exit(0 if s.ok else 1)
    """
)


def test_two_concurrent_runners_never_double_run(proj: Proj) -> None:
    proj.pipeline(PIPELINE)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "python"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(proj.root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert (proj.marks("a"), proj.marks("b")) == (1, 1), outs
    ran = sorted(int(o[0].split()[0]) for o in outs)
    assert sum(ran) == 2, outs
    assert proj.reasons() == {"slow_a": "unchanged", "slow_b": "unchanged"}
