"""The README's main job: examples/run_demo.py runs the example pipeline from scratch."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_demo_script(tmp_path: pathlib.Path) -> None:
    dest = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "run_demo.py"), str(dest)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "$ pivot repro" in out
    assert "✓ shard done" in out
    assert "Summary: 3 ran, 0 cached, 0 blocked, 0 failed" in out
    assert "Summary: 0 ran, 3 cached, 0 blocked, 0 failed" in out
    assert "All stages up to date" in out
    summary = json.loads((dest / "metrics" / "summary.json").read_text())
    assert summary["total_words"] > 0
    assert summary["top"][0] == {"word": "the", "count": summary["top"][0]["count"]}
    shards = sorted(p.name for p in (dest / "data" / "shards").iterdir())
    assert shards == ["shard-00.txt", "shard-01.txt", "shard-02.txt", "shard-03.txt"]
