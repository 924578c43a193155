"""The PASS/FAIL results table printed by the benchmark scripts (run as `python benchmarks/x.py`)."""

from __future__ import annotations

from collections.abc import Sequence

# (step, pivot seconds, baseline name, baseline seconds, highest allowed pivot/baseline ratio)
Row = tuple[str, float, str, float, float]


def print_table(rows: Sequence[Row], footer: str, *, step_width: int = 30) -> int:
    """Print the table and the footer; return the number of missed targets."""
    print()
    print(
        f"{'step':<{step_width}} {'pivot s':>9}  {'baseline':<26} {'base s':>8} {'ratio':>6} "
        f"{'target':>8}  result"
    )
    failed = 0
    for name, t, bname, bt, target in rows:
        ratio = t / bt
        ok = ratio <= target
        failed += not ok
        print(
            f"{name:<{step_width}} {t:9.3f}  {bname:<26} {bt:8.3f} {ratio:6.2f} "
            f"{'<= ' + format(target, '.2f'):>8}  {'PASS' if ok else 'FAIL'}"
        )
    print(f"\n{footer}")
    return failed
