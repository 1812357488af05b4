"""One-line text alternatives for screen readers and email clients."""

from __future__ import annotations

import numpy as np
import pandas as pd

from eil_pipelines.charts import chart_summary, draw_chart
from eil_pipelines.spec.models import ChartSpec

DAYS = pd.date_range("2026-11-01", "2026-11-27", freq="D")


def spec(**kw) -> ChartSpec:
    kw.setdefault("query", "daily")
    return ChartSpec(**kw)


def regions() -> pd.DataFrame:
    rows = []
    for region, base in (("EMEA", 12_000.0), ("APAC", 9_000.0), ("AMER", 4_000.0)):
        rows += [(day, region, base + 10 * i) for i, day in enumerate(DAYS)]
    return pd.DataFrame(rows, columns=["day", "region", "revenue"])


def test_line_chart_with_series():
    chart = spec(name="revenue_by_day_and_region", x="day", y="revenue", series="region")
    assert chart_summary(chart, regions()) == (
        "Revenue by day and region: line chart of revenue by day for 3 series "
        "(EMEA, APAC, AMER), from 2026-11-01 to 2026-11-27; "
        "latest EMEA 12.3K, APAC 9.26K, AMER 4.26K."
    )


def test_single_series_uses_the_format_and_title():
    df = pd.DataFrame({"day": DAYS[:3], "margin": [0.1, 0.12, 0.125]})
    chart = spec(name="m", title="Gross margin", x="day", y="margin", format="percent")
    assert chart_summary(chart, df) == (
        "Gross margin: line chart of margin by day, from 2026-11-01 to 2026-11-03; latest 12.5%."
    )


def test_bar_chart_names_the_highest_real_category_not_other():
    df = pd.DataFrame({"product": [f"P{i}" for i in range(30)], "revenue": np.arange(30.0)})
    chart = spec(name="top_products", type="bar", x="product", y="revenue", format="currency")
    assert chart_summary(chart, df) == (
        "Top products: bar chart of revenue by product, 30 categories; highest P29 $29.00."
    )


def test_pie_chart_gives_the_largest_share_and_negatives_left_out():
    df = pd.DataFrame({"region": ["EMEA", "APAC", "AMER"], "profit": [600.0, 200.0, -50.0]})
    chart = spec(name="profit_share", type="pie", x="region", y="profit")
    assert chart_summary(chart, df) == (
        "Profit share: pie chart of profit by region, 3 categories; "
        "largest EMEA 600 (75% of 800 total); not shown: 1 negative value (AMER -50)."
    )


def test_histogram():
    df = pd.DataFrame({"order_value": [10.0, 20.0, 30.0, 40.0]})
    chart = spec(name="order_values", type="hist", y="order_value")
    assert chart_summary(chart, df) == (
        "Order values: histogram of order value, 4 values from 10 to 40; median 25."
    )


def test_empty_result():
    chart = spec(name="revenue_by_day", x="day", y="revenue")
    assert chart_summary(chart, regions().iloc[:0]) == "Revenue by day: no data for this period."


def test_the_figure_carries_the_same_summary():
    chart = spec(name="revenue_by_day_and_region", x="day", y="revenue", series="region")
    assert draw_chart(chart, regions()).summary == chart_summary(chart, regions())
