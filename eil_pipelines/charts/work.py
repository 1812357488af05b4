"""One chart from spec and data to finished images: the unit of work a run hands out.

A :class:`ChartJob` carries everything a chart needs (spec, the query's
result, the currency, which formats) and nothing else, so it can be done in
the run's own thread or, pickled, in a chart process
(:mod:`eil_pipelines.charts.processes`): both call :func:`render_job` and
produce the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..spec.models import ChartSpec
from .draw import draw_chart
from .render import release, render_chart


@dataclass(frozen=True)
class ChartJob:
    """A chart to draw and the images a report needs of it."""

    spec: ChartSpec
    """The chart, as declared under ``[[charts]]``."""
    data: pd.DataFrame
    """The result of the chart's query."""
    currency: str = "$"
    """The symbol of the ``currency`` number format."""
    svg: bool = True
    """Render the inline SVG element (HTML and PDF reports)."""
    png: bool = True
    """Render the PNG (Markdown reports and emails)."""


@dataclass(frozen=True)
class RenderedChart:
    """The images of one chart and its text alternative."""

    summary: str
    """The one-line description of the data (the charts' ``alt`` text)."""
    svg: bytes = b""
    """The ``<svg>`` element, or empty when not asked for."""
    png: bytes = b""
    """The PNG file, or empty when not asked for."""


def render_job(job: ChartJob) -> RenderedChart:
    """Draw ``job``'s chart and render the formats it asks for, releasing the figure.

    Raises :class:`~eil_pipelines.errors.ChartError` (without a pipeline
    name) when the data does not fit the chart.
    """
    figure = draw_chart(job.spec, job.data, currency=job.currency)
    summary = figure.summary
    svg = render_chart(figure, "svg", close=not job.png) if job.svg else b""
    if job.png:
        png = render_chart(figure, "png")
    else:
        png = b""
        if not job.svg:
            release(figure)
    return RenderedChart(summary=summary, svg=svg, png=png)
