"""The three shipped example pipelines, run on a real PostgreSQL, give DuckDB's figures.

The examples are written in DuckDB's dialect and read ``data/orders.parquet``.
The test's copies name a connection (``source = "warehouse"``), read the
table ``orders``, and change only the spellings Postgres needs (listed in
``POSTGRES``; ``docs/sources.md`` shows them to users).  Each copy must give
the same metric values as the original on DuckDB.
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
from servers import READER_PASSWORD, REPO, PostgresServer

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


def copy_project(root: Path, server: bool) -> None:
    """The examples (and their SQL files and templates) under ``root``."""
    for folder in ("pipelines", "sql", "templates"):
        if (REPO / folder).exists():
            shutil.copytree(REPO / folder, root / folder)
    if not server:
        shutil.copytree(REPO / "data", root / "data")
        return
    for file in [*(root / "pipelines").glob("*.toml"), *(root / "sql").glob("*.sql")]:
        text = group_by_all(rewrite(file.read_text(), POSTGRES))
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
    copy_project(duck, server=False)
    copy_project(pg, server=True)
    (pg / "eil.toml").write_text(
        "[connections.warehouse]\n"
        f'url = "postgresql://reader:${{PG_PASSWORD}}@127.0.0.1:{postgres_server.port}/analytics"\n'
    )
    monkeypatch.setenv("PG_PASSWORD", READER_PASSWORD)
    expected = figures(duck, name)
    found = figures(pg, name)
    assert expected and found.keys() == expected.keys()
    assert any(value is not None for value, _ in expected.values())
    for label, pair in expected.items():
        for want, got in zip(pair, found[label], strict=True):
            if want is None:
                assert got is None, label
            else:
                assert got is not None and math.isclose(got, want, rel_tol=1e-9), (label, want, got)
    close_all()
