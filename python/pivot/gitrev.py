"""Reading files of other git revisions without a checkout (git plumbing only).

One long-lived `git cat-file --batch` process serves every blob read of a command (a lock per
stage, metric files, `.pvt` files...), so reading N files costs one process start, not N.
Revisions are resolved with `git rev-parse` and directories listed with `git ls-tree`. Paths
given to this module are project-relative; the repository may hold the project in a
subdirectory (`git rev-parse --show-prefix`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import IO

from pivot.exceptions import RevisionError


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    # No pager, no prompts, no translated messages: this module parses git's output.
    env.update({"GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    return env


class GitRepo:
    """The git repository holding a pivot project; `close()` (or `with`) ends the batch reader."""

    def __init__(self, project_root: Path) -> None:
        self.project_root = Path(project_root)
        out = self._run("rev-parse", "--show-toplevel", "--show-prefix", what="git repository")
        lines = out.split("\n")
        self.toplevel = Path(lines[0])
        self.prefix = lines[1] if len(lines) > 1 else ""  # "" or "sub/dir/" (trailing slash)
        self._batch: subprocess.Popen[bytes] | None = None
        self._resolved: dict[str, str] = {}

    # -- plumbing -------------------------------------------------------------------------
    def _run(self, *args: str, what: str) -> str:
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=self.project_root,
                env=_git_env(),
                capture_output=True,
                check=False,
            )
        except FileNotFoundError:
            raise RevisionError("git is not installed; reading revisions needs git") from None
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            detail = err[-1] if err else f"exit {proc.returncode}"
            if "not a git repository" in detail:
                raise RevisionError(f"{self.project_root}: not inside a git repository")
            raise RevisionError(f"git {args[0]} failed for {what}: {detail}")
        return proc.stdout.decode("utf-8", errors="surrogateescape")

    def _reader(self) -> subprocess.Popen[bytes]:
        if self._batch is None or self._batch.poll() is not None:
            self._batch = subprocess.Popen(
                ["git", "cat-file", "--batch"],
                cwd=self.project_root,
                env=_git_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        return self._batch

    def close(self) -> None:
        if self._batch is not None:
            proc, self._batch = self._batch, None
            assert proc.stdin is not None
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- API --------------------------------------------------------------------------------
    def resolve(self, rev: str) -> str:
        """The commit id `rev` names; RevisionError "unknown revision" otherwise."""
        if rev in self._resolved:
            return self._resolved[rev]
        if not rev or rev.startswith("-") or "\n" in rev or "\0" in rev:
            raise RevisionError(f"unknown revision '{rev}'")
        try:
            out = self._run(
                "rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}", what=rev
            )
        except RevisionError:
            raise RevisionError(f"unknown revision '{rev}'") from None
        sha = out.strip()
        if not sha:
            raise RevisionError(f"unknown revision '{rev}'")
        self._resolved[rev] = sha
        return sha

    def is_revision(self, rev: str) -> bool:
        try:
            self.resolve(rev)
        except RevisionError:
            return False
        return True

    def read(self, commit: str, rel: str) -> bytes | None:
        """The blob at project-relative `rel` in `commit`, or None when there is none there."""
        if "\n" in rel:
            return None  # cannot be named in the batch protocol; pivot paths never hold one
        proc = self._reader()
        stdin: IO[bytes] | None = proc.stdin
        stdout: IO[bytes] | None = proc.stdout
        assert stdin is not None and stdout is not None
        spec = f"{commit}:{self.prefix}{rel}".encode("utf-8", errors="surrogateescape")
        try:
            stdin.write(spec + b"\n")
            stdin.flush()
        except BrokenPipeError:
            raise RevisionError("git cat-file stopped unexpectedly") from None
        header = stdout.readline()
        if not header:
            raise RevisionError("git cat-file stopped unexpectedly")
        parts = header.rstrip(b"\n").split(b" ")
        if len(parts) != 3:  # "<spec> missing" / "<spec> ambiguous"
            return None
        kind, size = parts[1], int(parts[2])
        data = stdout.read(size)
        stdout.read(1)  # the newline after the content
        return data if kind == b"blob" else None

    def ref_commits(self) -> dict[str, str]:
        """Commits of HEAD, every local branch, tag and remote-tracking branch: ref name ->
        commit id (annotated tags peeled; refs naming no commit skipped)."""
        fmt = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)"
        out = self._run(
            "for-each-ref",
            f"--format={fmt}",
            "refs/heads",
            "refs/tags",
            "refs/remotes",
            what="refs",
        )
        found: dict[str, str] = {}
        for line in out.splitlines():
            name, kind, sha, peeled_kind, peeled = (line.split("\0") + [""] * 5)[:5]
            if kind == "commit":
                found[name] = sha
            elif peeled_kind == "commit":
                found[name] = peeled
        try:
            found["HEAD"] = self.resolve("HEAD")
        except RevisionError:
            pass  # a repository without commits
        return found

    def all_commits(self) -> list[str]:
        """Every commit reachable from any ref or HEAD (`git rev-list --all`)."""
        out = self._run("rev-list", "--all", what="all commits")
        commits = [c for c in out.split() if c]
        try:
            head = self.resolve("HEAD")
        except RevisionError:
            return commits
        return commits if head in commits else [*commits, head]

    def list_files(self, commit: str, rel_dir: str = "") -> list[str]:
        """Project-relative paths of every file under `rel_dir` in `commit` (recursive)."""
        where = f"{self.prefix}{rel_dir}".rstrip("/")
        args = ["ls-tree", "-r", "-z", "--name-only", "--full-tree", commit]
        if where:
            args += ["--", where]
        out = self._run(*args, what=f"{commit[:12]}:{rel_dir or '.'}")
        names = [n for n in out.split("\0") if n]
        cut = len(self.prefix)
        return [n[cut:] for n in names if n.startswith(self.prefix)]
