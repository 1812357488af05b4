"""Number formats shared by KPIs, filters and chart axes."""

from __future__ import annotations

import math

import pytest

from eil_pipelines.formatting import (
    format_change,
    format_compact,
    format_currency,
    format_number,
    format_percent,
    format_value,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (950, "950"),
        (5300, "5.3K"),
        (100_000, "100K"),
        (830_000, "830K"),
        (1_240_000, "1.24M"),
        (1_500_000, "1.5M"),
        (120_000_000, "120M"),
        (999_600, "1M"),
        (-2_500, "-2.5K"),
        (3_000_000_000, "3B"),
        (12.5, "12.50"),
        (None, "–"),
        (math.nan, "–"),
    ],
)
def test_compact(value, expected):
    assert format_compact(value) == expected


def test_number_currency_percent_and_change():
    assert format_number(1234567.8) == "1,234,568"
    assert format_number(3.14159) == "3.14"
    assert format_currency(1234.5) == "$1,234.50"
    assert format_currency(-50) == "-$50.00"
    assert format_currency(25_000, "€") == "€25,000"
    assert format_percent(0.1234) == "12.3%"
    assert format_value(0.5, "percent", decimals=0) == "50%"
    assert format_change(0.124) == "▲ +12.4%"
    assert format_change(-0.05) == "▼ −5.0%"
    assert format_change(0) == "■ 0.0%"
    assert format_change(None) == "–"


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("c_custkey", None, "id"),
        ("customer_id", None, "id"),
        ("userId", None, "id"),
        ("order_year", None, "id"),
        ("revenue_last_year", None, "currency"),
        ("net_revenue", None, "currency"),
        ("change_pct", [0.04, -0.6], "change"),
        ("share", [0.25], "percent"),
        ("conversion_rate", [12.5], "number"),  # already in percent: left alone
        ("Revenue ($)", None, "number"),
        ("units", None, "number"),
    ],
)
def test_infer_column_format(name, values, expected):
    from eil_pipelines.formatting import infer_column_format

    assert infer_column_format(name, values) == expected


def test_money_charts_keep_their_symbol_on_every_axis():
    from eil_pipelines.run.pipeline import money_chart
    from eil_pipelines.spec.models import ChartSpec

    compact = ChartSpec(
        name="r", query="q", x="w", y=["revenue", "revenue_last_year"], format="compact"
    )
    assert money_chart(compact).format == "currency"
    orders = ChartSpec(name="o", query="q", x="w", y="orders", format="compact")
    assert money_chart(orders).format == "compact"
    share = ChartSpec(name="s", query="q", x="w", y="revenue", format="percent")
    assert money_chart(share).format == "percent"  # the author's explicit choice wins


def test_currency_is_compact_from_a_million_and_zero_change_is_flat():
    assert format_currency(630_016_305) == "$630M"
    assert format_currency(2_920_000_000) == "$2.92B"
    assert format_currency(999_999) == "$999,999"
    assert format_currency(630_016_305, decimals=0) == "$630,016,305"
    assert format_change(0.0004) == "■ 0.0%"
