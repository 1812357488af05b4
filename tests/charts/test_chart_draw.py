"""Every chart type draws, and the data shapes executives' data comes in do not break it."""

from __future__ import annotations

import itertools
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from eil_pipelines.charts import NO_DATA_TEXT, draw_chart, render_chart
from eil_pipelines.spec.models import ChartSpec

DAYS = pd.date_range("2026-11-01", periods=27, freq="D")


def long_frame(regions=("EMEA", "APAC", "AMER")) -> pd.DataFrame:
    rows = []
    for r, region in enumerate(regions):
        for i, day in enumerate(DAYS):
            rows.append((day, region, 1000.0 * (len(regions) - r) + i))
    return pd.DataFrame(rows, columns=["day", "region", "revenue"])


def spec(**kw) -> ChartSpec:
    kw.setdefault("name", "test_chart")
    kw.setdefault("query", "daily")
    return ChartSpec(**kw)


def texts(fig: Figure) -> list[str]:
    """Every piece of text drawn on the figure (titles, labels, annotations)."""
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


def tick_labels(axis) -> list[str]:
    """The non-empty tick labels, as the locator and formatter produce them."""
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text()]


CASES = {
    "line": (dict(type="line", x="day", y="revenue", series="region"), long_frame()),
    "bar": (
        dict(type="bar", x="region", y="revenue"),
        pd.DataFrame({"region": ["EMEA", "APAC", "AMER"], "revenue": [3.0, 2.0, 1.0]}),
    ),
    "barh": (
        dict(type="barh", x="region", y=["revenue", "cost"]),
        pd.DataFrame({"region": ["EMEA", "APAC"], "revenue": [3.0, 2.0], "cost": [1.0, 1.5]}),
    ),
    "area": (dict(type="area", x="day", y="revenue", series="region"), long_frame()),
    "scatter": (
        dict(type="scatter", x="visits", y="revenue"),
        pd.DataFrame({"visits": [1, 5, 9, 12], "revenue": [10.0, 40.0, 80.0, 95.0]}),
    ),
    "pie": (
        dict(type="pie", x="region", y="revenue"),
        pd.DataFrame({"region": ["EMEA", "APAC", "AMER"], "revenue": [50.0, 30.0, 20.0]}),
    ),
    "hist": (dict(type="hist", y="revenue"), pd.DataFrame({"revenue": np.arange(100.0)})),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_every_type_draws_and_renders_to_png_and_svg(kind):
    import xml.etree.ElementTree as ET

    kw, df = CASES[kind]
    fig = draw_chart(spec(**kw), df)
    assert isinstance(fig, Figure)
    assert NO_DATA_TEXT not in texts(fig)
    png = render_chart(fig, "png", close=False)
    svg = render_chart(fig, "svg")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_title_defaults_to_the_chart_name_in_words():
    kw, df = CASES["bar"]
    fig = draw_chart(spec(name="revenue_by_region", **kw), df)
    assert fig.get_suptitle() == "Revenue by region"
    fig = draw_chart(spec(name="revenue_by_region", title="Sales, Q4", **kw), df)
    assert fig.get_suptitle() == "Sales, Q4"


def test_series_column_pivots_into_one_line_per_value():
    fig = draw_chart(spec(type="line", x="day", y="revenue", series="region"), long_frame())
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    assert all(len(line.get_xdata()) == len(DAYS) for line in lines)
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["EMEA", "APAC", "AMER"]


def test_list_of_y_columns_draws_one_line_each_and_one_series_has_no_legend():
    df = pd.DataFrame({"day": DAYS[:5], "revenue": [1.0, 2, 3, 4, 5], "cost": [1.0, 1, 1, 2, 2]})
    fig = draw_chart(spec(type="line", x="day", y=["revenue", "cost"]), df)
    assert len(fig.axes[0].get_lines()) == 2
    assert fig.axes[0].get_legend() is not None
    single = draw_chart(spec(type="line", x="day", y="revenue"), df)
    assert len(single.axes[0].get_lines()) == 1
    assert single.axes[0].get_legend() is None


def test_series_beyond_the_palette_fold_into_other():
    regions = [f"R{i:02d}" for i in range(12)]
    fig = draw_chart(spec(type="line", x="day", y="revenue", series="region"), long_frame(regions))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(fig.axes[0].get_lines()) == 7
    assert labels[-1] == "Other (6)"
    assert labels[0] == "R00"  # the largest series comes first


def test_200_categories_keep_the_top_ones_and_fold_the_rest_into_other():
    df = pd.DataFrame({"product": [f"P{i}" for i in range(200)], "revenue": np.arange(200.0)})
    fig = draw_chart(spec(type="bar", x="product", y="revenue"), df)
    ax = fig.axes[0]
    assert len(ax.patches) == 12
    labels = tick_labels(ax.xaxis)
    assert labels[0] == "P199"
    assert labels[-1] == "Other (189)"
    # Other holds the sum of the 189 smallest, drawn cut short so the top bars stay readable.
    bar_labels = [t.get_text() for t in ax.texts]
    assert bar_labels[-1] == "17.8K"  # 0 + 1 + … + 188 = 17,766
    assert ax.patches[-1].get_height() < 199 * 1.5


def test_pie_keeps_the_top_slices_and_other():
    df = pd.DataFrame({"product": [f"P{i}" for i in range(200)], "revenue": np.arange(1.0, 201)})
    fig = draw_chart(spec(type="pie", x="product", y="revenue"), df)
    legend_texts = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert len(legend_texts) == 6
    assert legend_texts[0].startswith("P199")
    assert legend_texts[-1].startswith("Other (195)")


def test_negative_values_and_missing_values_do_not_break_any_type():
    df = pd.DataFrame(
        {
            "day": DAYS[:8],
            "region": ["A", "B"] * 4,
            "revenue": [5.0, -3.0, np.nan, 2.0, -7.5, np.nan, 4.0, 1.0],
        }
    )
    for kind in ("line", "bar", "barh", "area", "scatter", "hist"):
        kw = {"type": kind, "y": "revenue"}
        if kind != "hist":
            kw["x"] = "day"
        fig = draw_chart(spec(**kw), df)
        assert NO_DATA_TEXT not in texts(fig), kind
        assert render_chart(fig, "png").startswith(b"\x89PNG")
    pie = draw_chart(spec(type="pie", x="region", y="revenue"), df.iloc[:2])
    assert "Not shown: 1 negative value (B -3)" in texts(pie)


def test_missing_values_leave_gaps_in_lines():
    y = [1.0, 2.0, np.nan, 4.0, 5.0]
    fig = draw_chart(
        spec(type="line", x="day", y="revenue"), pd.DataFrame({"day": DAYS[:5], "revenue": y})
    )
    drawn = fig.axes[0].get_lines()[0].get_ydata()
    assert np.isnan(drawn[2]) and list(drawn[[0, 1, 3, 4]]) == [1.0, 2.0, 4.0, 5.0]


def test_last_value_is_labelled_on_line_charts():
    df = pd.DataFrame({"day": DAYS[:3], "revenue": [10_000.0, 11_000.0, 12_345.0]})
    fig = draw_chart(spec(type="line", x="day", y="revenue", format="currency"), df)
    assert "\\$12.3K" in [t.get_text() for t in fig.axes[0].texts]


def test_value_axis_uses_the_chart_format():
    df = pd.DataFrame({"day": DAYS[:3], "share": [0.1, 0.2, 0.3]})
    fig = draw_chart(spec(type="line", x="day", y="share", format="percent"), df)
    labels = tick_labels(fig.axes[0].yaxis)
    assert labels and all(t.endswith("%") for t in labels)
    assert "20%" in labels


def test_large_values_print_compactly_by_default():
    df = pd.DataFrame({"region": ["A", "B"], "revenue": [1_500_000.0, 830_000.0]})
    fig = draw_chart(spec(type="bar", x="region", y="revenue"), df)
    labels = tick_labels(fig.axes[0].yaxis)
    assert "1M" in labels and "500K" in labels


def test_one_point_is_drawn_with_a_dot_and_a_single_date_tick():
    df = pd.DataFrame({"day": [pd.Timestamp("2026-11-03")], "revenue": [1234.0]})
    fig = draw_chart(spec(type="line", x="day", y="revenue"), df)
    ax = fig.axes[0]
    line = ax.get_lines()[0]
    assert line.get_marker() == "o" and list(line.get_markevery()) == [True]
    assert tick_labels(ax.xaxis) == ["3 Nov 2026"]
    assert ax.get_ylim()[0] <= 0  # a lone value is measured from zero


def test_empty_result_draws_no_data_figure():
    df = long_frame().iloc[:0]
    fig = draw_chart(spec(type="line", x="day", y="revenue", series="region"), df)
    assert NO_DATA_TEXT in texts(fig)
    assert render_chart(fig, "png").startswith(b"\x89PNG")


def test_all_missing_values_count_as_no_data():
    df = pd.DataFrame({"day": DAYS[:3], "revenue": [None, None, None]})
    fig = draw_chart(spec(type="bar", x="day", y="revenue"), df)
    assert NO_DATA_TEXT in texts(fig)


def test_iso_date_text_and_decimal_values_are_understood():
    # What SQLite hands back: dates as text, DECIMAL as Python objects.
    df = pd.DataFrame(
        {
            "day": ["2026-11-01", "2026-11-02", "2026-11-03"],
            "revenue": [Decimal("1.5"), Decimal("2.5"), None],
        }
    )
    fig = draw_chart(spec(type="line", x="day", y="revenue"), df)
    assert fig.axes[0].get_lines()[0].get_xdata()[0] == pytest.approx(20758.0)  # days since 1970


def test_duplicate_x_without_series_is_summed():
    df = long_frame()
    fig = draw_chart(spec(type="line", x="day", y="revenue"), df)
    first = fig.axes[0].get_lines()[0].get_ydata()[0]
    assert first == 3000.0 + 2000.0 + 1000.0


def test_categories_keep_query_order_under_the_limit():
    df = pd.DataFrame({"stage": ["Visit", "Signup", "Paid"], "users": [1.0, 5.0, 3.0]})
    fig = draw_chart(spec(type="bar", x="stage", y="users"), df)
    assert tick_labels(fig.axes[0].xaxis) == ["Visit", "Signup", "Paid"]


def test_a_repeated_index_does_not_multiply_rows():
    df = pd.DataFrame(
        {"day": DAYS[:4], "region": ["A", "B", "A", "B"], "revenue": [1.0, 2.0, 3.0, 4.0]},
        index=[0, 0, 1, 1],
    )
    fig = draw_chart(spec(type="bar", x="day", y="revenue", series="region"), df)
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    assert heights == [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0]


LAYOUT_CASES = {
    **CASES,
    "rotated long categories": (
        dict(type="bar", x="store", y="revenue", title="A rather long title for a small chart"),
        pd.DataFrame(
            {
                "store": [f"Flagship store number {i} downtown" for i in range(14)],
                "revenue": np.arange(14.0) * 12_345,
            }
        ),
    ),
    "folded into Other, with a note": (
        dict(type="barh", x="cat", y="v", format="currency"),
        pd.DataFrame({"cat": [f"Category {i:03d}" for i in range(200)], "v": np.arange(200.0)}),
    ),
    "empty": (dict(type="line", x="day", y="revenue"), long_frame().iloc[:0]),
}


@pytest.mark.parametrize("case", sorted(LAYOUT_CASES))
def test_layout_keeps_every_text_inside_the_figure_and_clear_of_the_title(case):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    kw, df = LAYOUT_CASES[case]
    fig = draw_chart(spec(**kw), df)
    FigureCanvasAgg(fig).draw()  # the first draw solves the layout
    assert fig.laid_out
    renderer = fig.canvas.get_renderer()
    width, height = fig.canvas.get_width_height()
    title = fig._suptitle.get_window_extent(renderer)
    # Axes boxes take in what each draws: tick labels in view, legends,
    # annotations (end labels, targets); the figure adds its title and notes.
    boxes = {f"axes {i}": ax.get_tightbbox(renderer) for i, ax in enumerate(fig.axes)}
    for text in (fig._suptitle, fig._supxlabel):
        if text is not None and text.get_visible() and text.get_text():
            boxes[repr(text.get_text())] = text.get_window_extent(renderer)
    assert len(boxes) >= 2
    for what, box in boxes.items():
        where = f"{what} at {tuple(round(v) for v in box.bounds)}"
        assert box.x0 >= -0.5 and box.y0 >= -0.5, f"{where} is cut at the left or bottom"
        assert box.x1 <= width + 0.5 and box.y1 <= height + 0.5, f"{where} is cut at the edge"
    for ax in fig.axes:
        if ax.axison:
            assert ax.get_window_extent(renderer).y1 < title.y0, "the plot runs into the title"


@pytest.mark.parametrize("kind", ["bar", "barh"])
def test_upright_and_lying_bars_each_use_their_own_axes(kind):
    df = pd.DataFrame({"rep": ["Ann", "Bo", "Cy"], "sales": [50.0, 40.0, 60.0]})
    fig = draw_chart(spec(type=kind, x="rep", y="sales", target=55), df)
    ax = fig.axes[0]
    bars = ax.patches
    target = [t.xy for t in ax.texts if t.get_text() == "Target 55"]
    if kind == "bar":
        assert [b.get_height() for b in bars] == [50.0, 40.0, 60.0]
        assert [round(b.get_x() + b.get_width() / 2) for b in bars] == [0, 1, 2]
        # Three bars keep the width they would have among five.
        assert ax.get_xlim() == (-1.5, 3.5)
        assert target == [(1.0, 55.0)]  # at the right end of the line
    else:
        assert [b.get_width() for b in bars] == [50.0, 40.0, 60.0]
        assert [round(b.get_y() + b.get_height() / 2) for b in bars] == [0, 1, 2]
        # Inverted, so the first category is on top; three bars sized as among four.
        assert ax.get_ylim() == (3.0, -1.0)
        assert target == [(55.0, 1.0)]  # above the plot
    assert {"50", "40", "60"} <= set(texts(fig))


@pytest.mark.parametrize(
    "days",
    [
        pd.date_range("2026-01-05", periods=26, freq="W-MON"),
        pd.date_range("2026-01-01", periods=60, freq="D"),
        pd.date_range("2026-01-01", periods=48, freq="h"),
        pd.date_range("2025-01-01", periods=13, freq="MS"),
        pd.date_range("2026-11-22", periods=7, freq="D"),
        pd.date_range("2024-01-01", periods=8, freq="QS"),
    ],
    ids=["26-weeks", "60-days", "48-hours", "13-months", "7-days", "8-quarters"],
)
@pytest.mark.parametrize("series", [False, True], ids=["one-line", "three-lines"])
def test_end_ticks_never_collide_with_each_other_the_edge_or_the_end_labels(days, series):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    n = len(days)
    frame = pd.DataFrame({"day": days, "revenue": np.linspace(115e6, 125e6, n)})
    kw = dict(type="line", x="day", y="revenue", format="currency")
    if series:
        frame = pd.concat(
            [
                frame.assign(region=r, revenue=frame.revenue * (1 + i / 10))
                for i, r in enumerate(["EMEA", "APAC", "AMER"])
            ]
        )
        kw["series"] = "region"
    fig = draw_chart(spec(**kw), frame)
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    width, _ = fig.canvas.get_width_height()
    ax = fig.axes[0]
    ticks = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    assert len(ticks) >= 3
    boxes = [t.get_window_extent(renderer) for t in ticks]
    for (a, box_a), (b, box_b) in itertools.pairwise(zip(ticks, boxes, strict=True)):
        assert box_a.x1 < box_b.x0, f"{a.get_text()!r} runs into {b.get_text()!r}"
    # The first and last tick labels keep clear of the figure's edges …
    assert boxes[0].x0 >= 4 and boxes[-1].x1 <= width - 4, [t.get_text() for t in ticks]
    # … and of the value labels at the lines' ends.
    ends = [t for t in ax.texts if t.get_visible() and t.get_text()]  # end labels, notes
    assert ends
    for end in ends:
        box = end.get_window_extent(renderer)
        for tick, tick_box in zip(ticks, boxes, strict=True):
            assert not tick_box.overlaps(box), (tick.get_text(), end.get_text())
