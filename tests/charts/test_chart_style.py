"""House-style helpers: number formats on axes and labels, date labels, palette."""

from __future__ import annotations

import numpy as np
import pytest

from eil_pipelines.charts.style import (
    PALETTE,
    ValueFormatter,
    color_for,
    compact,
    date_labels,
    point_label,
    words,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (830_000, "830K"),
        (100_000, "100K"),
        (1_250_000, "1.25M"),
        (12_345, "12.3K"),
        (-4_200, "-4.2K"),
        (999_999, "1M"),
        (950, "950"),
        (0, "0"),
    ],
)
def test_compact(value, text):
    assert compact(value) == text


def ticks(fmt, locs, currency="$"):
    return ValueFormatter(fmt, currency).format_ticks(locs)


def test_tick_labels_share_their_decimals():
    assert ticks(None, [0, 0.5, 1.0, 1.5]) == ["0.0", "0.5", "1.0", "1.5"]
    assert ticks("number", [0, 250, 500]) == ["0", "250", "500"]
    assert ticks("percent", [0, 0.025, 0.05]) == ["0.0%", "2.5%", "5.0%"]
    assert ticks("percent", [0, 0.1, 0.2]) == ["0%", "10%", "20%"]


def test_large_ticks_are_compact_unless_number_is_asked_for():
    assert ticks(None, [0, 500_000, 1_000_000]) == ["0", "500K", "1M"]
    assert ticks("number", [0, 500_000]) == ["0", "500,000"]
    assert ticks("currency", [0, 50_000], currency="€") == ["€0", "€50K"]
    assert ticks("currency", [0, 2.5, 5]) == ["\\$0.00", "\\$2.50", "\\$5.00"]


def test_point_labels():
    assert point_label(12_345.0, None) == "12.3K"
    assert point_label(512.0, None, large=True) == "512"
    assert point_label(0.1234, "percent") == "12.3%"
    assert point_label(1234.5, "currency") == "$1,234.50"
    assert point_label(float("nan"), None) == "–"


def test_date_labels_follow_the_spacing():
    months = np.array(["2026-11-01", "2026-12-01", "2027-01-01"], dtype="datetime64[ns]")
    assert date_labels(months) == ["Nov 2026", "Dec", "Jan 2027"]
    days = np.array(["2026-11-03", "2026-11-04"], dtype="datetime64[ns]")
    assert date_labels(days) == ["3 Nov", "4 Nov"]
    hours = np.array(["2026-11-03T09:00", "2026-11-03T10:00"], dtype="datetime64[ns]")
    assert date_labels(hours) == ["09:00", "10:00"]
    years = np.array(["2025-01-01", "2026-01-01"], dtype="datetime64[ns]")
    assert date_labels(years) == ["2025", "2026"]


def test_words_and_palette():
    assert words("revenue_by_day") == "Revenue by day"
    assert color_for(0) == PALETTE[0] != color_for(1)
    assert color_for(0, other=True) not in PALETTE
    assert color_for(len(PALETTE)) == PALETTE[0]
