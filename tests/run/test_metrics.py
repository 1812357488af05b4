"""KPI figures and insights: values, changes, formatting, sentences, and their errors."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from eil_pipelines.errors import MetricError
from eil_pipelines.run.metrics import build_insights, compute_metric, metric_sentence
from eil_pipelines.spec.models import ChartSpec, MetricSpec


def metric(**kw) -> MetricSpec:
    base = {
        "label": "Revenue",
        "query": "kpis",
        "column": "revenue",
        "compare": "prev",
        "format": "currency",
    }
    return MetricSpec(**{**base, **kw})


def test_rise_with_currency_format():
    m = compute_metric(metric(), pd.DataFrame({"revenue": [1_240_000.0], "prev": [1_103_202.0]}))
    assert (m.value, m.previous, m.direction, m.sentiment) == (
        1_240_000.0,
        1_103_202.0,
        "up",
        "good",
    )
    # Money from a million up prints compactly: "$1,240,000" read as noise (issue 16).
    assert m.text == "$1.24M"
    assert m.change_text == "▲ +12.4%"
    assert math.isclose(m.change_pct, 0.124, abs_tol=1e-3)
    assert metric_sentence(m, "day") == "Revenue rose 12.4% to $1.24M against the previous day."


def test_fall_is_good_when_down_is_good():
    m = compute_metric(
        metric(label="Cancellation rate", column="c", compare="p", format="percent", good="down"),
        pd.DataFrame({"c": [0.053], "p": [0.065]}),
    )
    assert (m.direction, m.sentiment, m.text) == ("down", "good", "5.3%")
    assert m.change_text == "▼ −1.2 pts"
    assert (
        metric_sentence(m, "week")
        == "Cancellation rate fell 1.2 points to 5.3% against the previous week."
    )


def test_unchanged_and_no_comparison():
    flat = compute_metric(metric(format="number"), pd.DataFrame({"revenue": [5], "prev": [5]}))
    assert (flat.direction, flat.sentiment) == ("flat", "neutral")
    assert metric_sentence(flat, "day") == "Revenue was unchanged at 5 against the previous day."
    plain = compute_metric(
        metric(compare=None, format="compact"), pd.DataFrame({"revenue": [1_500_000]})
    )
    assert plain.direction is None
    assert metric_sentence(plain, "day") == "Revenue was 1.5M."


def test_previous_zero_has_no_percentage():
    m = compute_metric(metric(), pd.DataFrame({"revenue": [100.0], "prev": [0.0]}))
    assert m.change_pct is None
    assert (
        metric_sentence(m, "day") == "Revenue rose to $100.00 from $0.00 against the previous day."
    )


def test_empty_result_and_null_values():
    empty = compute_metric(metric(), pd.DataFrame({"revenue": [], "prev": []}))
    assert (empty.value, empty.text) == (None, "–")
    assert metric_sentence(empty, "day") == "Revenue: no data for this day."
    null = compute_metric(metric(), pd.DataFrame({"revenue": [None], "prev": [3.0]}))
    assert null.value is None and null.change is None


def test_missing_column_lists_available():
    with pytest.raises(MetricError) as info:
        compute_metric(metric(column="revenu"), pd.DataFrame({"revenue": [1], "prev": [1]}))
    assert str(info.value) == (
        'metric "Revenue": column "revenu" is not in the result of query "kpis"; available columns: revenue, prev'
    )


def test_several_rows_is_an_error():
    with pytest.raises(MetricError) as info:
        compute_metric(metric(), pd.DataFrame({"revenue": [1, 2], "prev": [1, 2]}))
    assert (
        str(info.value)
        == 'metric "Revenue": query "kpis" returned 2 rows; a metric reads a query that returns one row'
    )


def test_text_value_is_an_error():
    with pytest.raises(MetricError) as info:
        compute_metric(metric(), pd.DataFrame({"revenue": ["a lot"], "prev": [1]}))
    assert (
        str(info.value)
        == 'metric "Revenue": column "revenue" of query "kpis" holds str \'a lot\', not a number'
    )


def test_insights_cover_metrics_category_leaders_and_empty_queries():
    m = compute_metric(metric(), pd.DataFrame({"revenue": [110.0], "prev": [100.0]}))
    chart = ChartSpec(
        name="by_region",
        query="regions",
        type="bar",
        x="region",
        y="revenue",
        format="currency",
        title="Revenue by region",
    )
    data = {
        "kpis": pd.DataFrame({"revenue": [110.0], "prev": [100.0]}),
        "regions": pd.DataFrame(
            {"region": ["EMEA", "APAC", "AMER"], "revenue": [50.0, 30.0, 20.0]}
        ),
        "empty": pd.DataFrame({"a": []}),
    }
    assert build_insights([m], [chart], data, "day") == [
        "Revenue rose 10.0% to $110.00 against the previous day.",
        "EMEA led revenue by region with $50.00 (50% of the total).",
        'Query "empty" returned no rows for this day.',
    ]
