"""Line charts whose axis does not reach zero say so, or start at zero with ``y_zero``."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from eil_pipelines.charts.draw import AXIS_NOTE, draw_chart
from eil_pipelines.spec.models import ChartSpec

WEEKS = pd.DataFrame(
    {
        "week": pd.date_range("2026-05-04", periods=26, freq="W-MON"),
        "revenue": [115e6 + (i % 5) * 2.5e6 for i in range(26)],
    }
)


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_a_line_axis_away_from_zero_carries_a_note():
    fig = draw_chart(ChartSpec(name="r", query="q", x="week", y="revenue"), WEEKS)
    assert fig.axes[0].get_ylim()[0] > 0
    assert AXIS_NOTE in texts(fig)


def test_y_zero_starts_the_axis_at_zero_without_a_note():
    fig = draw_chart(ChartSpec(name="r", query="q", x="week", y="revenue", y_zero=True), WEEKS)
    assert fig.axes[0].get_ylim()[0] <= 0
    assert AXIS_NOTE not in texts(fig)


def test_a_line_through_zero_and_a_bar_chart_need_no_note():
    crossing = WEEKS.assign(revenue=[(-1) ** i * 5.0 for i in range(26)])
    line = draw_chart(ChartSpec(name="r", query="q", x="week", y="revenue"), crossing)
    assert AXIS_NOTE not in texts(line)
    regions = pd.DataFrame({"region": ["A", "B"], "revenue": [115e6, 120e6]})
    bar = draw_chart(ChartSpec(name="b", query="q", type="bar", x="region", y="revenue"), regions)
    assert bar.axes[0].get_ylim()[0] == 0  # bars are lengths: from zero
    assert AXIS_NOTE not in texts(bar)


def test_y_zero_is_for_line_charts():
    with pytest.raises(ValidationError, match='"y_zero" is for line charts, not "bar"'):
        ChartSpec(name="b", query="q", type="bar", x="region", y="revenue", y_zero=True)
