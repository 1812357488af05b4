"""The TOML pipeline contract: models, loading, environment expansion, paths."""

from .loader import Pipeline, load_pipeline, load_pipelines, project_root_for
from .models import (
    BUILTIN_PARAMS,
    ChartSpec,
    MetricSpec,
    PipelineSpec,
    QuerySpec,
    ReportSpec,
    ScheduleSpec,
    SourceSpec,
)

__all__ = [
    "BUILTIN_PARAMS",
    "ChartSpec",
    "MetricSpec",
    "Pipeline",
    "PipelineSpec",
    "QuerySpec",
    "ReportSpec",
    "ScheduleSpec",
    "SourceSpec",
    "load_pipeline",
    "load_pipelines",
    "project_root_for",
]
