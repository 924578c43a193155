"""Reading other revisions with git plumbing: a project in a subdirectory of its repository."""

from __future__ import annotations

import pathlib

import pytest
from _results_project import git

from pivot.exceptions import LockFileError, RevisionError
from pivot.gitrev import GitRepo
from pivot.project import Project, init
from pivot.results.revs import Revisions


def _repo(tmp_path: pathlib.Path) -> pathlib.Path:
    top = tmp_path / "top"
    sub = top / "proj"
    sub.mkdir(parents=True)
    git(top, "init", "-q")
    init(sub)
    lock = (
        '{\n  "schema_version": 1,\n  "stage": "s",\n  "code": {},\n  "params": {\n'
        '    "lr": 0.5\n  },\n  "deps": {},\n  "outs": {}\n}\n'
    )
    (sub / ".pivot/stages/s.lock").write_text(lock)
    (sub / "a b.txt").write_bytes(b"one\n")
    (sub / "data.pvt").write_text(
        '{"hash":"' + "ab" * 32 + '","is_dir":true,"nfiles":2,"path":"data","size":3}\n'
    )
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "c1")
    (sub / "a b.txt").write_bytes(b"two\n" * 10000)
    (sub / ".pivot/stages/s.lock").write_text(lock.replace('"stage": "s"', '"stage": 5'))
    git(top, "commit", "-q", "-am", "c2")
    return sub


def test_blobs_listing_and_resolution_in_a_subdirectory(tmp_path: pathlib.Path) -> None:
    sub = _repo(tmp_path)
    with GitRepo(sub) as repo:
        assert repo.prefix == "proj/"
        c1, c2 = repo.resolve("HEAD~1"), repo.resolve("HEAD")
        assert len(c1) == 40 and c1 != c2
        # one batch process serves many reads, large and small, present and absent
        assert repo.read(c1, "a b.txt") == b"one\n"
        assert repo.read(c2, "a b.txt") == b"two\n" * 10000
        assert repo.read(c1, "missing.txt") is None
        assert repo.read(c1, ".pivot") is None  # a tree, not a file
        assert repo.read(c1, "a b.txt") == b"one\n"
        assert repo.list_files(c1, ".pivot/stages") == [".pivot/stages/s.lock"]
        assert "data.pvt" in repo.list_files(c1)
        with pytest.raises(RevisionError, match="unknown revision 'nope'"):
            repo.resolve("nope")
        assert not repo.is_revision("--help")


def test_locks_and_tracked_paths_of_a_revision(tmp_path: pathlib.Path) -> None:
    sub = _repo(tmp_path)
    with Revisions(Project.load(sub)) as revs:
        old = revs.rev("HEAD~1")
        assert revs.locks(old)["s"]["params"] == {"lr": 0.5}
        rec = revs.recorded(old)["data"]
        assert (rec.owner, rec.is_dir, rec.nfiles) == ("data.pvt", True, 2)
        with pytest.raises(RevisionError, match=r"^HEAD~1: no lock for stage 'x'"):
            revs.lock(old, "x")
        # the lock decoder is the one `.pivot/stages/*.lock` goes through: same checks
        with pytest.raises(LockFileError, match=r"^HEAD:\.pivot/stages/s\.lock: stage"):
            revs.locks(revs.rev("HEAD"))


def test_not_a_git_repository(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    with pytest.raises(RevisionError, match="not inside a git repository"):
        GitRepo(root)
