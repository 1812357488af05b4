"""Charts: chart specs and query results to Figures, PNG and inline SVG, in one house style.

Imported only when a run draws charts, so ``--help`` and validation never
load matplotlib.  Uses matplotlib's object API only (never ``pyplot``), which
makes drawing safe in worker threads.
"""

from __future__ import annotations

from .draw import NO_DATA_TEXT, draw_chart
from .figure import ChartFigure
from .legacy import chart_sales_trend
from .render import render_chart
from .summary import chart_summary

__all__ = [
    "NO_DATA_TEXT",
    "ChartFigure",
    "chart_sales_trend",
    "chart_summary",
    "draw_chart",
    "render_chart",
]
