"""Running one pipeline once: queries → metrics and charts → render → write.

Data flows one way through the stages, and nothing is written until every
stage has succeeded, so a failing run never touches an earlier report.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EilError
from ..outputs import ReportFiles, write_report
from ..outputs.report_files import charts_dir_name
from ..spec.loader import Pipeline, display_path
from .context import RunContext, period_word
from .metrics import MetricResult, build_insights, compute_metric

if TYPE_CHECKING:
    import pandas as pd

    from ..sources import Source

log = logging.getLogger("eil_pipelines.run")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, aware, in UTC: the default clock of runs and the scheduler."""
    return datetime.now(UTC)


@dataclass
class StageTimes:
    """Seconds spent in each stage of a run (for benchmarks and the log)."""

    query: float = 0.0
    charts: float = 0.0
    template: float = 0.0
    write: float = 0.0


@dataclass
class RunResult:
    """What one run did."""

    pipeline: str
    """The pipeline's name."""
    scheduled_at: datetime
    """The fire time the run stood for."""
    stamp: str
    """The report's file stamp."""
    status: str
    """``succeeded`` or ``failed`` (the scheduler adds ``timed_out`` and others)."""
    started_at: datetime
    """Wall-clock start (aware, UTC)."""
    finished_at: datetime
    """Wall-clock end (aware, UTC)."""
    duration: float
    """Seconds, from a monotonic clock."""
    files: list[Path] = field(default_factory=list)
    """Every file written."""
    error: str | None = None
    """The user-facing error message of a failed run."""
    metrics: list[MetricResult] = field(default_factory=list)
    """The KPI figures, for digests and messages."""
    stages: StageTimes = field(default_factory=StageTimes)
    """Time spent per stage."""

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.status == "succeeded"


def run_pipeline(
    pipeline: Pipeline,
    ctx: RunContext,
    reports_dir: Path,
    *,
    clock: Clock = utc_now,
    on_source: Callable[[Source], None] | None = None,
) -> RunResult:
    """Run ``pipeline`` once for ``ctx`` and write its reports under ``reports_dir``.

    Never raises for a problem of the pipeline: every :class:`EilError` (and any
    unexpected exception) becomes a failed :class:`RunResult` carrying the
    message.  ``on_source`` receives the open data source, so a supervisor can
    interrupt a query that runs past its timeout.
    """
    started = clock()
    t0 = _time.perf_counter()
    stages = StageTimes()
    files: list[Path] = []
    metrics: list[MetricResult] = []
    status, error = "succeeded", None
    try:
        _data, metrics, rendered = _produce(pipeline, ctx, stages, on_source)
        t = _time.perf_counter()
        files = write_report(reports_dir / pipeline.name, rendered)
        stages.write = _time.perf_counter() - t
    except EilError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # a bug, not bad input: keep the run loop alive and say so
        log.exception("internal error in pipeline %s", pipeline.name)
        status, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
    return RunResult(
        pipeline=pipeline.name,
        scheduled_at=ctx.scheduled_at,
        stamp=ctx.stamp,
        status=status,
        started_at=started,
        finished_at=clock(),
        duration=_time.perf_counter() - t0,
        files=files,
        error=error,
        metrics=metrics,
        stages=stages,
    )


def run_queries(
    pipeline: Pipeline, ctx: RunContext, on_source: Callable[[Source], None] | None = None
) -> dict[str, pd.DataFrame]:
    """Run every query of the pipeline on a connection of its own; results by query name."""
    from ..sources import open_source

    params: dict[str, Any] = {**ctx.params(), **pipeline.spec.params}
    with open_source(pipeline.name, pipeline.spec.source, pipeline.root) as source:
        if on_source is not None:
            on_source(source)
        return {name: source.run(name, sql, params) for name, sql in pipeline.sql.items()}


def _produce(
    pipeline: Pipeline,
    ctx: RunContext,
    stages: StageTimes,
    on_source: Callable[[Source], None] | None,
) -> tuple[dict[str, pd.DataFrame], list[MetricResult], ReportFiles]:
    spec = pipeline.spec
    currency = spec.report.currency
    t = _time.perf_counter()
    data = run_queries(pipeline, ctx, on_source)
    stages.query = _time.perf_counter() - t

    metrics = [compute_metric(m, data[m.query], currency=currency) for m in spec.metrics]
    insights = build_insights(
        metrics, spec.charts, data, period_word(ctx.period_kind), currency=currency
    )

    t = _time.perf_counter()
    files = ReportFiles(stamp=ctx.stamp)
    assets = draw_charts(
        pipeline,
        data,
        files,
        want_png="md" in spec.report.formats,
        want_svg="html" in spec.report.formats,
    )
    stages.charts = _time.perf_counter() - t

    t = _time.perf_counter()
    from ..render import load_template, render_report

    template_path = pipeline.template_path
    template = load_template(
        template_path, display_name=display_path(template_path) if template_path else None
    )
    context = {
        "pipeline": {"name": pipeline.name, "title": spec.title, "description": spec.description},
        "run": ctx.template_run(),
        "params": dict(spec.params),
        "data": data,
        "charts": assets,
        "metrics": metrics,
        "insights": insights,
        "sql": dict(pipeline.sql),
    }
    for fmt in spec.report.formats:
        files.documents[fmt] = render_report(
            template, context, fmt, max_rows=spec.report.max_rows, currency=currency
        )
    stages.template = _time.perf_counter() - t
    return data, metrics, files


def draw_charts(
    pipeline: Pipeline,
    data: dict[str, pd.DataFrame],
    files: ReportFiles,
    *,
    want_png: bool,
    want_svg: bool,
) -> dict[str, Any]:
    """Draw each chart once, render the formats the report needs, and return template assets."""
    if not pipeline.spec.charts:
        return {}
    from ..charts import draw_chart, render_chart
    from ..charts.style import words
    from ..errors import ChartError
    from ..render import ChartAsset

    assets: dict[str, Any] = {}
    for chart in pipeline.spec.charts:
        df = data[chart.query]
        try:
            figure = draw_chart(chart, df, currency=pipeline.spec.report.currency)
            summary = figure.summary  # read before rendering frees the figure
            svg = (
                render_chart(figure, "svg", close=not want_png).decode("utf-8") if want_svg else ""
            )
            if want_png:
                files.images[f"{chart.name}.png"] = render_chart(figure, "png")
        except ChartError as exc:
            raise ChartError(chart.name, exc.detail, pipeline=pipeline.name) from None
        assets[chart.name] = ChartAsset(
            name=chart.name,
            title=chart.title or words(chart.name),
            alt=summary,
            png_path=f"{charts_dir_name(files.stamp)}/{chart.name}.png",
            svg=svg,
        )
    return assets
