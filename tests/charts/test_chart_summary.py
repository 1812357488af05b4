"""One-line text alternatives for screen readers and email clients."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pandas as pd
import pytest

from eil_pipelines.charts import chart_summary, draw_chart
from eil_pipelines.charts.style import TYPE_WORDS
from eil_pipelines.spec.models import ChartSpec, ChartType

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


@pytest.mark.parametrize("chart_type", get_args(ChartType))
def test_every_chart_type_has_a_summary(chart_type):
    df = pd.DataFrame({"region": ["EMEA", "APAC"], "revenue": [3.0, 5.0]})
    chart = spec(name="revenue", type=chart_type, x="region", y="revenue")
    if chart_type == "scatter":
        df = pd.DataFrame({"units": [1.0, 2.0], "revenue": [3.0, 5.0]})
        chart = spec(name="revenue", type=chart_type, x="units", y="revenue")
    assert chart_summary(chart, df).startswith(f"Revenue: {TYPE_WORDS[chart_type]} of revenue")


def test_area_chart_names_each_series_latest_value_largest_first():
    df = pd.DataFrame({"day": DAYS[:3], "cost": [5.0, 6.0, 7.0], "revenue": [10.0, 11.0, 12.0]})
    chart = spec(name="money", type="area", x="day", y=["cost", "revenue"])
    assert chart_summary(chart, df) == (
        "Money: area chart of cost and revenue by day, from 2026-11-01 to 2026-11-03; "
        "latest Revenue 12, Cost 7."
    )


def test_line_over_categories_says_last_not_latest():
    df = pd.DataFrame({"stage": ["Lead", "Trial", "Paid"], "users": [100.0, 40.0, 10.0]})
    chart = spec(name="funnel", x="stage", y="users")
    assert chart_summary(chart, df) == (
        "Funnel: line chart of users by stage, 3 categories; last 10."
    )


def test_line_over_numbers_gives_their_range():
    df = pd.DataFrame({"year": [2023, 2021, 2022], "revenue": [3.0, 1.0, 2.0]})
    chart = spec(name="revenue", x="year", y="revenue")
    assert chart_summary(chart, df) == (
        "Revenue: line chart of revenue by year, from 2021 to 2023; latest 3."
    )


def test_horizontal_bars_with_series_name_the_series_of_the_highest_bar():
    df = pd.DataFrame({"team": ["Ops", "Sales"], "plan": [4.0, 9.0], "actual": [5.0, 8.0]})
    chart = spec(name="effort", type="barh", x="team", y=["plan", "actual"])
    assert chart_summary(chart, df) == (
        "Effort: horizontal bar chart of plan and actual by team, 2 categories; "
        "highest Sales (Plan) 9."
    )


def test_scatter_over_time_counts_points_and_gives_the_dates():
    df = pd.DataFrame({"day": DAYS[:4], "revenue": [1.0, np.nan, 3.0, 4.0]})
    chart = spec(name="orders", type="scatter", x="day", y="revenue")
    assert chart_summary(chart, df) == (
        "Orders: scatter plot of revenue by day, 3 points, from 2026-11-01 to 2026-11-04."
    )


def test_bar_target_counts_the_bars_at_or_above_it():
    df = pd.DataFrame({"rep": ["Ann", "Bo", "Cy"], "sales": [50.0, 40.0, 60.0]})
    chart = spec(name="sales", type="bar", x="rep", y="sales", target=50, target_label="Quota")
    assert chart_summary(chart, df) == (
        "Sales: bar chart of sales by rep, 3 categories; highest Cy 60; "
        "quota 50, 2 of 3 at or above it."
    )
