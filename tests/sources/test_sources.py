"""Sources run real SQL on real DuckDB and SQLite files, with every parameter bound."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import date, datetime

import duckdb
import pytest

from eil_pipelines.errors import EilError, SourceError
from eil_pipelines.sources import open_source
from eil_pipelines.spec.models import SourceSpec


@pytest.fixture
def duck_file(tmp_path):
    path = tmp_path / "data" / "w.duckdb"
    path.parent.mkdir()
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE sales(day DATE, region TEXT, revenue DOUBLE)")
    con.execute(
        "INSERT INTO sales VALUES ('2026-11-26','EMEA',10),('2026-11-27','EMEA',20),('2026-11-27','APAC',5)"
    )
    con.close()
    return path


@pytest.fixture
def sqlite_file(tmp_path):
    path = tmp_path / "w.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE sales(day TEXT, region TEXT, revenue REAL)")
    con.executemany(
        "INSERT INTO sales VALUES (?,?,?)",
        [("2026-11-26", "EMEA", 10), ("2026-11-27", "EMEA", 20), ("2026-11-27", "APAC", 5)],
    )
    con.commit()
    con.close()
    return path


def test_duckdb_file_with_bound_parameters(tmp_path, duck_file):
    spec = SourceSpec(path="data/w.duckdb")
    with open_source("p", spec, tmp_path) as source:
        df = source.run(
            "q",
            "SELECT region, sum(revenue) AS revenue FROM sales WHERE day >= $start AND region = $region GROUP BY 1",
            {"start": date(2026, 11, 27), "region": "EMEA", "unused": 1},
        )
    assert df.to_dict("records") == [{"region": "EMEA", "revenue": 20.0}]


def test_parameters_are_never_formatted_into_sql(tmp_path, duck_file):
    hostile = "EMEA' OR '1'='1"
    with open_source("p", SourceSpec(path="data/w.duckdb"), tmp_path) as source:
        df = source.run("q", "SELECT * FROM sales WHERE region = $region", {"region": hostile})
    assert len(df) == 0


def test_duckdb_file_is_opened_read_only(tmp_path, duck_file):
    with (
        open_source("p", SourceSpec(path="data/w.duckdb"), tmp_path) as source,
        pytest.raises(SourceError) as info,
    ):
        source.run("wipe", "DELETE FROM sales RETURNING *", {})
    assert str(info.value).endswith("statement is allowed; found DELETE")
    # Beneath the statement check, the database itself refuses to write.
    with (
        open_source("p", SourceSpec(path="data/w.duckdb"), tmp_path) as source,
        pytest.raises(duckdb.Error, match="read-only"),
    ):
        source.connection.execute("DELETE FROM sales")


def test_in_memory_duckdb_reads_files_relative_to_project_root(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("a,b\n1,2\n3,4\n")
    monkeypatch.chdir("/")  # the working folder must not matter
    with open_source("p", SourceSpec(), tmp_path) as source:
        df = source.run("q", "SELECT sum(a) AS a FROM 'data/x.csv' WHERE b > $min", {"min": 2})
    assert df["a"].tolist() == [3]


def test_sql_error_names_pipeline_query_and_database_message(tmp_path):
    with open_source("daily", SourceSpec(), tmp_path) as source, pytest.raises(SourceError) as info:
        source.run("kpis", "SELECT nope FROM range(3)", {})
    message = str(info.value)
    assert message.startswith(
        'pipeline "daily", query "kpis": Binder Error: Referenced column "nope" not found'
    )


def test_syntax_error(tmp_path):
    with open_source("daily", SourceSpec(), tmp_path) as source, pytest.raises(SourceError) as info:
        source.run("kpis", "SELEC 1", {})
    assert str(info.value).startswith(
        'pipeline "daily", query "kpis": Parser Error: syntax error at or near "SELEC"'
    )


def test_undefined_parameter_is_named(tmp_path):
    with open_source("daily", SourceSpec(), tmp_path) as source, pytest.raises(SourceError) as info:
        source.run(
            "kpis", "SELECT $regoin AS r", {"region": "EMEA", "run_date": datetime(2026, 1, 1)}
        )
    assert str(info.value) == (
        'pipeline "daily", query "kpis": the SQL uses $regoin, which is not a parameter '
        "(defined: region, run_date)"
    )


def test_statement_without_rows(tmp_path):
    with open_source("p", SourceSpec(), tmp_path) as source, pytest.raises(SourceError) as info:
        source.run("q", "CREATE TABLE t(a INT)", {})
    assert str(info.value) == (
        'pipeline "p", query "q": only one SELECT (or WITH ... SELECT) statement is allowed; '
        "found CREATE TABLE"
    )


def test_several_statements_are_refused(tmp_path):
    with open_source("p", SourceSpec(), tmp_path) as source, pytest.raises(SourceError) as info:
        source.run(
            "q", "CREATE TEMP TABLE t AS SELECT $n AS a; SELECT a * 2 AS b FROM t", {"n": 21}
        )
    assert str(info.value) == (
        'pipeline "p", query "q": only one statement is allowed in a query; '
        "found 2 (CREATE TABLE, SELECT)"
    )


def test_missing_database_file(tmp_path):
    with pytest.raises(EilError, match=r'pipeline "p": DuckDB database not found: .*nope\.duckdb'):
        open_source("p", SourceSpec(path="nope.duckdb"), tmp_path)
    with pytest.raises(EilError, match=r'pipeline "p": SQLite database not found: .*nope\.db'):
        open_source("p", SourceSpec(kind="sqlite", path="nope.db"), tmp_path)


def test_sqlite_with_bound_parameters(tmp_path, sqlite_file):
    with open_source("p", SourceSpec(kind="sqlite", path=str(sqlite_file)), tmp_path) as source:
        df = source.run(
            "q",
            "SELECT region, sum(revenue) AS revenue FROM sales "
            "WHERE day >= date($start) AND day < :end GROUP BY region ORDER BY region",
            {"start": datetime(2026, 11, 27), "end": date(2026, 11, 28), "other": 3},
        )
    assert df.to_dict("records") == [
        {"region": "APAC", "revenue": 5.0},
        {"region": "EMEA", "revenue": 20.0},
    ]


def test_sqlite_parameter_inside_string_literal_is_not_a_parameter(tmp_path, sqlite_file):
    with open_source("p", SourceSpec(kind="sqlite", path=str(sqlite_file)), tmp_path) as source:
        df = source.run("q", "SELECT '$notaparam' AS t, :x AS x", {"x": 1})
    assert df.to_dict("records") == [{"t": "$notaparam", "x": 1}]


def test_sqlite_is_read_only_and_errors_are_clear(tmp_path, sqlite_file):
    with open_source("p", SourceSpec(kind="sqlite", path=str(sqlite_file)), tmp_path) as source:
        with pytest.raises(SourceError) as info:
            source.run("q", "DELETE FROM sales RETURNING *", {})
        assert str(info.value) == (
            'pipeline "p", query "q": only one SELECT (or WITH ... SELECT) statement is allowed; '
            "found DELETE"
        )
        # Beneath the statement check, the file is opened read-only.
        source.connection.set_authorizer(None)
        with pytest.raises(sqlite3.OperationalError, match="attempt to write a readonly database"):
            source.connection.execute("DELETE FROM sales")
        with pytest.raises(SourceError) as info:
            source.run("q", "SELECT missing FROM sales", {})
        assert str(info.value) == 'pipeline "p", query "q": no such column: missing'


def test_duckdb_query_can_be_interrupted_from_another_thread(tmp_path):
    with open_source("p", SourceSpec(), tmp_path) as source:
        timer = threading.Timer(0.2, source.interrupt)
        timer.start()
        started = time.perf_counter()
        with pytest.raises(SourceError) as info:
            source.run("slow", "SELECT count(*) FROM range(10000000000) a, range(100) b", {})
        timer.cancel()
    assert str(info.value) == 'pipeline "p", query "slow": the query was interrupted'
    assert time.perf_counter() - started < 5


def test_describe_returns_columns(tmp_path):
    with open_source("p", SourceSpec(), tmp_path) as source:
        assert source.describe("q", "SELECT 1 AS a, 'x' AS b;", {}) == ["a", "b"]
