"""The three shipped example pipelines, run on a real PostgreSQL and a real MariaDB,
give DuckDB's figures.

The examples are written in DuckDB's dialect and read ``data/orders.parquet``.
The test's copies name a connection (``source = "warehouse"``), read the
table ``orders``, and change only the spellings each server needs (listed in
``POSTGRES`` and ``MYSQL``; ``docs/sources.md`` shows them to users).  Each
copy must give the same metric values as the original on DuckDB.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from servers import READER_PASSWORD, REPO, MariaDBServer, PostgresServer

from eil_pipelines.run import make_context, run_pipeline
from eil_pipelines.sources.pool import close_all
from eil_pipelines.spec import load_pipeline

Rewrite = tuple[str, str | Callable[[re.Match[str]], str]]

#: DuckDB spelling → Postgres spelling, applied to the SQL of the copies.
POSTGRES: list[Rewrite] = [
    (r"FROM 'data/orders\.parquet'", "FROM orders"),
    (r"INTERVAL (\d+) (DAY|HOUR)", r"INTERVAL '\1 \2'"),
    # DuckDB's / divides integers into a fraction; Postgres truncates.
    (
        r"(count\(\*\)(?: FILTER \(WHERE [^)]*\))?)(\s*/\s*(?:nullif\(count|count))",
        r"\1::float8\2",
    ),
    (r"(?<![\w.])(prev_cancellations|cancellations) / nullif", r"\1::float8 / nullif"),
    (r"quantile_cont\((\w+), ([\d.]+)\)", r"percentile_cont(\2) WITHIN GROUP (ORDER BY \1)"),
    # range() excludes its end, generate_series() includes it.
    (r"FROM range\(", "FROM generate_series("),
    (r"(\$period_end),(\s*)INTERVAL '1 HOUR'", r"\1 - INTERVAL '1 HOUR',\2INTERVAL '1 HOUR'"),
    # round(double, digits) exists only for numeric in Postgres.
    (r"round\(", "round_f("),
]

#: A DuckDB aggregate ``FILTER (WHERE …)`` → the CASE inside the aggregate (MySQL and
#: MariaDB have no FILTER); ``count(*)`` counts the rows where the condition holds.
_FILTER = re.compile(r"\b(sum|count)\((DISTINCT )?([^()]+)\) FILTER \(WHERE ([^()]+)\)")


def _case(match: re.Match[str]) -> str:
    function, distinct, argument, condition = match.groups()
    value = "1" if argument == "*" else argument
    return f"{function}({distinct or ''}CASE WHEN {condition} THEN {value} END)"


#: DuckDB spelling → MySQL/MariaDB spelling, applied to the SQL of the copies.
MYSQL: list[Rewrite] = [
    (r"FROM 'data/orders\.parquet'", "FROM orders"),
    # / between integers gives a DECIMAL with 4 digits (div_precision_increment): * 1e0
    # makes the numerator a DOUBLE, as DuckDB's / does.
    (
        r"(count\(\*\)(?: FILTER \(WHERE [^)]*\))?)(\s*/\s*(?:nullif\(count|count))",
        r"\1 * 1e0\2",
    ),
    (
        r"(?<![\w])(counts\.cancelled|prev_cancellations|cancellations) / nullif",
        r"\1 * 1e0 / nullif",
    ),
    # PERCENTILE_CONT is only a window function in MariaDB: one value per filtered row.
    (
        r"quantile_cont\((\w+), ([\d.]+)\) FILTER \(WHERE ([^)]*)\)",
        r"(SELECT max(p) FROM (SELECT percentile_cont(\2) WITHIN GROUP (ORDER BY \1) "
        r"OVER () AS p FROM o WHERE \3 AND \1 IS NOT NULL) AS q)",
    ),
    (_FILTER.pattern, _case),
    # range(start, end, step) → a recursive CTE (MySQL has no series function).
    (
        r"WITH hours AS \(\s*SELECT hour\s*FROM range\(\s*(.*?),\s*(\$period_end),"
        r"\s*INTERVAL 1 HOUR\s*\) AS t\(hour\)\s*\)",
        r"WITH RECURSIVE hours (hour) AS (SELECT \1 UNION ALL SELECT hour + INTERVAL 1 HOUR "
        r"FROM hours WHERE hour + INTERVAL 1 HOUR < \2)",
    ),
    (
        r"date_trunc\('hour', ([^()]+)\)",
        r"timestamp(date(\1), maketime(hour(\1), 0, 0))",
    ),
    # Weeks start on Monday in DuckDB's date_trunc; weekday() is 0 on Monday.
    (
        r"CAST\(date_trunc\('week', (\w+)\) AS DATE\)",
        r"(date(\1) - INTERVAL weekday(\1) DAY)",
    ),
    # date - integer is arithmetic on numbers in MySQL: write the interval.
    (r"(w\.week|CAST\(\$period_end AS DATE\)) - (\d+)\b", r"\1 - INTERVAL \2 DAY"),
    # DESC already puts NULLs last in MySQL, which has no NULLS LAST.
    (r" NULLS LAST", ""),
    # Quoted identifiers are `backticked` (without sql_mode ANSI_QUOTES).
    (r'(AS|ORDER BY) "([^"\n]+)"', r"\1 `\2`"),
]

ROUND_F = """
CREATE FUNCTION round_f(x double precision, digits integer DEFAULT 0) RETURNS double precision
LANGUAGE sql IMMUTABLE AS 'SELECT round(x::numeric, digits)::float8'
"""

#: When each example runs: a day, a week and an hour inside the sample data.
RUNS = {
    "daily_sales": datetime(2026, 6, 3, 7, 0, tzinfo=ZoneInfo("Europe/Berlin")),
    "weekly_executive_summary": datetime(2026, 6, 1, 8, 0, tzinfo=ZoneInfo("America/New_York")),
    "hourly_operations": datetime(2026, 6, 3, 14, 0, tzinfo=ZoneInfo("UTC")),
}


def rewrite(text: str, rules: list[Rewrite]) -> str:
    """``text`` with each rule applied."""
    for pattern, replacement in rules:
        text = re.sub(pattern, replacement, text)
    return text


def group_by_all(text: str) -> str:
    """``GROUP BY ALL`` → the positions of the grouped columns (Postgres has no ALL)."""
    two_keys = "region,\n    sum(revenue) AS revenue\nFROM" in text  # daily_sales' trend
    return text.replace("GROUP BY ALL", "GROUP BY 1, 2" if two_keys else "GROUP BY 1")


def copy_project(root: Path, rules: list[Rewrite] | None) -> None:
    """The examples (and their SQL files and templates) under ``root``; with ``rules``,
    their SQL rewritten for a server and reading connection ``warehouse``."""
    for folder in ("pipelines", "sql", "templates"):
        if (REPO / folder).exists():
            shutil.copytree(REPO / folder, root / folder)
    if rules is None:
        shutil.copytree(REPO / "data", root / "data")
        return
    for file in [*(root / "pipelines").glob("*.toml"), *(root / "sql").glob("*.sql")]:
        text = group_by_all(rewrite(file.read_text(), rules))
        if file.suffix == ".toml":
            text = 'source = "warehouse"\n' + text
        file.write_text(text)


@pytest.fixture(scope="module")
def round_f(postgres_server: PostgresServer) -> None:
    with postgres_server.admin() as conn:
        conn.execute("DROP FUNCTION IF EXISTS round_f(double precision, integer)")
        conn.execute(ROUND_F)


def figures(root: Path, name: str) -> dict[str, tuple[float | None, float | None]]:
    """Run one example at its time; its metrics as ``label: (value, previous)``."""
    pipeline = load_pipeline(root / "pipelines" / f"{name}.toml", root=root)
    result = run_pipeline(pipeline, make_context(pipeline, RUNS[name]), root / "reports")
    assert result.status == "succeeded", result.error
    return {m.label: (m.value, m.previous) for m in result.metrics}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_an_example_gives_the_same_figures_on_postgres(
    tmp_path: Path,
    postgres_server: PostgresServer,
    round_f: None,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    close_all()
    duck, pg = tmp_path / "duckdb", tmp_path / "postgres"
    copy_project(duck, None)
    copy_project(pg, POSTGRES)
    (pg / "eil.toml").write_text(
        "[connections.warehouse]\n"
        f'url = "postgresql://reader:${{PG_PASSWORD}}@127.0.0.1:{postgres_server.port}/analytics"\n'
    )
    monkeypatch.setenv("PG_PASSWORD", READER_PASSWORD)
    same_figures(figures(duck, name), figures(pg, name))
    close_all()


@pytest.mark.parametrize("name", sorted(RUNS))
def test_an_example_gives_the_same_figures_on_mariadb(
    tmp_path: Path,
    mariadb_server: MariaDBServer,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    close_all()
    duck, maria = tmp_path / "duckdb", tmp_path / "mariadb"
    copy_project(duck, None)
    copy_project(maria, MYSQL)
    (maria / "eil.toml").write_text(
        "[connections.warehouse]\n"
        f'url = "mysql://reader:${{MY_PASSWORD}}@127.0.0.1:{mariadb_server.port}/analytics"\n'
    )
    monkeypatch.setenv("MY_PASSWORD", READER_PASSWORD)
    same_figures(figures(duck, name), figures(maria, name))
    close_all()


def same_figures(
    expected: dict[str, tuple[float | None, float | None]],
    found: dict[str, tuple[float | None, float | None]],
) -> None:
    """The same metrics, each value and previous value equal to 1e-9 (or both missing)."""
    assert expected and found.keys() == expected.keys()
    assert any(value is not None for value, _ in expected.values())
    for label, pair in expected.items():
        for want, got in zip(pair, found[label], strict=True):
            if want is None:
                assert got is None, label
            else:
                assert got is not None and math.isclose(got, want, rel_tol=1e-9), (label, want, got)
