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
    fingerprints: FingerprintCache
    cwd: Path = field(default_factory=Path.cwd)  # where the pipeline was discovered from

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
        try:
            self.fingerprints.save()
        except OSError:
            pass  # state/ is disposable: failing to save it costs time later, never correctness


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []


def load_context(
    cwd: Path | None = None,
    *,
    cache_dir: Path | None = None,
    check_missing: bool = True,
    all_pipelines: bool = False,
) -> Context:
    """find_root -> config -> load_pipeline -> graph -> cache -> fingerprint cache."""
    from pivot.fingerprint import FingerprintCache
    from pivot.graph import PipelineGraph
    from pivot.pipeline import load_pipeline
    from pivot.project import Project, find_root
    from pivot.storage.cache import Cache, clean_stale_temps

    where = Path.cwd() if cwd is None else Path(cwd).resolve()
    project = Project.load(find_root(where), cache_dir)
    if all_pipelines:
        from pivot.pipeline.multi import load_all

        pipeline = load_all(project.root, where)
    else:
        pipeline = load_pipeline(project.root, where)
    graph = PipelineGraph.build(pipeline.stages, project.root, check_missing=check_missing)
    cache = Cache(project.cache_dir, project.state_dir, project.link_modes)
    # A crash between a durable write's temp and its rename leaves a stray temp: remove those
    # of dead processes so that no crash ever needs manual clean-up (spec §7).
    runs = [Path(e.path) for e in _scandir(project.runs_dir) if e.is_dir(follow_symlinks=False)]
    for d in (project.stages_dir, project.state_dir / "index", project.tmp_dir, *runs):
        clean_stale_temps(d)
    fingerprints = FingerprintCache.load(project.state_dir)
    return Context(
        project=project,
        config=project.config,
        pipeline=pipeline,
        graph=graph,
        cache=cache,
        fingerprints=fingerprints,
        cwd=where,
    )
