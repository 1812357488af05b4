"""The exact messages a report author reads when a chart does not fit its query."""

from __future__ import annotations

import pandas as pd
import pytest

from eil_pipelines.charts import chart_summary, draw_chart
from eil_pipelines.errors import ChartError, EilError
from eil_pipelines.spec.models import ChartSpec

DF = pd.DataFrame(
    {
        "day": pd.to_datetime(["2026-11-01", "2026-11-02"]),
        "region": ["EMEA", "APAC"],
        "revenue": [1.0, 2.0],
        "active": [True, False],
    }
)


def spec(**kw) -> ChartSpec:
    return ChartSpec(name="daily_revenue", query="daily", **kw)


def error(chart: ChartSpec, df: pd.DataFrame = DF) -> ChartError:
    with pytest.raises(ChartError) as info:
        draw_chart(chart, df)
    return info.value


def test_missing_y_column_names_role_query_and_available_columns():
    err = error(spec(x="day", y="revenu"))
    assert err.detail == (
        'column "revenu" (y) is not in the result of query "daily"; '
        "available columns: day, region, revenue, active"
    )
    assert str(err) == f'chart "daily_revenue": {err.detail}'
    assert err.chart == "daily_revenue"
    assert isinstance(err, EilError)


def test_missing_x_column():
    err = error(spec(x="date", y="revenue"))
    assert err.detail == (
        'column "date" (x) is not in the result of query "daily"; '
        "available columns: day, region, revenue, active"
    )


def test_missing_series_column():
    err = error(spec(x="day", y="revenue", series="country"))
    assert err.detail == (
        'column "country" (series) is not in the result of query "daily"; '
        "available columns: day, region, revenue, active"
    )


def test_every_missing_column_is_reported_at_once():
    err = error(spec(x="date", y=["revenu", "revenue", "cost"]))
    assert err.detail == (
        'columns "date" (x) and "revenu" (y) and "cost" (y) are not in the result of query '
        '"daily"; available columns: day, region, revenue, active'
    )


def test_missing_columns_are_reported_even_when_the_result_is_empty():
    err = error(spec(x="day", y="revenu"), DF.iloc[:0])
    assert err.detail.startswith('column "revenu" (y) is not in the result of query "daily"')


@pytest.mark.parametrize(
    ("column", "words"),
    [("region", "text"), ("day", "dates"), ("active", "true/false values")],
)
def test_non_numeric_y_says_what_the_column_holds(column, words):
    err = error(spec(x="day", y=column))
    assert err.detail == (
        f'column "{column}" (y) is not numeric (it holds {words}); choose a numeric column for y'
    )


def test_scatter_needs_numbers_or_dates_on_x():
    err = error(spec(type="scatter", x="region", y="revenue"))
    assert err.detail == (
        'column "region" (x) is not numeric (it holds text); '
        "a scatter plot needs numbers or dates on x"
    )


def test_hist_ignores_x():
    fig = draw_chart(spec(type="hist", x="not_there", y="revenue"), DF)
    assert fig.axes


def test_chart_summary_raises_the_same_errors():
    with pytest.raises(ChartError) as info:
        chart_summary(spec(x="day", y="revenu"), DF)
    assert info.value.detail == error(spec(x="day", y="revenu")).detail


def test_a_column_name_used_twice_is_reported():
    df = pd.DataFrame([[1, 2.0, 3.0]], columns=["day", "revenue", "revenue"])
    err = error(spec(x="day", y="revenue"), df)
    assert err.detail == (
        'column "revenue" (y) appears more than once in the result of query "daily"; '
        "give each column its own name (SELECT … AS other_name)"
    )
