"""The example pipelines in pipelines/ are valid and their SQL runs on the sample data.

Each query runs in an in-memory DuckDB with the project root as its file search
path, binding only the parameters it uses, for runs in November 2026; every
metric and chart column must be in its query's result.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from numbers import Real
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from eil_pipelines.spec.models import PipelineSpec

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = sorted((ROOT / "pipelines").glob("*.toml"))
DATA = ROOT / "data" / "orders.parquet"
Results = Callable[[str], dict[str, pd.DataFrame]]
EXPECTED = {"daily_sales", "weekly_executive_summary", "hourly_operations"}

#: Built-in parameters per period kind, for a run in the data range (naive local times).
PERIODS = {
    # daily run on Fri 2026-11-27 at 07:00: covers Thanksgiving, Thu 2026-11-26
    "day": (datetime(2026, 11, 27, 7), datetime(2026, 11, 26), datetime(2026, 11, 27)),
    # weekly run on Mon 2026-11-30: covers the ISO week of Black Friday
    "week": (datetime(2026, 11, 30, 8), datetime(2026, 11, 23), datetime(2026, 11, 30)),
    # hourly run at 2026-11-18 15:00: inside the payment outage of that afternoon
    "interval": (
        datetime(2026, 11, 18, 15),
        datetime(2026, 11, 18, 14),
        datetime(2026, 11, 18, 15),
    ),
}


def load(path: Path) -> PipelineSpec:
    with path.open("rb") as f:
        return PipelineSpec.model_validate(tomllib.load(f))


def builtin_params(kind: str) -> dict[str, datetime]:
    run_time, start, end = PERIODS[kind]
    length = end - start
    return {
        "run_date": datetime.combine(run_time.date(), datetime.min.time()),
        "run_time": run_time,
        "period_start": start,
        "period_end": end,
        "prev_period_start": start - length,
        "prev_period_end": start,
    }


def query_sql(spec: PipelineSpec, name: str) -> str:
    query = spec.queries[name]
    if query.file is not None:
        return (ROOT / query.file).read_text(encoding="utf-8")
    assert query.sql is not None
    return query.sql


def run_query(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> pd.DataFrame:
    statements = duckdb.extract_statements(sql)
    assert len(statements) == 1, "a query holds exactly one statement"
    used = statements[0].named_parameters
    missing = set(used) - set(params)
    assert not missing, f"unknown parameters: {sorted(missing)}"
    return con.execute(sql, {k: params[k] for k in used}).df()


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    if not DATA.exists():
        pytest.skip("data/orders.parquet is missing: run python scripts/make_sample_data.py")
    connection = duckdb.connect(":memory:")
    connection.execute(f"SET file_search_path = '{ROOT.as_posix()}'")
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def results(con: duckdb.DuckDBPyConnection) -> Results:
    """``results(stem)`` → {query name: DataFrame}, run once per pipeline.

    Lazy, so a pipeline that fails to load fails only its own tests.
    """
    cache: dict[str, dict[str, pd.DataFrame]] = {}

    def get(stem: str) -> dict[str, pd.DataFrame]:
        if stem not in cache:
            spec = load(ROOT / "pipelines" / f"{stem}.toml")
            kind = spec.schedule.period if spec.schedule else "interval"
            params = {**builtin_params(kind), **spec.params}
            cache[stem] = {
                name: run_query(con, query_sql(spec, name), params) for name in spec.queries
            }
        return cache[stem]

    return get


def test_the_three_examples_exist() -> None:
    assert {p.stem for p in PIPELINES} >= EXPECTED


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.stem)
def test_example_validates(path: Path) -> None:
    spec = load(path)
    assert spec.schedule is not None
    assert spec.description
    for query in spec.queries.values():
        if query.file is not None:
            assert (ROOT / query.file).is_file(), query.file
    if spec.report.template is not None:
        assert (ROOT / spec.report.template).is_file(), spec.report.template


def test_one_example_uses_a_custom_template() -> None:
    templates = [load(p).report.template for p in PIPELINES]
    assert any(t and t.startswith("templates/") for t in templates)


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.stem)
def test_every_query_returns_rows(path: Path, results: Results) -> None:
    for name, df in results(path.stem).items():
        assert len(df) > 0, f"{path.stem}.{name} returned no rows"


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.stem)
def test_metric_columns_exist_and_are_numbers(path: Path, results: Results) -> None:
    spec = load(path)
    for metric in spec.metrics:
        df = results(path.stem)[metric.query]
        assert len(df) == 1, f"metric {metric.label!r}: query {metric.query} must return one row"
        for column in filter(None, (metric.column, metric.compare)):
            assert column in df.columns, f"metric {metric.label!r}: no column {column!r}"
            value = df[column].iloc[0]
            # Decimal results (DuckDB's type for literals like 1.0) are not Real: cast to DOUBLE.
            assert isinstance(value, Real) and not isinstance(value, bool), (metric.label, value)
            assert not pd.isna(value), f"metric {metric.label!r}: {column} is NULL"


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.stem)
def test_chart_columns_exist(path: Path, results: Results) -> None:
    spec = load(path)
    for chart in spec.charts:
        df = results(path.stem)[chart.query]
        needed = [chart.x, chart.series, *chart.y_columns]
        for column in filter(None, needed):
            assert column in df.columns, (
                f"chart {chart.name}: no column {column!r} in {chart.query}"
            )
        for column in chart.y_columns:
            assert pd.api.types.is_numeric_dtype(df[column]), f"chart {chart.name}: {column}"


def test_daily_sales_figures_are_plausible(results: Results) -> None:
    kpis = results("daily_sales")["kpis"].iloc[0]
    assert kpis["revenue"] > 0 and kpis["prev_revenue"] > 0
    assert 0 <= kpis["cancel_rate"] < 0.2
    trend = results("daily_sales")["trend"]
    assert trend["day"].nunique() == 30
    assert set(trend["region"]) == {"EMEA", "AMER", "APAC", "LATAM"}


def test_weekly_trend_covers_twelve_weeks(results: Results) -> None:
    trend = results("weekly_executive_summary")["trend"]
    assert len(trend) == 12
    assert pd.Timestamp(trend["week"].iloc[-1]).date() == date(2026, 11, 23)
    assert trend["revenue_last_year"].notna().all()


def test_hourly_check_sees_the_payment_outage(results: Results) -> None:
    kpis = results("hourly_operations")["kpis"].iloc[0]
    assert bool(kpis["cancel_alert"])
    assert len(results("hourly_operations")["last_48h"]) == 48
    assert len(results("hourly_operations")["alerts"]) >= 1


def test_queries_run_for_every_day_of_the_data(con: duckdb.DuckDBPyConnection) -> None:
    """The daily example works at both ends of the data, not just in November 2026."""
    spec = load(ROOT / "pipelines" / "daily_sales.toml")
    for day in (date(2024, 1, 2), date(2026, 12, 31)):
        start = datetime.combine(day, datetime.min.time())
        params = {
            "period_start": start,
            "period_end": start + timedelta(days=1),
            "prev_period_start": start - timedelta(days=1),
            "prev_period_end": start,
        }
        df = run_query(con, query_sql(spec, "kpis"), params)
        assert df["revenue"].iloc[0] > 0
