"""Remotes: a thin policy layer over the Rust transfer core (`pivot._native.Remote`).

`open_remote(project, name)` resolves the settings and credentials; the returned `Remote`
pushes and fetches cache objects (directories with their manifests and files) and run-cache
entries. Layout, publication order and verification: docs/remote.md.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot import _native
from pivot.exceptions import RemoteAuthError
from pivot.storage.remote_config import RemoteSettings, pick

if TYPE_CHECKING:
    from pivot.project import Project

# (hash, is_dir)
Item = tuple[str, bool]


@dataclass
class PushReport:
    uploaded: int = 0
    bytes: int = 0
    skipped: int = 0
    missing: list[str] = field(default_factory=list)  # absent from the local cache
    incomplete: list[str] = field(default_factory=list)  # directories not published


@dataclass
class Problem:
    hash: str
    dir: str | None  # manifest hash, for a file of a directory
    path: str | None  # path inside that directory


@dataclass
class FetchReport:
    fetched: int = 0
    bytes: int = 0
    skipped: int = 0
    missing: list[Problem] = field(default_factory=list)
    corrupt: list[Problem] = field(default_factory=list)


def progress() -> tuple[int, int, int, int]:
    """(objects done, bytes done, skipped, total objects) of the transfer in progress."""
    return _native.remote_progress()


def _aws_files() -> tuple[Path, Path]:
    home = Path.home()
    creds = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or str(home / ".aws" / "credentials")
    conf = os.environ.get("AWS_CONFIG_FILE") or str(home / ".aws" / "config")
    return Path(creds), Path(conf)


def _read_ini(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError):
        pass
    return parser


def _profile(s: RemoteSettings, profile: str) -> dict[str, str]:
    """Static keys (and region) of an AWS profile, from the shared credentials/config files."""
    creds_file, conf_file = _aws_files()
    found: dict[str, str] = {}
    conf = _read_ini(conf_file)
    section = profile if profile == "default" else f"profile {profile}"
    for src, name in ((conf, section), (_read_ini(creds_file), profile)):
        if src.has_section(name):
            found.update({k: v for k, v in src.items(name) if v})
    if "aws_access_key_id" not in found or "aws_secret_access_key" not in found:
        raise RemoteAuthError(
            f"remote {s.name} ({s.url}): AWS profile '{profile}' has no access keys "
            f"(looked in {creds_file} and {conf_file})"
        )
    return found


def _credentials(s: RemoteSettings) -> tuple[dict[str, Any], str]:
    """Keyword arguments for `_native.Remote` and the description of the sources tried."""
    if s.access_key_id and s.secret_access_key:
        kw = {
            "access_key_id": s.access_key_id,
            "secret_access_key": s.secret_access_key,
            "session_token": s.session_token,
        }
        return kw, "access keys from .pivot/config.local"
    profile = s.profile
    if profile is None and not os.environ.get("AWS_ACCESS_KEY_ID"):
        profile = os.environ.get("AWS_PROFILE")
    if profile:
        p = _profile(s, profile)
        kw = {
            "access_key_id": p["aws_access_key_id"],
            "secret_access_key": p["aws_secret_access_key"],
            "session_token": p.get("aws_session_token"),
        }
        if s.region is None and p.get("region"):
            kw["region"] = p["region"]
        return kw, f"profile '{profile}' ({_aws_files()[0]})"
    tried = ["environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"]
    if os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        tried.append("web identity (AWS_WEB_IDENTITY_TOKEN_FILE)")
    if os.environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        tried.append("container credentials")
    tried.append("instance metadata")
    return {}, ", ".join(tried)


def default_jobs(s: RemoteSettings) -> int:
    cpus = os.cpu_count() or 1
    # Object stores are latency-bound: many requests in flight; a directory is disk-bound.
    return min(64, 4 * cpus) if s.is_s3 else max(2, cpus)


class Remote:
    """One remote, opened for one command (its index set is read once, on first use)."""

    def __init__(self, settings: RemoteSettings, project: Project, jobs: int | None = None):
        self.settings = settings
        self.name = settings.name
        self.project = project
        url = settings.url
        if not settings.is_s3:
            raw = url[len("file://") :] if url.startswith("file://") else url
            path = Path(os.path.expanduser(raw))
            url = str(path if path.is_absolute() else project.root / path)
        self.url = url
        kw, desc = _credentials(settings) if settings.is_s3 else ({}, "")
        kw.setdefault("region", settings.region)
        key = _native.blake3_bytes(url.encode("utf-8"))[:16]
        self._native = _native.Remote(
            settings.name,
            url,
            endpoint_url=settings.endpoint_url,
            jobs=jobs or settings.jobs or default_jobs(settings),
            cred_desc=desc,
            max_retries=settings.retries,
            timeout_s=settings.timeout,
            state_dir=str(project.state_dir / "remotes" / key),
            **kw,
        )

    def push(self, items: Iterable[Item], cache_dir: Path | None = None) -> PushReport:
        """Publish objects: files (packs, then their indexes), then directory manifests.
        `cache_dir`: another cache than the project's (the dask executor's throwaway one)."""
        r = self._native.push(str(cache_dir or self.project.cache_dir), _unique(items))
        return PushReport(**r)

    def fetch(self, items: Iterable[Item], cache_dir: Path | None = None) -> FetchReport:
        """Bring objects into the local cache (or `cache_dir`); every byte is verified before
        it is stored. (The core first removes the temps of a fetch killed earlier, as every
        cache write does.)"""
        # The project's stat index learns every object fetched into the project's cache, so
        # the checkout after it reads none; another cache (the dask executor's) is not indexed.
        state_dir = str(self.project.state_dir) if cache_dir is None else None
        r = self._native.fetch(str(cache_dir or self.project.cache_dir), _unique(items), state_dir)
        return FetchReport(
            fetched=r["fetched"],
            bytes=r["bytes"],
            skipped=r["skipped"],
            missing=[Problem(**p) for p in r["missing"]],
            corrupt=[Problem(**p) for p in r["corrupt"]],
        )

    def contains_many(self, items: Sequence[tuple[str, bool, int | None]]) -> list[bool]:
        """Whether the remote has each (hash, is_dir, size) item (a directory: every file)."""
        return self._native.contains(str(self.project.cache_dir), list(items))

    def push_run_entries(self, keys: Iterable[str]) -> tuple[int, int, list[str]]:
        """(uploaded, already there, absent locally) for run-cache entries."""
        return self._native.push_runs(str(self.project.runs_dir), sorted(set(keys)))

    def fetch_run_entries(self, keys: Sequence[str]) -> list[bool]:
        """Download run-cache entries; per key, whether it is now in the local run cache."""
        return self._native.fetch_runs(str(self.project.runs_dir), list(keys))

    def bad_indexes(self) -> list[str]:
        return self._native.bad_indexes()

    def record_roots(
        self, clone: str, pushed: Iterable[Item], roots: Iterable[Item], complete: bool
    ) -> str | None:
        """Write this push's roots record; the holder of a live gc lock, if any."""
        return self._native.record_roots(clone, _unique(pushed), _unique(roots), complete)

    def gc(self, roots: Iterable[Item], **kw: Any) -> dict[str, Any]:
        """Collect the remote (docs/remote.md "Garbage collection")."""
        return self._native.gc(str(self.project.cache_dir), _unique(roots), **kw)


def _unique(items: Iterable[Item]) -> list[Item]:
    return list(dict.fromkeys((h, bool(d)) for h, d in items))


def open_remote(project: Project, name: str | None = None, jobs: int | None = None) -> Remote:
    """The remote `name` (default: `core.remote`, or the only one configured)."""
    return Remote(pick(project.pivot_dir, name), project, jobs)
