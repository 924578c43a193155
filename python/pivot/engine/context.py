"""Everything a command needs about one project, loaded once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pivot.config import Config
    from pivot.fingerprint import FingerprintCache
    from pivot.graph import PipelineGraph
    from pivot.pipeline import Pipeline
    from pivot.project import Project
    from pivot.storage.cache import Cache


@dataclass
class Context:
    project: Project
    config: Config
    pipeline: Pipeline
    graph: PipelineGraph
    cache: Cache
    cwd: Path = field(default_factory=Path.cwd)  # where the pipeline was discovered from
    _fingerprints: FingerprintCache | None = field(default=None, repr=False)

    @property
    def fingerprints(self) -> FingerprintCache:
        """The fingerprint cache, read on first use (`list`, `dag`, `checkout` never need it)."""
        if self._fingerprints is None:
            from pivot.fingerprint import FingerprintCache

            self._fingerprints = FingerprintCache.load(self.project.state_dir)
        return self._fingerprints

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def runs_dir(self) -> Path:
        return self.project.runs_dir

    @property
    def locks_dir(self) -> Path:
        return self.project.locks_dir

    def abspath(self, rel: str) -> Path:
        """Absolute path of a project-relative path (a directory output's trailing '/' dropped)."""
        return self.project.root / rel.rstrip("/")

    def save(self) -> None:
        """Persist disposable state computed during the command (the fingerprint cache)."""
        if self._fingerprints is None:
            return
        try:
            self._fingerprints.save()
        except OSError:
            pass  # state/ is disposable: failing to save it costs time later, never correctness


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []


def _has_pipeline(root: Path, where: Path) -> bool:
    from pivot.pipeline.discovery import has_pipeline_file

    return has_pipeline_file(root, where)


def load_context(
    cwd: Path | None = None,
    *,
    cache_dir: Path | None = None,
    check_missing: bool = True,
    all_pipelines: bool = False,
    pipeline_optional: bool = False,
) -> Context:
    """The one loader of a project, for every command and library caller: find_root -> config
    -> load_pipeline -> graph -> cache. `cache_dir` (e.g. `--cache-dir`) beats the config;
    `check_missing=False` accepts dependencies that are neither produced nor on disk;
    `pipeline_optional` gives an empty pipeline to a project that has no pipeline file yet
    (`pivot track` of data before any stage exists)."""
    from pivot.graph import PipelineGraph
    from pivot.pipeline import load_pipeline
    from pivot.project import open_project
    from pivot.storage.cache import Cache
    from pivot.storage.files import clean_stale_temps

    where = Path.cwd() if cwd is None else Path(cwd).resolve()
    project = open_project(where, cache_dir)
    if all_pipelines:
        from pivot.pipeline.multi import load_all

        pipeline = load_all(project.root, where)
    elif pipeline_optional and not _has_pipeline(project.root, where):
        from pivot.pipeline import Pipeline

        pipeline = Pipeline(project.root.name or "pivot", base_dir=project.root)
    else:
        pipeline = load_pipeline(project.root, where)
    graph = PipelineGraph.build(pipeline.stages, project.root, check_missing=check_missing)
    cache = Cache(project.cache_dir, project.state_dir, project.config.link_modes)
    # A crash between a durable write's temp and its rename leaves a stray temp: remove those
    # of dead processes so that no crash ever needs manual clean-up (docs/reliability.md).
    runs = [Path(e.path) for e in _scandir(project.runs_dir) if e.is_dir(follow_symlinks=False)]
    state = project.state_dir  # fingerprint and params caches, and the stat index below it
    for d in (project.stages_dir, state, state / "index", project.tmp_dir, *runs):
        clean_stale_temps(d)
    return Context(
        project=project,
        config=project.config,
        pipeline=pipeline,
        graph=graph,
        cache=cache,
        cwd=where,
    )
