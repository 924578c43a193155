"""Case 13: a read-only cache, a dependency pivot may not read, and a cache on another
filesystem than the workspace.

We run as root here, and root ignores permission bits, so the permission cases run the `pivot`
subprocess as `nobody` (`setpriv --reuid=65534 --regid=65534 --clear-groups`) on a project
chowned to it, in a directory `nobody` can reach. The interpreter must be one `nobody` may
execute: the venv's own python when possible, else the system python of the same version with
the venv's site-packages on PYTHONPATH. When neither works the cases are skipped with the reason.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import _invariants as inv
import pytest
from _hostile import cause_line, check_objects, new_project, ok, tree

NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

PIPELINE = """
def make(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("out/", loaders.PathOnly())]:
    out = pathlib.Path("out")
    out.mkdir(exist_ok=True)
    for i in range(5):
        (out / ("f" + str(i))).write_text(str(i) + src, encoding="utf-8")
    return out


pipeline = Pipeline("perm")
pipeline.register(make)
"""


def _mirror(src: Path, dst: Path) -> None:
    """Hard-link (or copy) a tree: the links need no access to `src`'s parent directories."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link, ignore=shutil.ignore_patterns("__pycache__"))


@functools.cache
def _readable_runtime() -> list[str]:
    """pivot and its site-packages mirrored where `nobody` can read them.

    The checkout (and its venv) may sit under a directory only root can enter, as a CI clone in
    a 0700 temp dir does; `nobody` must still be able to import the code under test.
    """
    rt = Path(tempfile.mkdtemp(prefix="pivot-nobody-rt-"))
    rt.chmod(0o755)
    atexit.register(shutil.rmtree, rt, True)
    _mirror(inv.PYTHON_SRC / "pivot", rt / "src" / "pivot")
    paths = [str(rt / "src")]
    for i, site in enumerate(p for p in sys.path if p.endswith("site-packages")):
        _mirror(Path(site), rt / f"site{i}")
        paths.append(str(rt / f"site{i}"))
    return paths


def _nobody_env() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join(_readable_runtime()),
    }


@functools.cache
def nobody_python() -> tuple[str | None, str]:
    """An interpreter `nobody` can run pivot with (its workers re-exec it), or the reason."""
    if os.geteuid() != 0:
        return None, "needs root to switch to an unprivileged user"
    if shutil.which("setpriv") is None:
        return None, "setpriv is not installed"
    v = sys.version_info
    # The worker pool (forkserver) re-executes sys.executable, so it must be runnable too.
    probe = (
        "import subprocess, sys, pivot._native; "
        "sys.exit(subprocess.run([sys.executable, '-c', 'import pivot._native']).returncode)"
    )
    reasons = []
    for exe in (sys.executable, f"/usr/bin/python{v.major}.{v.minor}"):
        if not os.path.exists(exe):
            continue
        proc = subprocess.run(
            [*SETPRIV, exe, "-c", probe],
            env=_nobody_env(),
            cwd="/",
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            return exe, ""
        reasons.append(f"{exe}: {proc.stderr.strip().splitlines()[-1:]}")
    return None, "no interpreter runnable by nobody: " + "; ".join(reasons)


def as_nobody(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe, _ = nobody_python()
    assert exe is not None
    return subprocess.run(
        [*SETPRIV, exe, "-c", "from pivot.cli import main; main()", *args],
        cwd=root,
        env=_nobody_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def nobody_ok(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = as_nobody(root, *args)
    assert proc.returncode == 0, f"pivot {' '.join(args)} as nobody: {inv.describe(proc)}"
    return proc


@pytest.fixture
def nproj() -> Iterator[Path]:
    """A project owned by nobody in a directory nobody can reach (pytest's tmp is 0700)."""
    exe, why = nobody_python()
    if exe is None:
        print("permission cases skipped:", why)
        pytest.skip(why)
    base = Path(tempfile.mkdtemp(prefix="pivot-perm-"))
    try:
        base.chmod(0o755)
        root = new_project(base / "p", PIPELINE, {"notes/user.txt": "mine\n"})
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(root)], check=True)
        nobody_ok(root, "repro")
        yield root
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_read_only_cache_is_a_clear_error_and_no_corruption(nproj: Path) -> None:
    root = nproj
    cache_files = root / ".pivot" / "cache" / "files"
    lock = root / ".pivot" / "stages" / "make.lock"
    lock_before = lock.read_bytes()
    objects_before = inv.all_objects(root)
    user = inv.snapshot(root, ["out/"])
    (root / "input.txt").write_text("changed\n", encoding="utf-8")
    user["input.txt"] = inv.file_hash(root / "input.txt")
    subprocess.run(["chmod", "-R", "a-w", str(root / ".pivot" / "cache")], check=True)

    proc = as_nobody(root, "repro")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, inv.describe(proc)
    # The cause names the directory the user has to fix, not the output being cached.
    cause_line(proc, "make", "Permission denied", str(cache_files))
    assert lock.read_bytes() == lock_before
    assert inv.all_objects(root) == objects_before
    assert list(cache_files.rglob(".pvtmp-*")) == []
    inv.check_i1(root)
    inv.check_i3(user, root, ["out/"])

    proc = as_nobody(root, "commit")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, inv.describe(proc)
    cause_line(proc, "make:", "Permission denied", str(cache_files))
    assert lock.read_bytes() == lock_before

    # I5: make the cache writable again; the same command completes the work.
    subprocess.run(["chmod", "-R", "u+w", str(root / ".pivot" / "cache")], check=True)
    nobody_ok(root, "repro")
    assert (root / "out" / "f0").read_text(encoding="utf-8") == "0changed\n"
    assert nobody_ok(root, "status", "-q").stderr == ""
    inv.check_all(root, user, ["out/"])


def test_unreadable_dependency_is_named(nproj: Path) -> None:
    root = nproj
    dep = root / "input.txt"
    dep.write_text("secret\n", encoding="utf-8")
    os.chown(dep, 0, 0)
    dep.chmod(0o600)
    lock = root / ".pivot" / "stages" / "make.lock"
    lock_before = lock.read_bytes()
    for args in (["status"], ["repro"], ["commit"]):
        proc = as_nobody(root, *args)
        assert proc.returncode == 1, inv.describe(proc)
        assert "Traceback" not in proc.stderr, inv.describe(proc)
        line = cause_line(proc, "Permission denied", str(dep))
        assert line.startswith(("Error: ", "✗ ")), line
        assert lock.read_bytes() == lock_before
    # I5: give the permission back.
    dep.chmod(0o644)
    nobody_ok(root, "repro")
    assert (root / "out" / "f1").read_text(encoding="utf-8") == "1secret\n"


@pytest.fixture
def other_fs_cache(tmp_path: Path) -> Iterator[Path]:
    """A cache directory on a different filesystem than tmp_path (tmpfs /dev/shm)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        pytest.skip("no writable /dev/shm for a cache on another filesystem")
    d = Path(tempfile.mkdtemp(prefix="pivot-xfs-cache-", dir=shm))
    if os.stat(d).st_dev == os.stat(tmp_path).st_dev:
        shutil.rmtree(d)
        pytest.skip("/dev/shm is on the same filesystem as the temp directory")
    try:
        yield d / "cache"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_cache_on_another_filesystem_falls_back_to_copy(
    tmp_path: Path, other_fs_cache: Path
) -> None:
    root = new_project(tmp_path / "p", PIPELINE, {"notes/user.txt": "mine\n"})
    (root / ".pivot" / "config.yaml").write_text(
        f"cache:\n  dir: {other_fs_cache}\n", encoding="utf-8"
    )
    user = inv.snapshot(root, ["out/"])

    def fallback_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
        return [ln for ln in proc.stderr.splitlines() if "falling back to copy" in ln]

    proc = ok(root, "-v", "repro")
    lines = fallback_lines(proc)
    assert len(lines) == 1, inv.describe(proc)  # five files, stated once
    assert "hardlink" in lines[0] and "cross-device" in lines[0], lines
    assert fallback_lines(ok(root, "repro")) == []  # not without -v
    out = root / "out"
    before = tree(out)
    # Copies, not links: the workspace files are writable and independent of the cache.
    assert all(os.stat(p).st_nlink == 1 and os.access(p, os.W_OK) for p in out.iterdir())
    assert check_objects(other_fs_cache / "files") == 6  # 5 files and the manifest
    shutil.rmtree(out)
    proc = ok(root, "-v", "checkout")
    assert len(fallback_lines(proc)) == 1, inv.describe(proc)
    assert tree(out) == before
    assert ok(root, "status", "-q").stderr == ""
    inv.check_i3(user, root, ["out/"])
