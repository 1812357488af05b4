"""Hostile SQL against a real SQLite file: the statement check refuses it, and beneath
it the file is opened ``mode=ro`` and an authorizer denies everything but reading."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from eil_pipelines.errors import SourceError
from eil_pipelines.sources import open_source
from eil_pipelines.spec.models import SourceSpec

ONLY_SELECT = "only one SELECT (or WITH ... SELECT) statement is allowed; found "
NOT_AUTHORIZED = (
    "not authorized: a query may only read (no writes, ATTACH, VACUUM, PRAGMA or extensions)"
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE sales(region TEXT, revenue REAL)")
    con.executemany("INSERT INTO sales VALUES (?, ?)", [("EMEA", 10), ("APAC", 5)])
    con.commit()
    con.close()
    return path


def spec(db: Path) -> SourceSpec:
    return SourceSpec(kind="sqlite", path=str(db))


HOSTILE = [
    ("ATTACH DATABASE 'OUT/new.sqlite' AS n", "ATTACH"),
    ("DETACH DATABASE main", "DETACH"),
    ("VACUUM", "VACUUM"),
    ("VACUUM INTO 'OUT/copy.sqlite'", "VACUUM"),
    ("INSERT INTO sales VALUES ('X', 1)", "INSERT"),
    ("UPDATE sales SET revenue = 0", "UPDATE"),
    ("DELETE FROM sales", "DELETE"),
    ("DROP TABLE sales", "DROP TABLE"),
    ("CREATE TABLE t(a)", "CREATE TABLE"),
    ("PRAGMA writable_schema = 1", "PRAGMA"),
    ("PRAGMA journal_mode = DELETE", "PRAGMA"),
    ("BEGIN IMMEDIATE", "BEGIN"),
]


@pytest.mark.parametrize(("sql", "found"), HOSTILE)
def test_statement_check_refuses(db, sql, found):
    with open_source("p", spec(db), db.parent) as source, pytest.raises(SourceError) as info:
        source.run("q", sql.replace("OUT", str(db.parent)), {})
    assert str(info.value) == f'pipeline "p", query "q": {ONLY_SELECT}{found}'
    assert not (db.parent / "new.sqlite").exists()
    assert not (db.parent / "copy.sqlite").exists()


def test_load_extension_is_refused(db):
    with open_source("p", spec(db), db.parent) as source, pytest.raises(SourceError) as info:
        source.run("q", "SELECT load_extension('/tmp/evil.so')", {})
    assert str(info.value) == (
        'pipeline "p", query "q": the function load_extension() is not allowed in a query '
        "(it changes state or reaches outside the database)"
    )


def test_several_statements_are_refused(db):
    with open_source("p", spec(db), db.parent) as source, pytest.raises(SourceError) as info:
        source.run("q", "SELECT 1; DELETE FROM sales", {})
    assert str(info.value) == (
        'pipeline "p", query "q": only one statement is allowed in a query; found 2 (SELECT, DELETE)'
    )


@pytest.mark.parametrize(("sql", "found"), [*HOSTILE, ("SELECT load_extension('x')", "")])
def test_the_authorizer_denies_beneath_the_check(db, sql, found):
    # Defence in depth: on the connection itself, past the statement check.
    with open_source("p", spec(db), db.parent) as source:
        with pytest.raises(sqlite3.DatabaseError, match=r"not authorized|authorization denied"):
            source.connection.execute(sql.replace("OUT", str(db.parent)))
        assert source.connection.execute("SELECT count(*) FROM sales").fetchone() == (2,)
    assert not (db.parent / "new.sqlite").exists()
    assert not (db.parent / "copy.sqlite").exists()


def test_vacuum_into_fails_even_without_the_authorizer_on_a_read_only_file(db):
    # mode=ro alone does not stop VACUUM INTO: the authorizer is what does.
    with open_source("p", spec(db), db.parent) as source:
        source.connection.set_authorizer(None)
        source.connection.execute(f"VACUUM INTO '{db.parent / 'copy.sqlite'}'")
    assert (db.parent / "copy.sqlite").exists()


def test_authorizer_message_reaches_the_user(db):
    with open_source("p", spec(db), db.parent) as source, pytest.raises(SourceError) as info:
        # A read of a pragma function: the statement check lets a SELECT through,
        # the authorizer denies the PRAGMA it runs.
        source.run("q", "SELECT * FROM pragma_table_info('sales')", {})
    assert str(info.value) == f'pipeline "p", query "q": {NOT_AUTHORIZED}'


def test_reads_still_work(db):
    with open_source("p", spec(db), db.parent) as source:
        df = source.run(
            "q",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
            "SELECT region, sum(revenue) * (SELECT count(*) FROM n) AS r FROM sales "
            "WHERE revenue > :min GROUP BY region ORDER BY region",
            {"min": 1},
        )
    assert df.to_dict("records") == [{"region": "APAC", "r": 15.0}, {"region": "EMEA", "r": 30.0}]


def test_what_the_check_lets_through_the_authorizer_refuses_clearly(db, monkeypatch):
    from eil_pipelines.sources import statements

    # Switch the statement check off: the authorizer's refusal is what the user reads.
    monkeypatch.setattr(statements, "refusal", lambda sql, dialect: None)
    with open_source("p", spec(db), db.parent) as source:
        for sql in ("VACUUM", "DELETE FROM sales", f"ATTACH '{db.parent / 'n.db'}' AS n"):
            with pytest.raises(SourceError) as info:
                source.run("q", sql, {})
            assert str(info.value) == f'pipeline "p", query "q": {NOT_AUTHORIZED}', sql
    assert not (db.parent / "n.db").exists()
