"""The house style: one look for every chart type.

Everything here is set per artist or per axes, never through the global
``matplotlib.rcParams``: runs draw charts in worker threads at the same time,
and ``rc_context`` swaps the whole global dictionary in and out, so two threads
would restore each other's settings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import Formatter

from ..formatting import format_compact, format_currency, format_number, format_percent

# Okabe & Ito (2008): distinguishable under the common colour-vision
# deficiencies.  Ordered so that the first three, which most charts use, are
# also far apart in lightness (they survive greyscale printing).
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow: last, it is faint on white
)
OTHER_COLOR = "#A6A6A6"
NEGATIVE_COLOR = "#D55E00"

TEXT_COLOR = "#1F1F1F"
MUTED_COLOR = "#5F5F5F"
GRID_COLOR = "#E3E3E3"
SPINE_COLOR = "#9A9A9A"
ZERO_LINE_COLOR = "#7A7A7A"
#: Target lines: dark and dashed, apart from every palette colour.
TARGET_COLOR = "#3B3B3B"
BACKGROUND = "#FFFFFF"

FONT_FAMILY = "DejaVu Sans"  # the one family guaranteed to be installed
TITLE_SIZE = 13
LABEL_SIZE = 9.5
TICK_SIZE = 9
NOTE_SIZE = 8.5

FIGSIZE = (8.0, 3.6)
PNG_DPI = 100
PNG_SCALE = 2
"""PNGs are drawn at twice ``PNG_DPI`` (1600 × 720 for 8 × 3.6 in): sharp on high-density
screens and in print; mail and Markdown viewers show them at their width in inches."""
LINE_WIDTH = 2.0

#: More series than this and the smallest are folded into "Other".
MAX_SERIES = len(PALETTE)
#: Category charts keep the largest categories and fold the rest into "Other".
TOP_CATEGORIES = {"bar": 12, "barh": 15, "pie": 6}
#: Values at or above this print as 1.2K / 3.4M unless the chart says otherwise.
COMPACT_FROM = 10_000

TYPE_WORDS = {
    "line": "line chart",
    "bar": "bar chart",
    "barh": "horizontal bar chart",
    "area": "area chart",
    "scatter": "scatter plot",
    "pie": "pie chart",
    "hist": "histogram",
}


def color_for(index: int, *, other: bool = False) -> str:
    """The colour of the ``index``-th series; "Other" is always grey."""
    if other:
        return OTHER_COLOR
    return PALETTE[index % len(PALETTE)]


def words(name: str) -> str:
    """``"revenue_by_day"`` → ``"Revenue by day"``: names read as a phrase."""
    text = re.sub(r"[_\-\s]+", " ", name).strip()
    return text[:1].upper() + text[1:] if text else name


def lower_words(name: str) -> str:
    """``"Gross_Revenue"`` → ``"gross revenue"``, for use inside a sentence.

    Acronyms (``"EBITDA"``, ``"ARR"``) stay upper case.
    """
    out = []
    for word in re.sub(r"[_\-\s]+", " ", name).strip().split(" "):
        out.append(word if word.isupper() and len(word) > 1 else word.lower())
    return " ".join(out)


def plain(text: str) -> str:
    """Escape ``$`` so matplotlib never reads a label as mathtext.

    Two dollar signs in one label ("$1K to $2K") would otherwise switch to
    TeX-style math, which both garbles the text and goes through the
    mathtext parser, a shared global.
    """
    return text.replace("$", r"\$")


def shorten(text: str, limit: int = 24) -> str:
    """Cut long category labels so they do not squeeze the plot area."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def style_axes(ax: Axes, value_axis: Literal["x", "y"] | None = "y") -> None:
    """Spines, ticks and the light grid on the value axis only."""
    ax.set_facecolor(BACKGROUND)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(SPINE_COLOR)
        ax.spines[side].set_linewidth(0.8)
    ax.tick_params(
        axis="both",
        which="both",
        labelsize=TICK_SIZE,
        labelcolor=MUTED_COLOR,
        labelfontfamily=FONT_FAMILY,
        color=SPINE_COLOR,
        length=3,
        width=0.8,
    )
    ax.grid(False)
    if value_axis is not None:
        ax.grid(True, axis=value_axis, color=GRID_COLOR, linewidth=0.7)
        # The value axis reads from the grid, so its spine and ticks are noise.
        ax.spines["left" if value_axis == "y" else "bottom"].set_visible(False)
        ax.tick_params(axis=value_axis, length=0)


def text_props(size: float = LABEL_SIZE, color: str = MUTED_COLOR, **more: Any) -> dict[str, Any]:
    """Keyword arguments for a ``Text`` in the house font."""
    return {"fontfamily": FONT_FAMILY, "fontsize": size, "color": color, **more}


def legend_props() -> dict[str, Any]:
    """Keyword arguments for a frameless legend in the house font."""
    return {
        "frameon": False,
        "prop": {"family": FONT_FAMILY, "size": LABEL_SIZE},
        "labelcolor": TEXT_COLOR,
        "handlelength": 1.4,
        "handletextpad": 0.5,
        "columnspacing": 1.4,
        "borderaxespad": 0.2,
    }


def set_title(fig: Any, title: str) -> None:
    """A left-aligned title over the whole figure, as in a slide deck."""
    fig.suptitle(
        title,
        x=0.012,
        ha="left",
        parse_math=False,
        **text_props(TITLE_SIZE, TEXT_COLOR, fontweight="bold"),
    )


def _decimals_for(values: Sequence[float], most: int = 4) -> int:
    """Fewest decimals that print every value exactly (ticks 0, 2.5, 5 → 1)."""
    for places in range(most + 1):
        scale = 10**places
        if all(abs(v * scale - round(v * scale)) < 1e-6 * max(1.0, abs(v * scale)) for v in values):
            return places
    return most


def compact(value: float, symbol: str = "") -> str:
    """``830_000`` → ``830K``, ``1_250_000`` → ``1.25M``, ``-4_200`` → ``-4.2K``.

    Passes explicit decimals to :func:`format_compact` and trims zeros only
    after a decimal point: its own trimming turns ``830K`` into ``83K``.
    """
    magnitude = abs(float(value))
    scaled = magnitude
    for step in (1e12, 1e9, 1e6, 1e3):
        if magnitude >= step * 0.9995:
            scaled = magnitude / step
            break
    places = 2 if scaled < 10 else 1 if scaled < 100 else 0
    if scaled == magnitude and float(magnitude).is_integer():
        places = 0
    text = format_compact(value, decimals=places, symbol=symbol)
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit()).rstrip("0")
        suffix = "".join(ch for ch in tail if not ch.isdigit())
        text = f"{head}.{digits}{suffix}" if digits else f"{head}{suffix}"
    return text


def point_label(value: float, fmt: str | None, currency: str = "$", *, large: bool = False) -> str:
    """One value as a reader sees it on a label or in a summary: ``12.3K``, ``$4.5M``.

    ``large`` says the chart's values are big enough to print compactly even
    where this one value is small, so labels on one chart agree.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    big = large or abs(value) >= COMPACT_FROM
    if fmt == "percent":
        return format_percent(value)
    if fmt == "currency":
        return compact(value, symbol=currency) if big else format_currency(value, currency)
    if fmt == "compact" or (fmt is None and big):
        return compact(value)
    return format_number(value)


class ValueFormatter(Formatter):
    """Value-axis tick labels in the chart's number format.

    Decimals come from the tick positions as a whole, so a scale reads
    ``0.0, 0.5, 1.0`` rather than ``0, 0.50, 1``.
    """

    def __init__(self, fmt: str | None, currency: str = "$"):
        self.fmt = fmt
        self.currency = currency
        self._ticks: list[float] = []
        self._places = 0
        self._compact = False

    def set_locs(self, locs: Sequence[float]) -> None:
        self._ticks = [float(v) for v in locs]
        finite = [v for v in self._ticks if math.isfinite(v)] or [0.0]
        biggest = max(abs(v) for v in finite)
        self._compact = self.fmt == "compact" or (
            self.fmt in (None, "currency") and biggest >= COMPACT_FROM
        )
        scaled = [v * 100 for v in finite] if self.fmt == "percent" else finite
        self._places = _decimals_for(scaled)
        if self.fmt == "currency" and self._places:
            self._places = 2  # money shows cents or nothing

    def __call__(self, x: float, pos: int | None = None) -> str:
        if not self._ticks:
            self.set_locs([x])
        if self._compact:
            symbol = self.currency if self.fmt == "currency" else ""
            text = compact(x, symbol=symbol)
        elif self.fmt == "percent":
            text = format_percent(x, self._places)
        elif self.fmt == "currency":
            text = format_currency(x, self.currency, self._places)
        else:
            text = format_number(x, self._places)
        if text in ("-0", "-0%", "-$0"):
            text = text[1:]
        return plain(text)


class IndexFormatter(Formatter):
    """Category labels for an axis whose positions are 0, 1, 2, …"""

    def __init__(self, labels: Sequence[str]):
        self.labels = list(labels)

    def __call__(self, x: float, pos: int | None = None) -> str:
        i = round(x)
        if abs(x - i) > 1e-6 or not 0 <= i < len(self.labels):
            return ""
        return plain(self.labels[i])


class PlainNumberFormatter(Formatter):
    """Numbers on a non-value axis (a numeric x, counts): no offset, no ``1e6``.

    Like :class:`ValueFormatter`, the whole set of ticks is compact or none is.
    """

    def __init__(self, years: bool = False):
        self.years = years
        self._places = 0
        self._compact = False

    def set_locs(self, locs: Sequence[float]) -> None:
        finite = [float(v) for v in locs if math.isfinite(v)] or [0.0]
        self._places = _decimals_for(finite)
        self._compact = max(abs(v) for v in finite) >= COMPACT_FROM

    def __call__(self, x: float, pos: int | None = None) -> str:
        if self.years:
            # 2024 is a year, not "2,024".
            return str(round(x)) if abs(x - round(x)) < 1e-9 else ""
        if self._compact:
            return compact(x)
        return format_number(x, self._places)


def date_labels(stamps: Sequence[np.datetime64] | np.ndarray) -> list[str]:
    """Labels for dates shown as categories (bar charts), chosen by their spacing.

    Months print ``Jan 2026, Feb, Mar, …`` (the year where it starts or
    changes), days ``3 Nov``, hours of one day ``14:00``.
    """
    import pandas as pd

    index = pd.DatetimeIndex(stamps)
    if len(index) == 0:
        return []
    midnight = bool((index.normalize() == index).all())
    one_year = len(index.year.unique()) == 1
    if midnight and bool((index.day == 1).all()):
        if bool((index.month == 1).all()):
            return [str(t.year) for t in index]
        labels, year = [], None
        for t in index:
            labels.append(f"{t:%b} {t.year}" if t.year != year else f"{t:%b}")
            year = t.year
        return labels
    if midnight:
        if one_year:
            return [f"{t.day} {t:%b}" for t in index]
        return [f"{t.day} {t:%b} {t.year}" for t in index]
    if len(index.normalize().unique()) == 1:
        return [f"{t:%H:%M}" for t in index]
    return [f"{t.day} {t:%b} {t:%H:%M}" for t in index]
