"""Running one pipeline once: queries → metrics and charts → render → write.

Data flows one way through the stages, and nothing is written until every
stage has succeeded, so a failing run never touches an earlier report.  The
write stage puts the reports, chart images, data exports and the run
manifest in place atomically, applies retention (``keep``), records the
run's status and rebuilds the report site; a failed run records its status
and rebuilds the site too, so the failure shows there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time as _time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ChartError, CouldNotRun, EilError, OutputError, RenderError
from ..formatting import infer_column_format
from ..outputs import ReportFiles, write_report
from ..outputs.exports import (
    csv_bytes,
    data_dir_name,
    export_results,
    export_unavailable_reason,
    result_sha256,
)
from ..outputs.manifest import build_manifest, query_record, sha256_file
from ..outputs.report_files import charts_dir_name
from ..outputs.retention import apply_retention
from ..outputs.site import update_site, write_status
from ..render import ChartAsset, TemplateSource, load_template, render_report
from ..render.filters import COLUMNS_ATTR, EXPORT_ATTR
from ..render.pdf import PdfUnavailableError, html_to_pdf, pdf_problem
from ..sources import open_source
from ..spec.loader import Pipeline, display_path
from .context import RunContext, period_word, pipeline_trigger
from .metrics import MetricResult, build_insights, compute_metric

if TYPE_CHECKING:
    import pandas as pd

    from ..charts.processes import ChartProcesses
    from ..charts.work import ChartJob, RenderedChart
    from ..outputs.store import ObjectStore
    from ..sources.guard import QueryGuard
    from ..spec.models import ChartSpec

log = logging.getLogger("eil_pipelines.run")

#: How the error of a run that lost its claim to another runner begins.
FENCED = "not published"

Clock = Callable[[], datetime]


class ChartRenderer(Protocol):
    """What draws a run's charts: chart processes, or a cache of drawn charts (``dev``)."""

    def render(self, jobs: Sequence[ChartJob]) -> list[RenderedChart]:
        """The images of each job, in order."""
        ...


def utc_now() -> datetime:
    """The wall clock, aware, in UTC: the default clock of runs and the scheduler."""
    return datetime.now(UTC)


@dataclass
class StageTimes:
    """Seconds spent in each stage of a run (for benchmarks and the log)."""

    query: float = 0.0
    """Running the queries."""
    charts: float = 0.0
    """Drawing the charts and rendering them as PNG and SVG."""
    template: float = 0.0
    """Rendering the template into Markdown and HTML."""
    pdf: float = 0.0
    """Laying out the PDF (only with the ``pdf`` format)."""
    write: float = 0.0
    """Exports, manifest, writing the files, retention, status and the site."""


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
    run_id: str = ""
    """The run's stable id (see :attr:`RunContext.run_id`)."""
    documents: dict[str, Path] = field(default_factory=dict)
    """The dated report of each format written: ``{"md": …, "html": …, "pdf": …}``."""
    exports: list[Path] = field(default_factory=list)
    """The data exports written (``<stamp>_data/<query>.<format>``)."""
    manifest: Path | None = None
    """The run manifest ``<stamp>.json``, when the run succeeded."""
    deleted: list[Path] = field(default_factory=list)
    """Files of older reports that retention (``keep``) deleted after this run."""
    row_counts: dict[str, int] = field(default_factory=dict)
    """Rows each query returned (for ``when = "not_empty"`` deliveries)."""
    alert_data: Any = field(default=None, repr=False)
    could_not_run: bool = False
    """The machine refused the run (a full disk, a read-only folder): not the pipeline's
    fault, and ``--once`` exits 3 for it (docs/cli.md)."""
    """The ``[alert]`` query's result (a DataFrame), for the alert message; only
    that query's rows are kept past the run, so big results are not held."""

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.status == "succeeded"

    def summary(self) -> dict[str, Any]:
        """The headline figures the run ledger keeps with the run (for digests)."""
        return {
            "metrics": [
                {
                    "label": m.label,
                    "text": m.text,
                    "change_text": m.change_text,
                    "sentiment": m.sentiment,
                }
                for m in self.metrics
            ]
        }


def run_pipeline(
    pipeline: Pipeline,
    ctx: RunContext,
    reports_dir: Path,
    *,
    clock: Clock = utc_now,
    guard: QueryGuard | None = None,
    chart_processes: ChartProcesses | None = None,
    fence: Callable[[], bool] | None = None,
    site_lock: Callable[[], AbstractContextManager[Any]] | None = None,
    store: Callable[[], ObjectStore | None] | None = None,
) -> RunResult:
    """Run ``pipeline`` once for ``ctx`` and write its reports under ``reports_dir``.

    ``fence`` (a shared ledger's fencing check) is asked just before the files
    go into place: when it says the run is no longer this process's (a runner
    that came back after another took its run over), nothing is published and
    the run fails.  ``site_lock`` is held while the files go into place and
    while the site index is rebuilt, so runners on several machines never
    interleave their writes and ``latest.*`` only moves forward.  ``store`` gives
    the object store the files are then published to (``None``: the folder only).

    Never raises for a problem of the pipeline: every :class:`EilError` (and any
    unexpected exception) becomes a failed :class:`RunResult` carrying the
    message.  ``guard`` (a :class:`~eil_pipelines.sources.guard.QueryGuard`) is
    passed to every query, so a supervisor can stop a run past its timeout.  Charts are drawn in
    ``chart_processes`` when given (side by side, the same bytes), else in
    this thread.
    """
    started = clock()
    t0 = _time.perf_counter()
    stages = StageTimes()
    metrics: list[MetricResult] = []
    written = _Written()
    status, error = "succeeded", None
    row_counts: dict[str, int] = {}
    alert_data = None
    could_not_run = False
    try:
        pipeline_sha256 = _pipeline_file_hash(pipeline)
        produced = _produce(pipeline, ctx, stages, guard, chart_processes)
        metrics = produced.metrics
        row_counts = {name: len(frame) for name, frame in produced.data.items()}
        if pipeline.spec.alert is not None:
            alert_data = produced.data.get(pipeline.spec.alert.query)
        t = _time.perf_counter()
        written = _write(
            pipeline,
            ctx,
            reports_dir,
            produced,
            pipeline_sha256,
            started,
            t0,
            clock,
            stages,
            fence,
            site_lock,
            store() if store is not None else None,
        )
        stages.write = _time.perf_counter() - t
    except EilError as exc:
        status, error = "failed", str(exc)
        could_not_run = isinstance(exc, CouldNotRun)
    except Exception as exc:  # a bug, not bad input: keep the run loop alive and say so
        log.exception("internal error in pipeline %s", pipeline.name)
        status, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
    t = _time.perf_counter()
    finished = clock()
    if not isinstance(error, str) or not error.startswith(FENCED):
        # A fenced-out run publishes nothing: the status is the newer run's to write.
        publish_status(
            pipeline,
            ctx,
            reports_dir,
            status,
            error,
            finished,
            touched=_stamps_of(written.deleted),
            site_lock=site_lock,
        )
    stages.write += _time.perf_counter() - t
    return RunResult(
        pipeline=pipeline.name,
        scheduled_at=ctx.scheduled_at,
        stamp=ctx.stamp,
        status=status,
        started_at=started,
        finished_at=finished,
        duration=_time.perf_counter() - t0,
        files=written.files,
        error=error,
        metrics=metrics,
        stages=stages,
        run_id=ctx.run_id,
        documents=written.documents,
        exports=written.exports,
        manifest=written.manifest,
        deleted=written.deleted,
        row_counts=row_counts,
        alert_data=alert_data,
        could_not_run=could_not_run,
    )


@dataclass
class Produced:
    """What the stages before writing hand to the write stage."""

    data: dict[str, pd.DataFrame]
    metrics: list[MetricResult]
    files: ReportFiles
    template: TemplateSource


@dataclass
class _Written:
    files: list[Path] = field(default_factory=list)
    documents: dict[str, Path] = field(default_factory=dict)
    exports: list[Path] = field(default_factory=list)
    manifest: Path | None = None
    deleted: list[Path] = field(default_factory=list)


def schedule_words(pipeline: Pipeline) -> str:
    """The pipeline's schedule in words (``"every day at 07:00 Europe/Berlin"``)."""
    trigger = pipeline_trigger(pipeline)
    return trigger.describe() if trigger is not None else "on demand only"


def _pipeline_file_hash(pipeline: Pipeline) -> str | None:
    # Read at the start of the run: the definitions the run started from.

    return sha256_file(pipeline.file)


def _write(
    pipeline: Pipeline,
    ctx: RunContext,
    reports_dir: Path,
    produced: Produced,
    pipeline_sha256: str | None,
    started: datetime,
    t0: float,
    clock: Clock,
    stages: StageTimes,
    fence: Callable[[], bool] | None = None,
    site_lock: Callable[[], AbstractContextManager[Any]] | None = None,
    store: ObjectStore | None = None,
) -> _Written:
    """The write stage: exports and manifest, the files in place, then retention."""

    spec = pipeline.spec
    files = produced.files
    csv_cache = {name: csv_bytes(df) for name, df in produced.data.items()}
    if spec.report.exports:
        files.data = export_results(
            pipeline.name,
            produced.data,
            spec.report.exports,
            scheduled_at=ctx.scheduled_at,
            zone=ctx.zone,
            csv_cache=csv_cache,
        )
    queries = {}
    for name, df in produced.data.items():
        query = spec.queries[name]
        queries[name] = query_record(
            pipeline.sql[name],
            df,
            result_sha256=result_sha256(df, csv_cache[name]),
            file=query.file,
        )
    files.manifest = build_manifest(
        pipeline=pipeline,
        run={
            "run_id": ctx.run_id,
            "attempt": ctx.attempt,
            "stamp": ctx.stamp,
            "scheduled_at": ctx.scheduled_at,
            "period": {
                "kind": ctx.period_kind,
                "start": ctx.period_start,
                "end": ctx.period_end,
                "prev_start": ctx.prev_period_start,
                "prev_end": ctx.prev_period_end,
            },
        },
        schedule=schedule_words(pipeline),
        timezone=ctx.zone.key,
        queries=queries,
        template_name=_template_name(pipeline, produced.template),
        template_text=produced.template.text,
        pipeline_file_sha256=pipeline_sha256,
        metrics=produced.metrics,
        formats=spec.report.formats,
        exports=spec.report.exports,
        timing={
            "started_at": started,
            # The end of rendering, just before the files go into place.
            "finished_at": clock(),
            "duration_s": _time.perf_counter() - t0,
            "stages_s": {k: v for k, v in dataclasses.asdict(stages).items() if k != "write"},
        },
        reports_dir=reports_dir,
    )
    pipeline_dir = reports_dir / pipeline.name
    # Under the shared lock: "is this stamp the newest?" and the write of latest.* are
    # one step across runners, so latest.* only moves forward.  The fence is asked
    # under it too: a runner stopped between the check and the write would
    # otherwise publish over the run that took its place.
    with site_lock() if site_lock is not None else contextlib.nullcontext():
        if fence is not None and not fence():
            raise EilError(
                f"{FENCED}: another runner took this run over (its lease expired); "
                "its report stands and this one is not published"
            )
        paths = write_report(pipeline_dir, files)
        if store is not None:
            publish_report(store, pipeline.name, ctx, pipeline_dir, paths)
    written = _Written(files=paths)
    for path in paths:
        if path.parent == pipeline_dir and path.stem == ctx.stamp:
            if path.suffix == ".json":
                written.manifest = path
            else:
                written.documents[path.suffix.lstrip(".")] = path
        elif path.parent.name == files.data_dir_name:
            written.exports.append(path)
    if spec.report.keep is not None:
        try:
            written.deleted = apply_retention(pipeline_dir, spec.report.keep, protect=ctx.stamp)
        except OSError as exc:  # the report is written; old files stay for the next run
            log.warning("retention for %s failed: %s", pipeline.name, exc)
        if store is not None:
            try:
                store.apply_retention(pipeline.name, spec.report.keep, protect=ctx.stamp)
            except EilError as exc:  # published; the old objects go at the next run
                log.warning("retention for %s in %s failed: %s", pipeline.name, store.url, exc)
    return written


def publish_report(
    store: ObjectStore, name: str, ctx: RunContext, pipeline_dir: Path, paths: list[Path]
) -> None:
    """Publish the report a run just wrote (``paths``) to the object store, its
    pointer moved when it is the newest.  Raises :class:`StoreError`: the run then
    fails, and is retried, as for a full disk."""
    files = {}
    for path in paths:
        relative = path.relative_to(pipeline_dir).as_posix()
        if not relative.startswith("latest."):
            files[relative] = path.read_bytes()
    run = {
        "run_id": ctx.run_id,
        "attempt": ctx.attempt,
        "scheduled_at": ctx.scheduled_at.isoformat(),
    }
    store.publish(name, ctx.stamp, files, run=run)


def _template_name(pipeline: Pipeline, template: TemplateSource) -> str:
    """A custom template relative to the project root (as the pipeline names it), else
    the built-in template's name: the same on every machine, unlike an absolute path."""
    if template.path is None:
        return template.name
    try:
        return template.path.resolve().relative_to(pipeline.root.resolve()).as_posix()
    except ValueError:
        return str(template.path)


def _stamps_of(deleted: list[Path]) -> set[str]:
    """The stamps whose files retention deleted (``<stamp>.md``, ``<stamp>_data/x.csv``)."""
    stamps = set()
    for path in deleted:
        if path.parent.name.endswith(("_charts", "_data")):
            stamps.add(path.parent.name.rpartition("_")[0])
        else:
            stamps.add(path.name.rpartition(".")[0])
    return stamps


def publish_status(
    pipeline: Pipeline,
    ctx: RunContext,
    reports_dir: Path,
    status: str,
    error: str | None,
    finished: datetime,
    *,
    touched: Iterable[str] = (),
    site_lock: Callable[[], AbstractContextManager[Any]] | None = None,
) -> None:
    """Record the run's status and update the site; never fails the run.

    The site looks again at the run's own stamp and at ``touched`` (the
    stamps retention deleted), and at nothing else of the pipeline's folder.

    ``site_lock`` (a shared ledger's advisory lock) is held around the writes.

    :func:`run_pipeline` calls it as a run ends; a supervisor calls it again
    when it judges the run otherwise (the scheduler's ``timed_out``).
    A failed run writes only here (``reports/.eil/status/``), never into the
    pipeline's report folder, so its earlier reports stay exactly as they were.
    """
    try:
        with site_lock() if site_lock is not None else contextlib.nullcontext():
            _write_status_and_site(pipeline, ctx, reports_dir, status, error, finished, touched)
    except (OSError, EilError) as exc:
        # The report itself is written (or the run failed anyway): a stale site
        # is logged, not turned into a failed run.
        log.warning("could not update the report site in %s: %s", reports_dir, exc)


def _write_status_and_site(
    pipeline: Pipeline,
    ctx: RunContext,
    reports_dir: Path,
    status: str,
    error: str | None,
    finished: datetime,
    touched: Iterable[str],
) -> None:
    spec = pipeline.spec
    write_status(
        reports_dir,
        {
            "pipeline": pipeline.name,
            "title": spec.title,
            "description": spec.description,
            "schedule": schedule_words(pipeline),
            "timezone": ctx.zone.key,
            "status": status,
            "scheduled_at": ctx.scheduled_at.isoformat(),
            "stamp": ctx.stamp,
            "run_id": ctx.run_id,
            "finished_at": finished.isoformat(),
            "error": error,
        },
    )
    update_site(reports_dir, touched={pipeline.name: {ctx.stamp, *touched}})


def run_queries(
    pipeline: Pipeline, ctx: RunContext, guard: QueryGuard | None = None
) -> dict[str, pd.DataFrame]:
    """Run every query of the pipeline on a connection of its own; results by query name.

    Each query runs under ``guard`` when given (it can then be stopped).
    """

    params: dict[str, Any] = {**ctx.params(), **pipeline.spec.params}
    with open_source(pipeline.name, pipeline.spec.source, pipeline.root) as source:
        return {
            name: source.run(name, sql, params, guard=guard) for name, sql in pipeline.sql.items()
        }


def _produce(
    pipeline: Pipeline,
    ctx: RunContext,
    stages: StageTimes,
    guard: QueryGuard | None,
    chart_processes: ChartProcesses | None = None,
) -> Produced:
    spec = pipeline.spec
    formats = spec.report.formats
    if "pdf" in formats:
        # Before the queries: a missing extra is known without spending a run on it.

        problem = pdf_problem(pipeline.name)
        if problem is not None:
            raise PdfUnavailableError(problem)
    for export in spec.report.exports:
        # Likewise a Parquet or Excel export without its extra (pyarrow, openpyxl).
        reason = export_unavailable_reason(export)
        if reason is not None:
            raise OutputError(f'pipeline "{pipeline.name}": {reason}')
    t = _time.perf_counter()
    data = run_queries(pipeline, ctx, guard)
    stages.query = _time.perf_counter() - t
    return render_documents(pipeline, ctx, data, stages, chart_processes)


def render_documents(
    pipeline: Pipeline,
    ctx: RunContext,
    data: dict[str, pd.DataFrame],
    stages: StageTimes | None = None,
    chart_processes: ChartRenderer | None = None,
) -> Produced:
    """Everything a run makes from its query results: metrics, charts, the documents.

    The run calls it after its queries; ``eil-run dev`` calls it with results
    it cached, so a template edit re-renders without running a query again.
    Writes nothing.
    """
    spec = pipeline.spec
    formats = spec.report.formats
    currency = spec.report.currency
    stages = stages if stages is not None else StageTimes()
    metrics = [compute_metric(m, data[m.query], currency=currency) for m in spec.metrics]
    insights = build_insights(
        metrics,
        spec.charts,
        data,
        period_word(ctx.period_kind),
        currency=currency,
        sql=pipeline.sql,
    )

    t = _time.perf_counter()
    files = ReportFiles(stamp=ctx.stamp)
    # The PDF is laid out from the HTML, so it needs the SVG charts too.
    html_needed = "html" in formats or "pdf" in formats
    assets = draw_charts(
        pipeline,
        data,
        files,
        # Emails carry charts as PNGs (mail clients drop SVG), written beside the report.
        want_png="md" in formats or any(d.to for d in spec.deliver),
        want_svg=html_needed,
        processes=chart_processes,
    )
    stages.charts = _time.perf_counter() - t

    t = _time.perf_counter()

    template_path = pipeline.template_path
    template = load_template(
        template_path, display_name=display_path(template_path) if template_path else None
    )
    shown_data = template_frames(pipeline, data, ctx.stamp)
    context = {
        "pipeline": {"name": pipeline.name, "title": spec.title, "description": spec.description},
        "run": ctx.template_run(),
        "params": dict(spec.params),
        "data": shown_data,
        "tables": data_tables(pipeline, shown_data),
        "charts": assets,
        "metrics": metrics,
        "insights": insights,
        "sql": dict(pipeline.sql),
    }
    rendered: dict[str, str] = {}
    for fmt in ("md", "html"):
        if fmt in formats or (fmt == "html" and html_needed):
            rendered[fmt] = render_report(
                template, context, fmt, max_rows=spec.report.max_rows, currency=currency
            )
    for fmt in formats:
        if fmt in rendered:
            files.documents[fmt] = rendered[fmt]
    stages.template = _time.perf_counter() - t

    if "pdf" in formats:
        t = _time.perf_counter()
        files.documents["pdf"] = _render_pdf(pipeline, ctx, rendered["html"])
        stages.pdf = _time.perf_counter() - t
    return Produced(data=data, metrics=metrics, files=files, template=template)


SUMMARY_ROWS = 10
"""Rows of each query the built-in template's ``summary`` data section shows."""


def template_frames(
    pipeline: Pipeline, data: dict[str, pd.DataFrame], stamp: str
) -> dict[str, pd.DataFrame]:
    """The results as the template sees them: each carries its ``[queries.x.columns]``
    and the link to its full-data export, for the ``table`` filter.

    Shallow copies: the run's own frames (exports, hashes) stay untouched.
    """
    exports = pipeline.spec.report.exports
    preferred = next((f for f in ("csv", "xlsx", "parquet") if f in exports), None)
    out: dict[str, pd.DataFrame] = {}
    for name, frame in data.items():
        query = pipeline.spec.queries.get(name)
        columns = query.columns if query is not None else {}
        if not columns and preferred is None:
            out[name] = frame
            continue
        view = frame.copy(deep=False)
        if columns:
            view.attrs[COLUMNS_ATTR] = {
                column: spec.model_dump(exclude_none=True) for column, spec in columns.items()
            }
        if preferred is not None:
            view.attrs[EXPORT_ATTR] = (
                f"{data_dir_name(stamp)}/{name}.{preferred}",
                preferred.upper(),
            )
        out[name] = view
    return out


def data_tables(pipeline: Pipeline, data: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """The template's ``tables``: the results the data section shows, by ``report.data``.

    ``none``: none.  ``full``: every query with ``show`` left on, up to
    ``max_rows`` rows.  ``summary`` (the default): the first
    :data:`SUMMARY_ROWS` rows of each such query that no metric and no chart
    already shows.  Each entry has ``name``, ``title``, ``frame`` and ``rows``
    (the row limit to pass to ``table``).
    """
    from ..charts.style import words

    spec = pipeline.spec
    mode = spec.report.data
    if mode == "none":
        return []
    covered = {m.query for m in spec.metrics} | {c.query for c in spec.charts}
    rows = spec.report.max_rows if mode == "full" else min(SUMMARY_ROWS, spec.report.max_rows)
    tables = []
    for name, frame in data.items():
        query = spec.queries.get(name)
        if query is not None and not query.show:
            continue
        if mode == "summary" and name in covered:
            continue
        tables.append({"name": name, "title": words(name), "frame": frame, "rows": rows})
    return tables


def _render_pdf(pipeline: Pipeline, ctx: RunContext, html: str) -> bytes:

    try:
        return html_to_pdf(html, created=ctx.scheduled_at, title=pipeline.spec.title)
    except PdfUnavailableError as exc:
        raise PdfUnavailableError(f'pipeline "{pipeline.name}": {exc}') from None
    except Exception as exc:  # WeasyPrint's own errors have no common base class
        raise RenderError(
            f'pipeline "{pipeline.name}", PDF',
            f"cannot lay out the PDF: {type(exc).__name__}: {exc}",
        ) from exc


def money_chart(chart: ChartSpec) -> ChartSpec:
    """A chart of money columns in the currency format, so every axis of a report that
    shows money shows its symbol ("$489K", not "489K" beside "$287K").

    Applies when the chart's format is unset or ``compact`` and every ``y``
    column is named as money (revenue, sales, cost …: see
    :func:`~eil_pipelines.formatting.infer_column_format`); large values still
    print compactly, the currency format does that from 10,000 up.
    """
    if chart.format not in (None, "compact") or chart.type == "hist":
        return chart
    if all(infer_column_format(y) == "currency" for y in chart.y_columns):
        return chart.model_copy(update={"format": "currency"})
    return chart


def draw_charts(
    pipeline: Pipeline,
    data: dict[str, pd.DataFrame],
    files: ReportFiles,
    *,
    want_png: bool,
    want_svg: bool,
    processes: ChartRenderer | None = None,
) -> dict[str, Any]:
    """Draw every chart once, render the formats the report needs, and return template assets.

    With ``processes`` the charts are drawn side by side in chart processes,
    else one after another in this thread; the bytes are the same.
    """
    if not pipeline.spec.charts:
        return {}
    from ..charts.style import words
    from ..charts.work import ChartJob, render_job

    currency = pipeline.spec.report.currency
    jobs = [
        ChartJob(
            money_chart(chart), data[chart.query], currency=currency, svg=want_svg, png=want_png
        )
        for chart in pipeline.spec.charts
    ]
    try:
        if processes is not None:
            rendered = processes.render(jobs)
        else:
            rendered = [render_job(job) for job in jobs]
    except ChartError as exc:
        raise ChartError(exc.chart, exc.detail, pipeline=pipeline.name) from None
    assets: dict[str, Any] = {}
    for chart, images in zip(pipeline.spec.charts, rendered, strict=True):
        if want_png:
            files.images[f"{chart.name}.png"] = images.png
        assets[chart.name] = ChartAsset(
            name=chart.name,
            title=chart.title or words(chart.name),
            alt=images.summary,
            png_path=f"{charts_dir_name(files.stamp)}/{chart.name}.png",
            svg=images.svg.decode("utf-8"),
        )
    return assets
