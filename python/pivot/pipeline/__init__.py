"""The pipeline model: Pipeline, StageInfo/DepSpec/OutSpec, discovery and stage invocation."""

from __future__ import annotations

from pivot.pipeline.core import Pipeline
from pivot.pipeline.discovery import find_pipeline_file, load_pipeline
from pivot.pipeline.invoke import run_stage
from pivot.pipeline.stage import DepSpec, OutSpec, StageInfo

__all__ = [
    "DepSpec",
    "OutSpec",
    "Pipeline",
    "StageInfo",
    "find_pipeline_file",
    "load_pipeline",
    "run_stage",
]
