"""One-line text alternatives: what a chart shows, for screen readers and email."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..spec.models import ChartSpec
from .data import ChartData, prepare
from .style import COMPACT_FROM, TYPE_WORDS, point_label, words


def chart_summary(spec: ChartSpec, df: pd.DataFrame, *, currency: str = "$") -> str:
    """A one-sentence description of the chart ``spec`` draws from ``df``.

    For example ``Revenue by day: line chart of revenue by day for 3 series
    (EMEA, APAC, AMER), from 2026-11-01 to 2026-11-27; latest EMEA 12.3K,
    APAC 9.1K, AMER 4.2K.``  Raises the same
    :class:`~eil_pipelines.errors.ChartError` as ``draw_chart`` for a bad spec.
    """
    data = prepare(spec, df, f'the result of query "{spec.query}"', currency=currency)
    return summarise(spec, data, spec.title or words(spec.name), currency)


def _names(labels: list[str], most: int = 3) -> str:
    if len(labels) <= most:
        return ", ".join(labels)
    return ", ".join(labels[:most]) + f" and {len(labels) - most} more"


def _span(first: np.datetime64, last: np.datetime64) -> str:
    """``from 2026-11-01 to 2026-11-27``; with times when either has one."""
    a, b = pd.Timestamp(first), pd.Timestamp(last)
    daily = a == a.normalize() and b == b.normalize()
    pattern = "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"
    if a == b:
        return f"on {a.strftime(pattern)}"
    return f"from {a.strftime(pattern)} to {b.strftime(pattern)}"


def _plain_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


#: Formats one value the way the chart labels it.
_Format = Callable[[float], str]


def summarise(spec: ChartSpec, data: ChartData | None, title: str, currency: str = "$") -> str:
    """The text of :func:`chart_summary` from already prepared data."""
    if data is None:
        return f"{title}: no data for this period."
    values = data.finite_values()
    large = bool(values.size) and float(np.max(np.abs(values))) >= COMPACT_FROM

    def fmt(v: float) -> str:
        return point_label(v, spec.format, currency, large=large)

    scope, tail = _PARTS[spec.type](data, values, fmt)
    text = _head(spec, data, title) + scope + (f"; {tail}" if tail else "")
    if spec.target is not None:
        text += "; " + _target_phrase(spec, data, fmt)
    if data.notes:
        text += "; " + "; ".join(n[:1].lower() + n[1:] for n in data.notes)
    return text + "."


def _head(spec: ChartSpec, data: ChartData, title: str) -> str:
    """``Revenue: line chart of revenue by day for 3 series (EMEA, APAC, AMER)``."""
    head = f"{title}: {TYPE_WORDS[spec.type]} of {data.value_name}"
    if spec.type != "hist":
        head += f" by {data.x_name}"
    labels = [s.label for s in data.series]
    if data.from_series_column and len(labels) > 1:
        head += f" for {len(labels)} series ({_names(labels)})"
    return head


# --- one function per chart type: (scope, tail) --------------------------------
# The scope follows the head (``, 30 categories``); the tail, after a
# semicolon, names the value a reader looks for first (empty: none).


def _x_scope(data: ChartData) -> str:
    """The x values drawn: their dates, their range or how many categories."""
    if data.kind == "time":
        return f", {_span(data.x.min(), data.x.max())}"
    if data.kind == "number":
        finite = data.x[np.isfinite(data.x.astype(float))]
        if finite.size:
            return f", from {_plain_number(finite.min())} to {_plain_number(finite.max())}"
        return ""
    count = len(data.x) - (1 if data.folded_categories else 0) + data.folded_categories
    return f", {count} {'category' if count == 1 else 'categories'}"


def _line_parts(data: ChartData, values: np.ndarray, fmt: _Format) -> tuple[str, str]:
    """Line and area charts: each series' latest value, largest first."""
    ends = []
    for s in data.series:
        idx = np.flatnonzero(np.isfinite(s.y))
        if idx.size:
            ends.append((float(s.y[idx[-1]]), s.label, s.other))
    ends.sort(key=lambda e: (e[2], -e[0]))  # "Other" last: it is not a rival
    word = "latest" if data.kind != "category" else "last"
    tail = ""
    if len(data.series) == 1 and ends:
        tail = f"{word} {fmt(ends[0][0])}"
    elif ends:
        shown = ", ".join(f"{label} {fmt(v)}" for v, label, _ in ends[:3])
        tail = f"{word} {shown}" + (f" and {len(ends) - 3} more" if len(ends) > 3 else "")
    return _x_scope(data), tail


def _bar_parts(data: ChartData, values: np.ndarray, fmt: _Format) -> tuple[str, str]:
    """Bar charts, upright or lying: the highest real category ("Other" is not one)."""
    cats = data.category_labels()
    best = None
    real = len(cats) - (1 if data.folded_categories else 0)
    for s in data.series:
        for label, v in zip(cats[:real], s.y[:real], strict=True):
            if math.isfinite(v) and (best is None or v > best[0]):
                name = label if len(data.series) == 1 else f"{label} ({s.label})"
                best = (v, name)
    tail = f"highest {best[1]} {fmt(best[0])}" if best is not None else ""
    return _x_scope(data), tail


def _pie_parts(data: ChartData, values: np.ndarray, fmt: _Format) -> tuple[str, str]:
    """Pie charts: the largest real slice and its share of the total."""
    s = data.series[0]
    cats = data.category_labels()
    positive = [(v, c) for v, c in zip(s.y, cats, strict=True) if math.isfinite(v) and v > 0]
    real = [p for p in positive if not (data.folded_categories and p[1] == cats[-1])]
    tail = ""
    if real:
        total = sum(v for v, _ in positive)
        v, c = max(real, key=lambda p: p[0])
        tail = f"largest {c} {fmt(v)} ({v / total:.0%} of {fmt(total)} total)"
    return _x_scope(data), tail


def _scatter_parts(data: ChartData, values: np.ndarray, fmt: _Format) -> tuple[str, str]:
    """Scatter plots: how many points, and over which dates."""
    xs = np.concatenate([np.asarray(s.x) for s in data.series])
    scope = f", {sum(int(np.isfinite(s.y).sum()) for s in data.series):,} points"
    if data.kind == "time" and xs.size:
        scope += f", {_span(xs.min(), xs.max())}"
    return scope, ""


def _hist_parts(data: ChartData, values: np.ndarray, fmt: _Format) -> tuple[str, str]:
    """Histograms: how many values, their range and their median."""
    low, high = fmt(float(values.min())), fmt(float(values.max()))
    scope = f", {values.size:,} values from {low} to {high}"
    return scope, f"median {fmt(float(np.median(values)))}"


_PARTS: dict[str, Callable[[ChartData, np.ndarray, _Format], tuple[str, str]]] = {
    "line": _line_parts,
    "area": _line_parts,
    "bar": _bar_parts,
    "barh": _bar_parts,
    "scatter": _scatter_parts,
    "pie": _pie_parts,
    "hist": _hist_parts,
}


def _target_phrase(spec: ChartSpec, data: ChartData, fmt: _Format) -> str:
    """``target $50K, 3 of 5 at or above it`` (the count for one-series bars)."""
    assert spec.target is not None
    label = spec.target_label or "Target"
    if not label[1:2].isupper():  # "Budget" reads "budget"; "KPI floor" stays
        label = label[:1].lower() + label[1:]
    phrase = f"{label} {fmt(float(spec.target))}"
    if spec.type in ("bar", "barh") and len(data.series) == 1:
        real = len(data.x) - (1 if data.folded_categories else 0)
        values = data.series[0].y[:real]
        values = values[np.isfinite(values)]
        if values.size:
            above = int((values >= spec.target).sum())
            phrase += f", {above} of {values.size} at or above it"
    return phrase
