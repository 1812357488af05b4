"""eil-pipelines: executive reports as code.

The public API is imported lazily, so ``import eil_pipelines`` (and the CLI's
``--help``) does not pay for pandas, matplotlib or DuckDB.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "load_pipelines": "eil_pipelines.spec",
    "load_pipeline": "eil_pipelines.spec",
    "Pipeline": "eil_pipelines.spec",
    "PipelineSpec": "eil_pipelines.spec",
    "make_context": "eil_pipelines.run",
    "run_pipeline": "eil_pipelines.run",
    "RunResult": "eil_pipelines.run",
    "run_once": "eil_pipelines.run.batch",
    "build_executive_report": "eil_pipelines.legacy",
    "chart_sales_trend": "eil_pipelines.legacy",
    "schedule_interval": "eil_pipelines.jobs",
    "schedule_daily": "eil_pipelines.jobs",
    "cancel": "eil_pipelines.jobs",
    "list_jobs": "eil_pipelines.jobs",
    "daily_kpi_summary": "eil_pipelines.jobs",
    "EilError": "eil_pipelines.errors",
    "ConfigError": "eil_pipelines.errors",
    "ConfigErrors": "eil_pipelines.errors",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports("eil_pipelines", _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
