"""Case 8: `commit` on a full disk fails cleanly, loses no user data, and succeeds once space is
freed.

The cache (`cache.dir`) lives on a small filesystem of its own — an 8 MiB tmpfs, or else a
loop-mounted ext4 image — while the project stays on the normal disk, so the insert has to copy
(hard links cannot cross filesystems) and runs out of space. Mounting needs root and a kernel
that lets this sandbox mount; otherwise the test is skipped with the reason printed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import _invariants as inv
import pytest
from _hostile import cause_line, check_objects, fails, new_project, ok, temps, tree

SIZE_MB = 8

PIPELINE = """
def shards(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("shards/", loaders.PathOnly())]:
    raise RuntimeError("not run in this test: the outputs are committed as they are")


def blob(
    src: Annotated[str, outputs.Dep("input.txt", loaders.Text())],
) -> Annotated[pathlib.Path, outputs.Out("blob.bin", loaders.PathOnly())]:
    raise RuntimeError("not run in this test: the outputs are committed as they are")


pipeline = Pipeline("diskfull")
pipeline.register(shards)
pipeline.register(blob)
"""


def _try(cmd: list[str]) -> str | None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return None if proc.returncode == 0 else f"{' '.join(cmd)}: {proc.stderr.strip()}"


@contextlib.contextmanager
def small_filesystem(base: Path) -> Iterator[Path]:
    """An 8 MiB filesystem mounted at `base/mnt` (tmpfs, else loop ext4); skip if impossible."""
    mnt = base / "mnt"
    mnt.mkdir()
    reasons: list[str] = []
    if os.geteuid() != 0:
        pytest.skip("disk-full case needs root to mount a small filesystem")
    err = _try(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0755", "tmpfs", str(mnt)])
    if err is not None:
        reasons.append(err)
        img = base / "small.img"
        err = (
            _try(["truncate", "-s", f"{SIZE_MB}M", str(img)])
            or _try(["mkfs.ext4", "-q", "-F", "-m", "0", str(img)])
            or _try(["mount", "-o", "loop", str(img), str(mnt)])
        )
        if err is not None:
            reasons.append(err)
            print("disk-full case skipped:", "; ".join(reasons))
            pytest.skip("cannot mount a small filesystem here: " + "; ".join(reasons))
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def _random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))


def test_commit_on_full_disk_fails_cleanly_then_succeeds(tmp_path: Path) -> None:
    with small_filesystem(tmp_path) as mnt:
        cache = mnt / "cache"
        root = new_project(tmp_path / "p", PIPELINE)
        (root / ".pivot" / "config.yaml").write_text(f"cache:\n  dir: {cache}\n", encoding="utf-8")
        for i in range(3):
            _random(root / "shards" / f"part-{i}.bin", 1_500_000)
        _random(root / "blob.bin", 2_000_000)
        # Fill the small filesystem so that ~1.3 MB are left: less than either stage's first
        # object (1.5 MB part, 2 MB blob), so both stages fail whatever order they run in.
        filler = mnt / "filler"
        st = os.statvfs(mnt)
        _random(filler, st.f_bavail * st.f_frsize - 1_300_000)
        outputs = {rel: tree(root / rel) for rel in ("shards", "blob.bin")}
        user = inv.snapshot(root, ["shards/", "blob.bin"])

        proc = fails(root, "commit")
        # One line per stage, naming the stage, the file and the cause.
        for stage in ("shards", "blob"):
            line = cause_line(proc, f"{stage}:", "No space left on device")
            assert str(root) in line, line
        cause_line(proc, "blob.bin", "No space left on device")
        # No user data lost: outputs byte-identical (and still writable copies: copy mode).
        assert {rel: tree(root / rel) for rel in outputs} == outputs
        assert os.access(root / "blob.bin", os.W_OK)
        # No lock written, no partial object under a final name, no temp left behind.
        assert not list((root / ".pivot" / "stages").glob("*.lock"))
        check_objects(cache / "files")
        assert temps(cache / "files") == []
        inv.check_i3(user, root, ["shards/", "blob.bin"])

        # I5: free the space, run the same command again.
        filler.unlink()
        done = ok(root, "commit")
        assert done.stdout.splitlines()[0] == "Committed 2 stage(s):", done.stdout
        assert {rel: tree(root / rel) for rel in outputs} == outputs
        assert check_objects(cache / "files") == 5  # 3 parts + manifest + blob
        assert temps(cache / "files") == []
        assert ok(root, "status", "-q").stderr == ""
        # The cache really holds the outputs: delete them and restore.
        shutil.rmtree(root / "shards")
        (root / "blob.bin").unlink()
        ok(root, "checkout")
        assert {rel: tree(root / rel) for rel in outputs} == outputs
        inv.check_i3(user, root, ["shards/", "blob.bin"])
