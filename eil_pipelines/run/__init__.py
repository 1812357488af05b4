"""Running pipelines: the run context, one run, metrics and insights, batches."""

from .context import RunContext, make_context
from .pipeline import RunResult, run_pipeline

__all__ = ["RunContext", "RunResult", "make_context", "run_pipeline"]
