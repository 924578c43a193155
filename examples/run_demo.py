"""Run the example pipeline from scratch: `make demo` (or `python examples/run_demo.py [DEST]`).

Copies examples/ into a fresh directory (default: build/demo/), makes it a git repository and a
pivot project, runs `pivot repro` (every stage runs), `pivot repro` again (everything cached)
and `pivot status`. Exits non-zero if any step fails or the second run is not a no-op.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = ("pipeline.py", "data/corpus.txt")


def pivot_command() -> list[str]:
    """The `pivot` console script of this interpreter, else the entry point through -c."""
    script = Path(sys.executable).parent / "pivot"
    if script.exists():
        return [str(script)]
    found = shutil.which("pivot")
    if found:
        return [found]
    return [sys.executable, "-c", "from pivot.cli import main; main()"]


def step(args: list[str], cwd: Path, show: str) -> subprocess.CompletedProcess[str]:
    print(f"$ {show}", flush=True)
    proc = subprocess.run(args, cwd=cwd, text=True, capture_output=True)
    sys.stdout.write(proc.stdout)
    sys.stdout.write(proc.stderr)
    sys.stdout.flush()
    if proc.returncode != 0:
        sys.exit(f"demo: '{show}' failed with exit code {proc.returncode}")
    return proc


def main(argv: list[str]) -> int:
    dest = Path(argv[0]).resolve() if argv else HERE.parent / "build" / "demo"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in FILES:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(HERE / name, dest / name)
    print(f"demo project: {dest}", flush=True)

    pivot = pivot_command()
    step(["git", "init", "-q"], dest, "git init -q")
    step([*pivot, "init"], dest, "pivot init")
    first = step([*pivot, "repro"], dest, "pivot repro")
    second = step([*pivot, "repro"], dest, "pivot repro        # again: nothing to do")
    step([*pivot, "status"], dest, "pivot status")

    if "Summary: 3 ran" not in first.stderr:
        sys.exit("demo: the first run did not run all three stages")
    if "Summary: 0 ran, 3 cached" not in second.stderr:
        sys.exit("demo: the second run was not a no-op")
    summary = (dest / "metrics" / "summary.json").read_text(encoding="utf-8")
    print(f"\nmetrics/summary.json:\n{summary}", end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
