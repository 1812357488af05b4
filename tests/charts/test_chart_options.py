"""The chart keys ``target``, ``target_label``, ``sort`` and ``limit``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from eil_pipelines.charts import chart_summary, draw_chart, render_chart
from eil_pipelines.charts.style import PALETTE, TARGET_COLOR, TOP_CATEGORIES
from eil_pipelines.spec.models import ChartSpec

DAYS = pd.date_range("2026-11-01", periods=10, freq="D")
# Query order differs from value order, so a missing sort would show.
STORES = pd.DataFrame(
    {
        "store": ["North", "South", "East", "West", "Centre"],
        "revenue": [30.0, 50.0, 10.0, 40.0, 20.0],
    }
)


def spec(**kw) -> ChartSpec:
    kw.setdefault("name", "options")
    kw.setdefault("query", "q")
    return ChartSpec(**kw)


def many(n: int) -> pd.DataFrame:
    """``n`` categories C00…, C00 the smallest, in query order."""
    return pd.DataFrame({"cat": [f"C{i:02d}" for i in range(n)], "v": np.arange(1.0, n + 1)})


def drawn(fig: Figure) -> Figure:
    fig.canvas.draw()  # tick labels and layout exist only once drawn
    return fig


def tick_labels(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


def bar_values(ax: Axes, *, horizontal: bool = False) -> list[float]:
    """Bar lengths in category order (position 0 first)."""
    if horizontal:
        bars = sorted(ax.patches, key=lambda p: p.get_y())
        return [p.get_width() for p in bars]
    bars = sorted(ax.patches, key=lambda p: p.get_x())
    return [p.get_height() for p in bars]


def target_lines(ax: Axes) -> list:
    return [
        line
        for line in ax.get_lines()
        if line.get_color() == TARGET_COLOR and line.get_linestyle() == "--"
    ]


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


# --- sort -------------------------------------------------------------------------


def test_without_sort_bars_keep_the_query_order():
    fig = drawn(draw_chart(spec(type="bar", x="store", y="revenue"), STORES))
    ax = fig.axes[0]
    assert tick_labels(ax.xaxis) == ["North", "South", "East", "West", "Centre"]
    assert bar_values(ax) == [30, 50, 10, 40, 20]


@pytest.mark.parametrize(
    ("order", "labels", "values"),
    [
        ("desc", ["South", "West", "North", "Centre", "East"], [50, 40, 30, 20, 10]),
        ("asc", ["East", "Centre", "North", "West", "South"], [10, 20, 30, 40, 50]),
    ],
)
def test_sort_orders_bars_by_value(order, labels, values):
    fig = drawn(draw_chart(spec(type="bar", x="store", y="revenue", sort=order), STORES))
    ax = fig.axes[0]
    assert tick_labels(ax.xaxis) == labels
    assert bar_values(ax) == values


def test_sort_desc_on_barh_puts_the_largest_on_top():
    fig = drawn(draw_chart(spec(type="barh", x="store", y="revenue", sort="desc"), STORES))
    ax = fig.axes[0]
    top = min(ax.patches, key=lambda p: p.get_window_extent().y0 * -1)
    assert top.get_width() == 50
    assert tick_labels(ax.yaxis)[0] == "South"
    assert bar_values(ax, horizontal=True) == [50, 40, 30, 20, 10]


def test_sort_by_the_total_of_several_series():
    df = pd.DataFrame(
        {"store": ["A", "B", "C"], "online": [1.0, 5.0, 2.0], "retail": [9.0, 1.0, 2.0]}
    )
    fig = drawn(draw_chart(spec(type="bar", x="store", y=["online", "retail"], sort="desc"), df))
    assert tick_labels(fig.axes[0].xaxis) == ["A", "B", "C"]  # totals 10, 6, 4
    fig = drawn(draw_chart(spec(type="bar", x="store", y=["online", "retail"], sort="asc"), df))
    assert tick_labels(fig.axes[0].xaxis) == ["C", "B", "A"]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sort_puts_missing_values_last_in_either_order(order):
    df = pd.DataFrame({"store": ["A", "B", "C"], "v": [2.0, None, 1.0]})
    fig = drawn(draw_chart(spec(type="bar", x="store", y="v", sort=order), df))
    labels = tick_labels(fig.axes[0].xaxis)
    assert labels[-1] == "B"
    assert labels[:2] == (["A", "C"] if order == "desc" else ["C", "A"])


def test_sort_with_negative_values_is_by_signed_value():
    df = pd.DataFrame({"unit": ["A", "B", "C"], "margin": [-30.0, 10.0, 20.0]})
    fig = drawn(draw_chart(spec(type="bar", x="unit", y="margin", sort="desc"), df))
    assert tick_labels(fig.axes[0].xaxis) == ["C", "B", "A"]


def test_sort_keeps_other_last():
    df = many(20)
    fig = drawn(draw_chart(spec(type="bar", x="cat", y="v", sort="asc"), df))
    labels = tick_labels(fig.axes[0].xaxis)
    keep = TOP_CATEGORIES["bar"] - 1
    assert labels[-1] == f"Other ({20 - keep})"
    assert labels[:-1] == [f"C{i:02d}" for i in range(20 - keep, 20)]  # ascending
    assert bar_values(fig.axes[0])[:-1] == sorted(bar_values(fig.axes[0])[:-1])


def test_sort_on_dated_bars_labels_each_date():
    df = pd.DataFrame({"day": DAYS[:3], "v": [2.0, 3.0, 1.0]})
    fig = drawn(draw_chart(spec(type="bar", x="day", y="v", sort="desc"), df))
    assert tick_labels(fig.axes[0].xaxis) == ["2 Nov", "1 Nov", "3 Nov"]


# --- limit ------------------------------------------------------------------------


def test_limit_keeps_the_top_n_and_adds_the_rest_up_as_other():
    df = many(8)  # values 1..8
    fig = drawn(draw_chart(spec(type="bar", x="cat", y="v", limit=3), df))
    ax = fig.axes[0]
    assert tick_labels(ax.xaxis) == ["C07", "C06", "C05", "Other (5)"]
    assert bar_values(ax)[:3] == [8, 7, 6]
    # The "Other" bar is 15 (1+…+5), cut short at 1.3 × the largest bar and
    # labelled with its true value.
    assert "15" in texts(fig)


def test_limit_overrides_the_default_threshold_upwards():
    n = TOP_CATEGORIES["bar"] + 4
    fig = drawn(draw_chart(spec(type="bar", x="cat", y="v"), many(n)))
    assert len(fig.axes[0].patches) == TOP_CATEGORIES["bar"]  # the default folds
    fig = drawn(draw_chart(spec(type="bar", x="cat", y="v", limit=n), many(n)))
    assert len(fig.axes[0].patches) == n
    assert not any(t.startswith("Other") for t in tick_labels(fig.axes[0].xaxis))


def test_limit_never_folds_a_single_category():
    fig = drawn(draw_chart(spec(type="barh", x="cat", y="v", limit=4), many(5)))
    labels = tick_labels(fig.axes[0].yaxis)
    assert labels == ["C00", "C01", "C02", "C03", "C04"]  # all named, query order
    fig = drawn(draw_chart(spec(type="barh", x="cat", y="v", limit=4), many(6)))
    assert tick_labels(fig.axes[0].yaxis)[-1] == "Other (2)"


def test_limit_and_sort_together():
    fig = drawn(draw_chart(spec(type="bar", x="cat", y="v", limit=3, sort="asc"), many(8)))
    assert tick_labels(fig.axes[0].xaxis) == ["C05", "C06", "C07", "Other (5)"]


def test_limit_on_a_pie_folds_into_a_grey_slice():
    fig = draw_chart(spec(type="pie", x="cat", y="v", limit=2), many(6))
    legend = fig.axes[1].get_legend()
    entries = [t.get_text() for t in legend.get_texts()]
    assert [e.split()[0] for e in entries] == ["C05", "C04", "Other"]
    assert entries[2].startswith("Other (4)")
    wedges = fig.axes[0].patches
    assert len(wedges) == 3


def test_limit_on_a_pie_never_repeats_a_colour():
    fig = draw_chart(spec(type="pie", x="cat", y="v", limit=50), many(30))
    wedges = fig.axes[0].patches
    assert len(wedges) == len(PALETTE)  # the palette's colours less one, and "Other"
    colours = [tuple(w.get_facecolor()) for w in wedges]
    assert len(set(colours)) == len(colours)


def test_summary_counts_every_category_with_a_limit():
    text = chart_summary(spec(type="bar", x="cat", y="v", limit=3), many(8))
    assert "8 categories" in text
    assert "highest C07 8" in text


# --- target -----------------------------------------------------------------------


def test_no_target_no_line():
    fig = draw_chart(spec(type="line", x="day", y="v"), pd.DataFrame({"day": DAYS, "v": 1.0}))
    assert target_lines(fig.axes[0]) == []
    assert not any(t.startswith("Target") for t in texts(fig))


@pytest.mark.parametrize("kind", ["line", "area", "bar"])
def test_target_is_a_dashed_horizontal_line_labelled_with_its_value(kind):
    df = pd.DataFrame({"day": DAYS, "revenue": np.linspace(10_000, 60_000, len(DAYS))})
    fig = drawn(
        draw_chart(
            spec(type=kind, x="day", y="revenue", target=50_000, format="currency"),
            df,
        )
    )
    ax = fig.axes[0]
    (line,) = target_lines(ax)
    assert list(line.get_ydata()) == [50_000, 50_000]
    assert list(line.get_xdata()) == [0, 1]  # across the whole plot
    assert r"Target \$50K" in texts(fig)  # "$" escaped from mathtext


def test_target_on_barh_stands_upright_with_its_label_above():
    fig = drawn(draw_chart(spec(type="barh", x="store", y="revenue", target=35), STORES))
    ax = fig.axes[0]
    (line,) = target_lines(ax)
    assert list(line.get_xdata()) == [35, 35]
    label = next(t for t in ax.texts if t.get_text() == "Target 35")
    box = label.get_window_extent()
    assert box.y0 >= ax.get_window_extent().y1  # above the plot
    assert box.x0 < line.get_window_extent().x0 < box.x1  # centred on the line


def test_target_label_is_configurable():
    fig = draw_chart(
        spec(type="bar", x="store", y="revenue", target=25, target_label="Plan"), STORES
    )
    assert "Plan 25" in texts(fig)
    assert not any(t.startswith("Target") for t in texts(fig))


@pytest.mark.parametrize(("kind", "target"), [("line", 500.0), ("bar", -80.0), ("barh", 90.0)])
def test_a_target_far_from_the_data_is_still_in_view(kind, target):
    fig = drawn(draw_chart(spec(type=kind, x="store", y="revenue", target=target), STORES))
    ax = fig.axes[0]
    lo, hi = ax.get_xlim() if kind == "barh" else ax.get_ylim()
    assert lo < target < hi


def test_a_target_on_a_one_point_line_chart_is_in_view():
    df = pd.DataFrame({"day": DAYS[:1], "v": [10.0]})
    fig = drawn(draw_chart(spec(type="line", x="day", y="v", target=40), df))
    lo, hi = fig.axes[0].get_ylim()
    assert lo < 40 < hi


def test_target_label_does_not_collide_with_the_last_value_label():
    df = pd.DataFrame({"day": DAYS, "v": np.linspace(1, 100, len(DAYS))})
    fig = drawn(draw_chart(spec(type="line", x="day", y="v", target=100), df))
    ax = fig.axes[0]
    end = next(t for t in ax.texts if t.get_text() == "100")
    target = next(t for t in ax.texts if t.get_text() == "Target 100")
    assert not end.get_window_extent().overlaps(target.get_window_extent())


def test_target_in_the_svg_and_the_summary():
    fig = draw_chart(
        spec(type="bar", x="store", y="revenue", target=35, target_label="Budget"), STORES
    )
    assert fig.summary.endswith("; budget 35, 2 of 5 at or above it.")
    svg = render_chart(fig, "svg").decode()
    assert "stroke-dasharray" in svg
    assert TARGET_COLOR.lower() in svg.lower()


def test_summary_mentions_the_target_of_a_line_chart():
    df = pd.DataFrame({"day": DAYS, "v": np.arange(10.0)})
    text = chart_summary(spec(type="line", x="day", y="v", target=12, target_label="SLA"), df)
    assert text.endswith("; latest 9; SLA 12.")
