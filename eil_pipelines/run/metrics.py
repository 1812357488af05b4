"""KPI figures and the plain-English insights derived from them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any

from ..errors import MetricError
from ..formatting import (
    format_change,
    format_value,
    infer_column_format,
    is_missing,
    rounds_to_zero,
)
from ..spec.models import ChartSpec, MetricSpec

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class MetricResult:
    """One KPI figure as the template sees it (``metrics`` is a list of these)."""

    label: str
    """The metric's label."""
    value: float | None
    """This period's value (None when the query returned no rows or NULL)."""
    previous: float | None
    """The previous period's value, when the metric has ``compare``."""
    change: float | None
    """``value - previous``."""
    change_pct: float | None
    """The change as a fraction of ``|previous|`` (0.124 = +12.4%); None when previous is 0 or missing."""
    text: str
    """``value`` formatted, such as ``$1.24M``."""
    previous_text: str
    """``previous`` formatted."""
    change_text: str
    """The change with arrow and sign, such as ``▲ +12.4%``."""
    direction: str | None
    """``up``, ``down``, ``flat``, or None without a comparison."""
    sentiment: str
    """``good``, ``bad`` or ``neutral``, from ``direction`` and the metric's ``good``."""
    good: str
    """Which direction is good news: ``up`` or ``down``."""
    format: str
    """The metric's format name."""
    query: str
    """The query the value came from."""


def _number(metric: MetricSpec, column: str, value: Any) -> float | None:
    if is_missing(value):
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise MetricError(
            metric.label,
            f'column "{column}" of query "{metric.query}" holds {type(value).__name__} '
            f"{value!r}, not a number",
        )
    return float(value)


def compute_metric(metric: MetricSpec, df: pd.DataFrame, *, currency: str = "$") -> MetricResult:
    """Read one metric from its query's result (the first and only row)."""
    for column in (metric.column, metric.compare):
        if column is not None and column not in df.columns:
            available = ", ".join(map(str, df.columns)) or "none"
            raise MetricError(
                metric.label,
                f'column "{column}" is not in the result of query "{metric.query}"; '
                f"available columns: {available}",
            )
    if len(df) > 1:
        raise MetricError(
            metric.label,
            f'query "{metric.query}" returned {len(df)} rows; a metric reads a query that returns one row',
        )
    row = df.iloc[0] if len(df) else None
    value = _number(metric, metric.column, row[metric.column]) if row is not None else None
    previous = None
    if metric.compare is not None and row is not None:
        previous = _number(metric, metric.compare, row[metric.compare])

    change = change_pct = direction = None
    if value is not None and previous is not None:
        change = value - previous
        change_pct = change / abs(previous) if previous else None
        direction = "up" if change > 0 else "down" if change < 0 else "flat"
        # A change that prints as zero ("+0.0 pts") is no change: neutral, not red.
        if metric.format == "percent":
            shown: float | None = change * 100  # points
        else:
            shown = None if change_pct is None else change_pct * 100
        if shown is not None and rounds_to_zero(shown):
            direction = "flat"
    sentiment = "neutral"
    if direction in ("up", "down"):
        sentiment = "good" if direction == metric.good else "bad"

    def fmt(v: float | None) -> str:
        return format_value(v, metric.format, currency=currency, decimals=metric.decimals)

    if metric.format == "percent" and change is not None:
        points = change * 100
        arrow = {"up": "▲ +", "down": "▼ −"}.get(direction or "", "■ ")
        change_text = f"{arrow}{abs(points):.1f} pts" if arrow != "■ " else "■ 0.0 pts"
    else:
        change_text = format_change(change_pct)
    return MetricResult(
        label=metric.label,
        value=value,
        previous=previous,
        change=change,
        change_pct=change_pct,
        text=fmt(value),
        previous_text=fmt(previous),
        change_text=change_text,
        direction=direction,
        sentiment=sentiment,
        good=metric.good,
        format=metric.format,
        query=metric.query,
    )


_SINGULAR_ENDINGS = ("ss", "us", "is", "ics")


def is_plural(label: str) -> bool:
    """A guess good for KPI labels: "Orders", "Active customers" are plural; "Revenue",
    "Gross margin", "Status", "Analysis", "Analytics" are not."""
    words = label.split()
    last = words[-1].lower() if words else ""
    return last.endswith("s") and not last.endswith(_SINGULAR_ENDINGS) and len(last) > 2


def metric_sentence(result: MetricResult, period: str) -> str | None:
    """One plain sentence about a metric: "Revenue rose 12.4% to $1.24M against the previous day".

    ``None`` (say nothing) for a figure that was zero and stayed zero: "Orders
    were unchanged at 0" tells the reader nothing a KPI card does not.
    """
    be = "were" if is_plural(result.label) else "was"
    if result.value is None:
        return f"{result.label}: no data for this {period}."
    if result.previous is None or result.direction is None:
        return f"{result.label} {be} {result.text}."
    against = f"against the previous {period}"
    if result.direction == "flat":
        if result.value == 0 and result.previous == 0:
            return None
        return f"{result.label} {be} unchanged at {result.text} {against}."
    verb = "rose" if result.direction == "up" else "fell"
    if result.format == "percent":
        points = abs(result.change or 0) * 100
        return f"{result.label} {verb} {points:.1f} points to {result.text} {against}."
    if result.change_pct is None:
        return f"{result.label} {verb} to {result.text} from {result.previous_text} {against}."
    return f"{result.label} {verb} {abs(result.change_pct) * 100:.1f}% to {result.text} {against}."


# "…, top 10", "(top 10)", "top 10 …": the sentence says "of the top 10" itself.
_TOP_IN_TITLE = re.compile(r"\s*[,(–-]?\s*\btop\s+\d+\s*\)?\s*$", re.I)
_TOP_PREFIX = re.compile(r"^\s*top\s+\d+\s+", re.I)
# SQL that keeps only some rows: the result is not the whole population.
_LIMITED_SQL = re.compile(
    r"\b(LIMIT\s+[\d$]|FETCH\s+(FIRST|NEXT)\b|TOP\s*\(?\s*[\d$]|QUALIFY\b)", re.I
)
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


def is_limited_sql(sql: str) -> bool:
    """True when the query keeps only some rows (``LIMIT``, ``FETCH FIRST``, ``TOP``, ``QUALIFY``)."""
    return bool(_LIMITED_SQL.search(_SQL_COMMENT.sub(" ", sql)))


def _subject(chart: ChartSpec) -> str:
    what = (chart.title or chart.name.replace("_", " ")).strip().rstrip(".")
    what = _TOP_IN_TITLE.sub("", what)
    what = _TOP_PREFIX.sub("", what) or what
    return what[:1].lower() + what[1:]


def chart_sentence(
    chart: ChartSpec, df: pd.DataFrame, *, currency: str = "$", limited: bool = False
) -> str | None:
    """For category charts (bar, barh, pie) with one value column: who led, and their share.

    The share is "of the total" only when the result holds every category:
    when the query kept only some rows (``limited``), it is "of the top N".
    ``None`` when there is nothing true and useful to say: a flat series (no
    leader), no positive value, or a single category.
    """
    if chart.type not in ("bar", "barh", "pie") or chart.series or len(chart.y_columns) != 1:
        return None
    y = chart.y_columns[0]
    if chart.x not in df.columns or y not in df.columns or len(df) < 2:
        return None
    import pandas as pd

    values = pd.to_numeric(df[y], errors="coerce")
    if values.isna().all():
        return None
    totals = values.groupby(df[chart.x].astype(str)).sum()
    if len(totals) < 2 or totals.nunique() < 2:
        return None  # one category, or all equal: nobody "led"
    leader = totals.idxmax()
    lead = float(totals[leader])
    if lead <= 0:
        return None
    positive = float(totals[totals > 0].sum())
    fmt = chart.format or infer_column_format(y, values.tolist())
    if fmt == "compact" and infer_column_format(y) == "currency":
        fmt = "compact_currency"  # money keeps its symbol, as on the chart's axis
    text = format_value(
        lead,
        fmt if fmt in ("currency", "percent", "compact", "compact_currency") else "number",
        currency=currency,
    )
    whole = f"the top {len(totals)}" if limited else "the total"
    share = f" ({lead / positive * 100:.0f}% of {whole})" if fmt != "percent" else ""
    return f"{leader} led {_subject(chart)} with {text}{share}."


def build_insights(
    metrics: list[MetricResult],
    charts: list[ChartSpec],
    data: Mapping[str, pd.DataFrame],
    period: str,
    *,
    currency: str = "$",
    sql: Mapping[str, str] | None = None,
) -> list[str]:
    """The ``insights`` list: a sentence per metric, then per category chart, then empty queries.

    ``sql`` (query name → SQL text) tells which results hold only some rows,
    so a share is not called "of the total" when it is of the top N.
    """
    sentences = [s for s in (metric_sentence(m, period) for m in metrics) if s]
    for chart in charts:
        df = data.get(chart.query)
        if df is not None:
            limited = sql is not None and is_limited_sql(sql.get(chart.query, ""))
            sentence = chart_sentence(chart, df, currency=currency, limited=limited)
            if sentence:
                sentences.append(sentence)
    for name, df in data.items():
        if len(df) == 0:
            sentences.append(f'Query "{name}" returned no rows for this {period}.')
    return sentences
