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
