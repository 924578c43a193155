"""Case 1: SIGKILL at every kill point during `repro`, `commit` and `checkout` of a directory
output; case 2: SIGKILL of the main process and of a worker while a stage runs; case 9: a stage
that writes half its outputs and raises.

After every crash I1–I3 hold, and simply re-running the command (I5) completes the work: the
pipeline is up to date, outputs are exactly what the stages write, and no temp file is left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import _invariants as inv
import pytest
from _project import OUTPUTS, Proj, make

KILL_POINTS = (
    "object_write",
    "object_rename",
    "manifest_write",
    "lock_write",
    "index_write",
    "restore_swap",
    "runcache_write",
)

# Points a command never reaches on this scenario (asserted: the command then completes).
# repro/commit of new outputs restore nothing; a checkout into an absent destination writes no
# object, manifest, lock or run-cache entry (it does record verified objects in the stat index).
UNREACHABLE = {
    ("repro", "restore_swap"),
    ("commit", "restore_swap"),
    ("checkout", "object_write"),
    ("checkout", "object_rename"),
    ("checkout", "manifest_write"),
    ("checkout", "lock_write"),
    ("checkout", "runcache_write"),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(fresh, uncommitted, built): a never-run project, one after `repro --no-commit` and one
    after `repro`, copied per test with cp -a
    (hard links between outputs and objects are kept)."""
    base = tmp_path_factory.mktemp("crash-templates")
    fresh = make(base / "fresh")
    uncommitted = make(base / "uncommitted")
    uncommitted.ok("repro", "--no-commit")
    built = make(base / "built")
    built.ok("repro")
    built.clear_runs()
    return fresh.root, uncommitted.root, built.root


def clone(src: Path, dst: Path) -> Proj:
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    return Proj(dst)


def temps(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name.startswith((".pvtmp-", ".pvold-")) or ".pivot-tmp-" in p.name
    )


@pytest.mark.parametrize("point", KILL_POINTS)
@pytest.mark.parametrize("command", ["repro", "commit", "checkout"])
def test_sigkill_at_every_kill_point(
    template: tuple[Path, Path, Path], tmp_path: Path, command: str, point: str
) -> None:
    fresh, uncommitted, built = template
    if command == "checkout":
        p = clone(built, tmp_path / "p")
        shutil.rmtree(p.root / "data" / "out")
        args = ["checkout", "data/out"]
    elif command == "commit":
        p = clone(uncommitted, tmp_path / "p")
        args = ["commit"]
    else:
        p = clone(fresh, tmp_path / "p")
        args = ["repro"]
    before = p.snapshot()

    proc = p.pivot(*args, PIVOT_KILL_AT=point)
    if (command, point) in UNREACHABLE:
        assert proc.returncode == 0, f"{point} unexpectedly fired: {inv.describe(proc)}"
    else:
        assert proc.returncode == -9, f"kill point {point} not reached: {inv.describe(proc)}"

    # I1–I3 right after the crash: objects match their names, locks name only present objects
    # (or verify --cache says which are missing), no user file touched.
    p.check(before)

    # I5: the same command again completes the work with no manual clean-up.
    inv.check_i5(p.root, args)
    if command == "repro":
        assert p.runs().count("produce") <= 2
    p.up_to_date()
    p.outputs_correct()
    p.check(before)
    leftovers = [t for t in temps(p.root) if not t.startswith(".pivot/tmp")]
    assert not leftovers, f"temp files left after recovery: {leftovers}"


def wait_for(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(encoding="utf-8").strip():
            return path.read_text(encoding="utf-8").strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_dead(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("victim", ["main", "worker"])
def test_sigkill_while_stage_runs(proj: Proj, victim: str) -> None:
    before = proj.snapshot()
    proj.write("SLEEP_produce", "")
    main = inv.pivot_popen(["repro"], proj.root)
    try:
        worker_pid = int(wait_for(proj.root / "produce.pid"))
        assert worker_pid != main.pid
        os.kill(main.pid if victim == "main" else worker_pid, 9)
        if victim == "main":
            main.wait(timeout=30)
            assert main.returncode == -9
            # The worker must not outlive the main process (it would keep writing outputs).
            assert wait_dead(worker_pid), f"orphaned worker {worker_pid} still running"
        else:
            out, err = main.communicate(timeout=60)
            assert main.returncode == 1, f"rc={main.returncode}\n{out}\n{err}"
            inv.check_i4(
                subprocess.CompletedProcess(main.args, main.returncode, out, err), "produce"
            )
    finally:
        if main.poll() is None:
            main.kill()
            main.wait()
    (proj.root / "SLEEP_produce").unlink()
    assert not (proj.root / ".pivot" / "stages" / "produce.lock").exists()
    proj.check(before)

    # The next repro takes over the dead execution lock by itself and re-runs the stage.
    proj.clear_runs()
    inv.check_i5(proj.root, ["repro"])
    assert proj.runs() == ["produce", "summarize"]
    proj.up_to_date()
    proj.outputs_correct()
    proj.check(before)


def entries(root: Path) -> set[str]:
    runs = root / ".pivot" / "cache" / "runs"
    return {str(p.relative_to(runs)) for p in runs.rglob("*") if p.is_file()}


def test_stage_writing_half_its_outputs_then_raising(built: Proj) -> None:
    lock = built.root / ".pivot" / "stages" / "produce.lock"
    lock_before = lock.read_bytes()
    objects_before = {h for h, _ in inv.all_objects(built.root)}
    runs_before = entries(built.root)
    built.write("input.txt", "changed input\n")
    built.write("FAIL_produce", "")
    before = built.snapshot()

    proc = built.pivot("repro")
    inv.check_i4(proc, "produce")
    assert built.runs() == ["produce"], "the dependent stage must not run"
    assert lock.read_bytes() == lock_before, "lock changed by a failed stage"
    objects_after = {h for h, _ in inv.all_objects(built.root)}
    assert objects_after == objects_before, "objects cached for a failed stage"
    assert entries(built.root) == runs_before, "run-cache entry written for a failed stage"
    built.check(before)

    status = built.pivot("status", "--json")
    stale = json.loads(status.stdout)
    assert "produce" in json.dumps(stale)
    assert built.pivot("status", "-q").returncode == 1
    (built.root / "FAIL_produce").unlink()
    built.clear_runs()
    inv.check_i5(built.root, ["repro"])
    assert built.runs() == ["produce", "summarize"]
    built.up_to_date()
    built.outputs_correct()
    built.check()
    assert OUTPUTS
