"""Chart specs and DataFrames to matplotlib Figures in the house style.

Only the object API is used (``Figure``, never ``pyplot``): pyplot keeps a
global registry of open figures and a current-figure state that worker
threads would share, and figures it tracks are never freed unless closed.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from typing import NamedTuple

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, Formatter, MaxNLocator

from ..spec.models import ChartSpec
from . import style
from .data import ChartData, prepare
from .figure import ChartFigure
from .style import (
    COMPACT_FROM,
    FIGSIZE,
    LINE_WIDTH,
    MUTED_COLOR,
    NEGATIVE_COLOR,
    TARGET_COLOR,
    TEXT_COLOR,
    IndexFormatter,
    PlainNumberFormatter,
    ValueFormatter,
    color_for,
    legend_props,
    plain,
    point_label,
    shorten,
    style_axes,
    text_props,
    words,
)
from .summary import summarise

NO_DATA_TEXT = "No data for this period"


def draw_chart(spec: ChartSpec, df: pd.DataFrame, *, currency: str = "$") -> ChartFigure:
    """Draw ``spec`` from its query's result ``df`` and return the Figure.

    ``y`` may name several columns (one series each), or ``series`` may name
    a column whose distinct values become the series (long format).  An
    empty result draws a figure saying "No data for this period" rather than
    failing the report.  ``currency`` is the symbol of the ``currency``
    format.

    Raises :class:`~eil_pipelines.errors.ChartError` when a column the spec
    names is missing or a ``y`` column is not numeric.
    """
    return draw_from(spec, df, currency=currency, where=f'the result of query "{spec.query}"')


def draw_from(spec: ChartSpec, df: pd.DataFrame, *, currency: str, where: str) -> ChartFigure:
    """:func:`draw_chart` with the data's origin in words, for error messages."""
    data = prepare(spec, df, where, currency=currency)
    title = spec.title or words(spec.name)
    fig = ChartFigure(
        figsize=FIGSIZE,
        dpi=style.PNG_DPI,
        facecolor=style.BACKGROUND,
        chart_name=spec.name,
    )
    style.set_title(fig, title)
    if data is None:
        _draw_no_data(fig)
    else:
        _DRAWERS[spec.type](fig, spec, data, currency)
        if data.notes:
            fig.supxlabel(
                plain("; ".join(data.notes)),
                x=0.012,
                ha="left",
                **text_props(style.NOTE_SIZE, MUTED_COLOR),
            )
    _pin_empty_axis_labels(fig)
    fig.summary = summarise(spec, data, title, currency)
    return fig


def _pin_empty_axis_labels(fig: Figure) -> None:
    """Give axes without an axis title a fixed label position.

    An automatically placed axis label is moved clear of the tick labels at
    every draw, which measures every tick label again (about a tenth of a
    chart's render time); an empty label needs no placing.
    """
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.label.get_text():
                axis.set_label_coords(0.5, 0.0)


def _draw_no_data(fig: Figure, message: str = NO_DATA_TEXT) -> None:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        message,
        transform=ax.transAxes,
        ha="center",
        va="center",
        parse_math=False,
        **text_props(12, MUTED_COLOR),
    )


# --- axes helpers -------------------------------------------------------------


class _Fixed(Formatter):
    """The same label at every tick (there is one)."""

    def __init__(self, label: str):
        self.label = label

    def __call__(self, x: float, pos: int | None = None) -> str:
        return plain(self.label)


class DateFormatter(mdates.ConciseDateFormatter):
    """Concise dates that read as words: ``1 Nov``, ``Dec``, ``2027``, ``14:00``.

    The year (or the day, for hours) goes once in the corner, not on every tick.
    """

    def __init__(self, locator: mdates.DateLocator):
        super().__init__(
            locator,
            formats=["%Y", "%b", "%d %b", "%H:%M", "%H:%M", "%S.%f"],
            zero_formats=["", "%Y", "%b", "%d %b", "%H:%M", "%H:%M"],
            offset_formats=["", "%Y", "%Y", "%d %b %Y", "%d %b %Y", "%d %b %Y %H:%M"],
            usetex=False,
        )

    def format_ticks(self, values):
        # "%-d" is not portable (Windows), so leading zeros of days go here.
        return [_no_leading_zero(label) for label in super().format_ticks(values)]

    def get_offset(self):
        return _no_leading_zero(super().get_offset())


def _no_leading_zero(label: str) -> str:
    return re.sub(r"^0(\d )", r"\1", label)


def _x_positions(ax: Axes, data: ChartData) -> np.ndarray:
    """Numbers to plot at, with a matching locator and formatter on the x axis."""
    distinct = np.unique(data.x[~pd.isna(data.x)]) if data.kind != "category" else data.x
    if len(distinct) == 1 and data.kind != "category":
        # One x value: the automatic locators would pad it to years (dates)
        # or a unit range; one labelled tick at the point reads better.
        if data.kind == "time":
            xs = mdates.date2num(data.x)
            t = pd.Timestamp(distinct[0])
            label = f"{t.day} {t:%b} {t.year}" + (f" {t:%H:%M}" if t != t.normalize() else "")
        else:
            xs = np.asarray(data.x, dtype=float)
            label = data.category_labels()[0]
        ax.set_xlim(xs[0] - 1, xs[0] + 1)
        ax.xaxis.set_major_locator(FixedLocator([xs[0]]))
        ax.xaxis.set_major_formatter(_Fixed(label))
        return xs
    if data.kind == "time":
        xs = mdates.date2num(data.x)
        locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(DateFormatter(locator))
        ax.xaxis.get_offset_text().set(**text_props(style.TICK_SIZE, MUTED_COLOR))
        return xs
    if data.kind == "number":
        xs = np.asarray(data.x, dtype=float)
        _number_axis(ax.xaxis, xs)
        return xs
    labels = [shorten(t) for t in data.category_labels()]
    _category_axis(ax.xaxis, labels, crowded_at=20)
    return np.arange(len(labels), dtype=float)


def _number_axis(axis, xs: np.ndarray) -> None:
    finite = xs[np.isfinite(xs)]
    whole = bool(finite.size) and bool(np.all(finite == np.round(finite)))
    years = whole and bool(np.all((finite >= 1900) & (finite <= 2100)))
    axis.set_major_locator(MaxNLocator(nbins=7, integer=whole))
    axis.set_major_formatter(PlainNumberFormatter(years=years))


def _category_axis(axis, labels: list[str], crowded_at: int) -> None:
    if len(labels) <= crowded_at:
        axis.set_major_locator(FixedLocator(list(range(len(labels)))))
    else:
        axis.set_major_locator(MaxNLocator(nbins=crowded_at // 2, integer=True))
    axis.set_major_formatter(IndexFormatter(labels))


def _value_axis(axis, spec: ChartSpec, currency: str) -> None:
    axis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10], min_n_ticks=4))
    axis.set_major_formatter(ValueFormatter(spec.format, currency))


def _rotate_if_crowded(ax: Axes, labels: list[str], slots: int) -> None:
    """Tilt category labels when they would not fit side by side."""
    if not labels:
        return
    # DejaVu Sans at 9 pt averages about 7 px a character at 100 dpi; two
    # neighbours share the space between their ticks.
    sizes = [len(t) for t in labels]
    pairs = [(a + b) / 2 for a, b in itertools.pairwise(sizes)] or sizes
    needed = max(pairs) * 7 + 10
    available = FIGSIZE[0] * style.PNG_DPI * 0.85 / max(slots, 1)
    if needed > available:
        ax.tick_params(axis="x", labelrotation=35)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")


def _zero_line(ax: Axes, *, horizontal: bool = True, always: bool = False) -> None:
    lo, hi = ax.get_ylim() if horizontal else ax.get_xlim()
    if always or lo < 0 < hi:
        line = ax.axhline if horizontal else ax.axvline
        # Not clipped: at the very edge of the plot a clipped line shows half its width.
        line(0, color=style.ZERO_LINE_COLOR, linewidth=0.9, zorder=2.5, clip_on=False)


def _legend(ax: Axes, handles: list, labels: list[str]) -> None:
    """A legend in a row above the plot, only when there are several series.

    It belongs to the axes (not the figure) so the constrained layout makes
    room for it between the title and the plot.
    """
    if len(handles) < 2:
        return
    longest = max(len(t) for t in labels)
    ncols = max(1, min(len(labels), int(100 // (longest + 5))))
    ax.legend(
        handles,
        [plain(t) for t in labels],
        loc="lower left",
        bbox_to_anchor=(0, 1.02),
        ncols=ncols,
        **{**legend_props(), "borderaxespad": 0},
    )


def _large(data: ChartData) -> bool:
    values = data.finite_values()
    return bool(values.size) and float(np.max(np.abs(values))) >= COMPACT_FROM


def _last_finite(y: np.ndarray) -> int | None:
    idx = np.flatnonzero(np.isfinite(y))
    return int(idx[-1]) if idx.size else None


def _markers(y: np.ndarray) -> list[bool]:
    """Dots where a line alone would not show: short series, lone points, the end."""
    finite = np.isfinite(y)
    n = len(y)
    if n <= 12:
        marks = finite.copy()
    else:
        before = np.r_[False, finite[:-1]]
        after = np.r_[finite[1:], False]
        marks = finite & ~before & ~after
    last = _last_finite(y)
    if last is not None:
        marks[last] = True
    return [bool(m) for m in marks]


def _end_labels(
    ax: Axes, items: list[tuple[float, str, str]], *, min_gap_fraction: float = 0.085
) -> None:
    """Write each series' last value just right of the plot, nudged apart.

    ``items`` are ``(y, text, colour)``; text in :data:`TARGET_COLOR` (the
    target's label) is not bold.  The gap is a fraction of the y range,
    estimated from the figure's height: exact text extents are only known
    after layout, and the estimate keeps this a single pass.
    """
    if not items:
        return
    lo, hi = ax.get_ylim()
    span = (hi - lo) or 1.0
    gap = span * min_gap_fraction
    placed: list[list] = [[y, y, text, color] for y, text, color in sorted(items)]
    for i in range(1, len(placed)):
        placed[i][1] = max(placed[i][1], placed[i - 1][1] + gap)
    overflow = placed[-1][1] - hi
    if overflow > 0:
        for item in placed:
            item[1] -= overflow
        for i in range(len(placed) - 2, -1, -1):
            placed[i][1] = min(placed[i][1], placed[i + 1][1] - gap)
    for _, shown_at, text, color in placed:
        ax.annotate(
            plain(text),
            xy=(1.0, shown_at),
            xycoords=ax.get_yaxis_transform(),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            ha="left",
            annotation_clip=False,
            fontweight="normal" if color == TARGET_COLOR else "bold",
            **text_props(style.LABEL_SIZE, color),
        )


def _target_line(
    ax: Axes, spec: ChartSpec, currency: str, *, large: bool, horizontal: bool = True
) -> tuple[float, str, str] | None:
    """The chart's ``target`` as a dashed line across the plot, in view.

    ``horizontal`` draws it across a vertical value axis (line, area, bar);
    otherwise it stands upright (barh).  Returns the end label
    ``(value, "Target $50K", colour)`` for :func:`_end_labels`, or ``None``
    when the chart has no target.
    """
    if spec.target is None:
        return None
    target = float(spec.target)
    draw = ax.axhline if horizontal else ax.axvline
    draw(
        target,
        color=TARGET_COLOR,
        linewidth=1.3,
        linestyle=(0, (5, 3)),
        dash_capstyle="butt",
        zorder=2.6,
        clip_on=False,
    )
    # The line's own extent widens autoscaled limits; fixed ones (one value)
    # are stretched here so a target far from the data still shows.
    get, set_ = (ax.get_ylim, ax.set_ylim) if horizontal else (ax.get_xlim, ax.set_xlim)
    lo, hi = get()
    if not lo < target < hi:
        pad = (max(hi, target) - min(lo, target)) * 0.06
        set_(min(lo, target - pad), max(hi, target + pad))
    label = spec.target_label or "Target"
    text = f"{label} {point_label(target, spec.format, currency, large=large)}"
    return (target, text, TARGET_COLOR)


def _target_label_above(ax: Axes, item: tuple[float, str, str]) -> None:
    """The label of an upright target line (barh), just above the plot."""
    at, text, color = item
    ax.annotate(
        plain(text),
        xy=(at, 1.0),
        xycoords=ax.get_xaxis_transform(),
        xytext=(0, 4),
        textcoords="offset points",
        ha="center",
        va="bottom",
        annotation_clip=False,
        **text_props(style.LABEL_SIZE, color),
    )


# --- chart types --------------------------------------------------------------


def _line(fig: Figure, spec: ChartSpec, data: ChartData, currency: str) -> None:
    ax = fig.add_subplot()
    style_axes(ax, "y")
    xs = _x_positions(ax, data)
    handles, labels, ends = [], [], []
    large = _large(data)
    for i, s in enumerate(data.series):
        color = color_for(i, other=s.other)
        (line,) = ax.plot(
            xs,
            s.y,
            color=color,
            linewidth=LINE_WIDTH if not s.other else LINE_WIDTH * 0.75,
            linestyle="--" if s.other else "-",
            marker="o",
            markersize=4.5,
            markevery=_markers(s.y),
            solid_capstyle="round",
            solid_joinstyle="round",
            zorder=3 + (len(data.series) - i) * 0.01,
        )
        handles.append(line)
        labels.append(s.label)
        last = _last_finite(s.y)
        if last is not None:
            ends.append(
                (
                    float(s.y[last]),
                    point_label(s.y[last], spec.format, currency, large=large),
                    color,
                )
            )
    ax.margins(x=0.01, y=0.1)
    values = data.finite_values()
    if np.unique(values).size == 1:
        # A lone value has no range to scale to; measure it from zero.
        v = float(values[0]) or 1.0
        ax.set_ylim(min(0.0, v * 1.15), max(0.0, v * 1.15))
    target = _target_line(ax, spec, currency, large=large)
    _value_axis(ax.yaxis, spec, currency)
    _zero_or_note(ax, spec)
    _zero_line(ax)
    _end_labels(ax, ends + ([target] if target else []))
    _legend(ax, handles, labels)


AXIS_NOTE = "Axis does not start at 0"
"""Written in a line chart's corner when its value axis does not reach zero."""


def _zero_or_note(ax: Axes, spec: ChartSpec) -> None:
    """``y_zero``: stretch the axis to zero.  Otherwise, when the axis fits the data
    away from zero (115M to 125M), say so: ±5% of noise must not look dramatic
    without the reader being told."""
    lo, hi = ax.get_ylim()
    if spec.y_zero:
        ax.set_ylim(min(lo, 0.0), max(hi, 0.0))
        return
    if lo > 0 or hi < 0:
        # Bottom-left, inside the plot: the y margin keeps data off this band.
        ax.text(
            0.005,
            0.012 if lo > 0 else 0.988,
            AXIS_NOTE,
            transform=ax.transAxes,
            ha="left",
            va="bottom" if lo > 0 else "top",
            zorder=6,
            parse_math=False,
            bbox={"facecolor": style.BACKGROUND, "edgecolor": "none", "pad": 1.0},
            **text_props(style.NOTE_SIZE, MUTED_COLOR),
        )


def _area(fig: Figure, spec: ChartSpec, data: ChartData, currency: str) -> None:
    ax = fig.add_subplot()
    style_axes(ax, "y")
    xs = _x_positions(ax, data)
    large = _large(data)
    values = data.finite_values()
    stacked = len(data.series) > 1 and bool(values.size) and float(values.min()) >= 0
    colors = [color_for(i, other=s.other) for i, s in enumerate(data.series)]
    handles: list = []
    ends: list[tuple[float, str, str]] = []
    if stacked:
        # Missing values count as zero only here: a stack needs every layer.
        layers = [np.nan_to_num(s.y, nan=0.0) for s in data.series]
        ax.stackplot(xs, *layers, colors=colors, alpha=0.9, linewidth=0.6, edgecolor="white")
        handles = [Patch(facecolor=c) for c in colors]
        total = np.sum(layers, axis=0)
        ends.append(
            (
                float(total[-1]),
                "Total " + point_label(total[-1], spec.format, currency, large=large),
                TEXT_COLOR,
            )
        )
    else:
        for s, color in zip(data.series, colors, strict=True):
            ax.fill_between(xs, s.y, 0, color=color, alpha=0.18, linewidth=0)
            (line,) = ax.plot(
                xs,
                s.y,
                color=color,
                linewidth=LINE_WIDTH,
                markevery=_markers(s.y),
                marker="o",
                markersize=4,
                zorder=3,
            )
            handles.append(line)
            last = _last_finite(s.y)
            if last is not None:
                ends.append(
                    (
                        float(s.y[last]),
                        point_label(s.y[last], spec.format, currency, large=large),
                        color,
                    )
                )
    ax.margins(x=0.01, y=0.08)
    target = _target_line(ax, spec, currency, large=large)
    _value_axis(ax.yaxis, spec, currency)
    _zero_line(ax)
    _end_labels(ax, ends + ([target] if target else []))
    _legend(ax, handles, [s.label for s in data.series])


def _other_cap(data: ChartData) -> float | None:
    """How far to draw an "Other" bar that would dwarf every real category.

    A long tail folded into "Other" is often many times the largest bar; at
    full length it would flatten the bars the reader came for.  Such a bar is
    cut short with a break mark and labelled with its true value.
    """
    if not data.folded_categories:
        return None
    stacked = np.vstack([s.y for s in data.series])
    shown, other = np.abs(stacked[:, :-1]), np.abs(stacked[:, -1])
    peak = float(np.nanmax(shown)) if np.isfinite(shown).any() else 0.0
    if peak <= 0 or not np.isfinite(other).any() or float(np.nanmax(other)) <= 2 * peak:
        return None
    return peak * 1.3


def _break_mark(ax: Axes, at: float, centre: float, width: float, *, horizontal: bool) -> None:
    """Two white slashes across a bar, the usual sign of a cut-short scale."""
    lo, hi = ax.get_xlim() if horizontal else ax.get_ylim()
    step = (hi - lo) * 0.012
    for shift in (-step, step):
        a, b = centre - width * 0.75, centre + width * 0.75
        value = (at + shift - step * 0.6, at + shift + step * 0.6)
        xs, ys = (value, (b, a)) if horizontal else ((a, b), value)
        ax.plot(xs, ys, color=style.BACKGROUND, linewidth=2.2, zorder=2.2, solid_capstyle="butt")


class _DrawnBars(NamedTuple):
    """What :func:`_draw_bars` drew, for the axes, break marks and legend after it."""

    handles: list[Patch]  # one legend patch a series
    cut: list[tuple[float, float]]  # (centre, where) of each bar cut short
    width: float  # of one series' bar slot
    large: bool  # values are shown compact (12.3K)


def _draw_bars(
    ax: Axes, spec: ChartSpec, data: ChartData, currency: str, *, n: int, horizontal: bool
) -> _DrawnBars:
    """Every series' bars, side by side in each of the ``n`` categories, with value labels."""
    k = len(data.series)
    pos = np.arange(n, dtype=float)
    slot = 0.72 if k == 1 else 0.8
    width = slot / k
    large = _large(data)
    cap = _other_cap(data)
    draw = ax.barh if horizontal else ax.bar
    handles: list[Patch] = []
    cut: list[tuple[float, float]] = []
    # Value labels on single-series bars when there are few, and on a cut-short "Other".
    labelled = (k == 1 and n <= (15 if horizontal else 12)) or cap is not None
    for i, s in enumerate(data.series):
        offset = (i - (k - 1) / 2) * width
        heights = np.nan_to_num(s.y, nan=0.0)
        if cap is not None:
            heights = np.clip(heights, -cap, cap)
            if abs(heights[-1]) >= cap:
                cut.append((pos[-1] + offset, float(np.sign(heights[-1]) * cap * 0.86)))
        colors = _bar_colors(data, i, heights, n)
        bars = draw(pos + offset, heights, width * 0.9, color=colors, zorder=2, linewidth=0)
        handles.append(Patch(facecolor=color_for(i, other=s.other)))
        if labelled:
            # Beside other series only the cut-short "Other" (then cap is set) is labelled.
            texts = _bar_texts(s.y, spec, currency, large=large, last_only=k > 1)
            ax.bar_label(bars, labels=texts, padding=3, **text_props(8.5, MUTED_COLOR))
    return _DrawnBars(handles, cut, width, large)


def _bar_texts(
    y: np.ndarray, spec: ChartSpec, currency: str, *, large: bool, last_only: bool
) -> list[str]:
    """The value labels of one series' bars: every finite one, or only the last bar's."""
    last = len(y) - 1
    return [
        plain(point_label(v, spec.format, currency, large=large))
        if math.isfinite(v) and (not last_only or j == last)
        else ""
        for j, v in enumerate(y)
    ]


def _bar_colors(data: ChartData, i: int, heights: np.ndarray, n: int) -> list:
    """Series ``i``'s colours for its ``n`` bars; one series shows negatives and "Other" apart."""
    s = data.series[i]
    if len(data.series) > 1:
        return [color_for(i, other=s.other)] * n
    colors = [NEGATIVE_COLOR if v < 0 else color_for(0) for v in heights]
    if data.folded_categories:
        colors[-1] = color_for(0, other=True)
    return colors


def _bar(fig: Figure, spec: ChartSpec, data: ChartData, currency: str) -> None:
    ax = fig.add_subplot()
    style_axes(ax, "y")
    labels = [shorten(t, 18) for t in data.category_labels()]
    n = len(labels)
    drawn = _draw_bars(ax, spec, data, currency, n=n, horizontal=False)
    target = _target_line(ax, spec, currency, large=drawn.large, horizontal=True)
    _value_axis(ax.yaxis, spec, currency)
    _category_axis(ax.xaxis, labels, crowded_at=20)
    ax.tick_params(axis="x", length=0)
    ax.spines["bottom"].set_visible(False)  # the zero line takes its place
    ax.margins(x=0.01, y=0.1)
    _zero_line(ax, always=True)
    _rotate_if_crowded(ax, labels, n if n <= 20 else 10)
    # A few bars keep the width they would have among five, centred, rather
    # than swelling to fill the plot.
    if n < 5:
        pad = (5 - n) / 2
        ax.set_xlim(-0.5 - pad, n - 0.5 + pad)
    for centre, at in drawn.cut:
        _break_mark(ax, at, centre, drawn.width * 0.9 / 2, horizontal=False)
    if target is not None:
        _end_labels(ax, [target])
    _legend(ax, drawn.handles, [s.label for s in data.series])


def _barh(fig: Figure, spec: ChartSpec, data: ChartData, currency: str) -> None:
    ax = fig.add_subplot()
    style_axes(ax, "x")
    labels = [shorten(t, 28) for t in data.category_labels()]
    n = len(labels)
    drawn = _draw_bars(ax, spec, data, currency, n=n, horizontal=True)
    target = _target_line(ax, spec, currency, large=drawn.large, horizontal=False)
    _value_axis(ax.xaxis, spec, currency)
    _category_axis(ax.yaxis, labels, crowded_at=25)
    ax.invert_yaxis()  # the first category reads first, at the top
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)  # the zero line takes its place
    ax.margins(x=0.08, y=0.02)
    _zero_line(ax, horizontal=False, always=True)
    # A few bars keep the width they would have among four, centred.
    if n < 4:
        pad = (4 - n) / 2
        ax.set_ylim(n - 0.5 + pad, -0.5 - pad)  # inverted: first category on top
    for centre, at in drawn.cut:
        _break_mark(ax, at, centre, drawn.width * 0.9 / 2, horizontal=True)
    if target is not None:
        _target_label_above(ax, target)
    _legend(ax, drawn.handles, [s.label for s in data.series])


def _scatter(fig: Figure, spec: ChartSpec, data: ChartData, currency: str) -> None:
    ax = fig.add_subplot()
    style_axes(ax, "y")
    all_x = np.concatenate([np.asarray(s.x) for s in data.series])
    if data.kind == "time":
        _x_positions(ax, ChartData("time", all_x, [], "", ""))
    else:
        _number_axis(ax.xaxis, all_x.astype(float))
    handles = []
    for i, s in enumerate(data.series):
        xs = mdates.date2num(s.x) if data.kind == "time" else np.asarray(s.x, dtype=float)
        handles.append(
            ax.scatter(
                xs,
                s.y,
                s=24,
                color=color_for(i, other=s.other),
                alpha=0.8,
                edgecolors="white",
                linewidths=0.5,
                zorder=3,
            )
        )
    ax.margins(0.04, 0.1)
    _value_axis(ax.yaxis, spec, currency)
    _zero_line(ax)
    ax.set_xlabel(plain(words(data.x_name)), **text_props())
    ax.set_ylabel(plain(words(data.value_name)), **text_props())
    _legend(ax, handles, [s.label for s in data.series])


def _pie(fig: Figure, spec: ChartSpec, data: ChartData, currency: str) -> None:
    s = data.series[0]
    labels = data.category_labels()
    keep = [j for j, v in enumerate(s.y) if math.isfinite(v) and v > 0]
    large = _large(data)
    if not keep:
        _draw_no_data(fig, "No positive values to show")
        return
    values = s.y[keep]
    names = [labels[j] for j in keep]
    total = float(values.sum())
    grid = fig.add_gridspec(1, 2, width_ratios=[1, 1.35])
    ax = fig.add_subplot(grid[0])
    colors = [
        color_for(i, other=name.startswith("Other (") and data.folded_categories > 0)
        for i, name in enumerate(names)
    ]
    wedges, _ = ax.pie(
        values,
        colors=colors,
        startangle=90,
        counterclock=False,
        wedgeprops={"width": 0.36, "edgecolor": "white", "linewidth": 1.5},
    )
    ax.set_aspect("equal")
    ax.text(
        0, 0.1, "Total", ha="center", va="center", parse_math=False, **text_props(9, MUTED_COLOR)
    )
    ax.text(
        0,
        -0.12,
        plain(point_label(total, spec.format, currency, large=large)),
        ha="center",
        va="center",
        fontweight="bold",
        **text_props(12, TEXT_COLOR),
    )
    legend_ax = fig.add_subplot(grid[1])
    legend_ax.set_axis_off()
    entries = []
    for name, v in zip(names, values, strict=True):
        amount = point_label(v, spec.format, currency, large=large)
        entries.append(f"{shorten(name, 26)}   {amount} · {v / total:.0%}")
    legend_ax.legend(
        wedges,
        [plain(e) for e in entries],
        loc="center left",
        **{**legend_props(), "handlelength": 1.0, "labelspacing": 0.7},
    )


def _hist(fig: Figure, spec: ChartSpec, data: ChartData, currency: str) -> None:
    ax = fig.add_subplot()
    style_axes(ax, "y")
    pooled = data.finite_values()
    if np.ptp(pooled) == 0:
        # One distinct value: a single bar, narrow, in a range that shows it is one value.
        v = float(pooled[0])
        half = abs(v) * 0.05 or 0.5
        edges = np.array([v - half, v + half])
        ax.set_xlim(v - 6 * half, v + 6 * half)
    else:
        edges = np.histogram_bin_edges(pooled, bins="auto")
    if len(edges) > 41:
        edges = np.histogram_bin_edges(pooled, bins=40)
    k = len(data.series)
    handles = []
    for i, s in enumerate(data.series):
        color = color_for(i, other=s.other)
        ax.hist(
            s.y,
            bins=list(edges),
            color=color,
            alpha=1.0 if k == 1 else 0.55,
            edgecolor="white",
            linewidth=0.6,
            zorder=2,
        )
        handles.append(Patch(facecolor=color, alpha=0.55))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(ValueFormatter(spec.format, currency))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.yaxis.set_major_formatter(PlainNumberFormatter())
    ax.margins(x=0.01, y=0.08)
    ax.set_xlabel(plain(words(data.value_name)), **text_props())
    ax.set_ylabel("Count", **text_props())
    _legend(ax, handles, [s.label for s in data.series])


_DRAWERS: dict[str, Callable[[Figure, ChartSpec, ChartData, str], None]] = {
    "line": _line,
    "area": _area,
    "bar": _bar,
    "barh": _barh,
    "scatter": _scatter,
    "pie": _pie,
    "hist": _hist,
}
