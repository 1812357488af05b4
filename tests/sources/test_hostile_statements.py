"""The statement check (sqlglot): one read-only query, on every engine's dialect."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from eil_pipelines.errors import SourceError
from eil_pipelines.sources.statements import check_query, refusal

REPO = Path(__file__).resolve().parents[2]
DIALECTS = ["duckdb", "sqlite", "postgres", "mysql"]
ONLY_SELECT = "only one SELECT (or WITH ... SELECT) statement is allowed; found "


def shipped_queries() -> list[tuple[str, str]]:
    """Every query of the example pipelines (inline and ``file =``), by ``file:name``."""
    queries = []
    for path in sorted((REPO / "pipelines").glob("*.toml")):
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
        for name, query in spec.get("queries", {}).items():
            sql = query.get("sql") or (REPO / query["file"]).read_text(encoding="utf-8")
            queries.append((f"{path.name}:{name}", sql))
    for path in sorted((REPO / "sql").glob("*.sql")):
        queries.append((path.name, path.read_text(encoding="utf-8")))
    return queries


@pytest.mark.parametrize(("name", "sql"), shipped_queries(), ids=lambda v: v[:40])
def test_every_shipped_query_is_accepted(name, sql):
    assert refusal(sql, "duckdb") is None, name


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM t WHERE d >= $period_start AND r = $region",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "SELECT 1 AS a UNION ALL SELECT 2",
        "(SELECT 1 AS a)",
        "SELECT ';' AS semicolon, 'DROP TABLE t' AS text -- ; DELETE FROM t",
        "SELECT 1 AS a /* ; INSERT INTO t VALUES (1) */",
        "SELECT 1 AS a;",
        "SELECT 1 AS a; -- the end",
        "SELECT count(*) AS n FROM t WHERE name = 'O''Brien; DROP'",
    ],
)
def test_queries_are_accepted_in_every_dialect(dialect, sql):
    assert refusal(sql, dialect) is None


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("INSERT INTO t VALUES (1)", "INSERT"),
        ("UPDATE t SET a = 1", "UPDATE"),
        ("DELETE FROM t", "DELETE"),
        ("CREATE TABLE t (a INT)", "CREATE TABLE"),
        ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
        ("DROP TABLE t", "DROP TABLE"),
        ("ALTER TABLE t ADD COLUMN b INT", "ALTER"),
        ("WITH x AS (SELECT 1 AS a) INSERT INTO t SELECT a FROM x", "INSERT"),
        ("SELECT 1 AS a INTO t", "SELECT ... INTO"),
        ("SELECT a FROM t FOR UPDATE", "SELECT ... FOR UPDATE/SHARE"),
    ],
)
def test_writes_and_ddl_are_refused_in_every_dialect(dialect, sql, found):
    assert refusal(sql, dialect) == ONLY_SELECT + found


@pytest.mark.parametrize(
    ("dialect", "sql", "found"),
    [
        ("duckdb", "COPY (SELECT 1) TO 'x.csv'", "COPY"),
        ("duckdb", "ATTACH 'x.duckdb' AS x", "ATTACH"),
        ("duckdb", "DETACH x", "DETACH"),
        ("duckdb", "INSTALL httpfs", "INSTALL"),
        ("duckdb", "LOAD httpfs", "LOAD"),
        ("duckdb", "SET enable_external_access = true", "SET"),
        ("duckdb", "PRAGMA enable_profiling", "PRAGMA"),
        ("duckdb", "CALL checkpoint()", "CALL"),
        ("duckdb", "CHECKPOINT", "CHECKPOINT"),
        ("duckdb", "EXPLAIN ANALYZE COPY (SELECT 1) TO 'x'", "EXPLAIN"),
        ("duckdb", "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MERGE"),
        ("sqlite", "VACUUM", "VACUUM"),
        ("sqlite", "VACUUM INTO '/tmp/x.db'", "VACUUM"),
        ("sqlite", "PRAGMA writable_schema = 1", "PRAGMA"),
        ("sqlite", "ATTACH DATABASE 'x.db' AS x", "ATTACH"),
        ("postgres", "COPY t TO '/tmp/t.csv'", "COPY"),
        ("postgres", "SET default_transaction_read_only = off", "SET"),
        ("postgres", "TRUNCATE t", "TRUNCATE"),
        ("postgres", "BEGIN", "BEGIN"),
        ("postgres", "GRANT SELECT ON t TO u", "GRANT"),
        ("postgres", "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone", "DELETE"),
        ("mysql", "SET GLOBAL read_only = 0", "SET"),
        ("mysql", "USE other", "USE"),
        ("mysql", "LOAD DATA INFILE '/etc/passwd' INTO TABLE t", "LOAD"),
    ],
)
def test_engine_specific_statements_are_refused(dialect, sql, found):
    assert refusal(sql, dialect) == ONLY_SELECT + found


@pytest.mark.parametrize(
    ("dialect", "sql", "function"),
    [
        (
            "postgres",
            "SELECT set_config('default_transaction_read_only', 'off', false)",
            "set_config",
        ),
        ("postgres", "SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        ("postgres", "SELECT * FROM dblink('host=x', 'SELECT 1') AS t(a int)", "dblink"),
        ("postgres", "SELECT nextval('s')", "nextval"),
        ("mysql", "SELECT LOAD_FILE('/etc/passwd')", "load_file"),
        ("sqlite", "SELECT load_extension('/tmp/evil.so')", "load_extension"),
        ("duckdb", "SELECT getenv('HOME')", "getenv"),
    ],
)
def test_functions_that_change_state_are_refused(dialect, sql, function):
    assert refusal(sql, dialect) == (
        f"the function {function}() is not allowed in a query "
        "(it changes state or reaches outside the database)"
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_several_statements_are_refused(dialect):
    assert refusal("SELECT 1; SELECT 2", dialect) == (
        "only one statement is allowed in a query; found 2 (SELECT, SELECT)"
    )
    assert refusal("SELECT 1 AS a; DROP TABLE t", dialect) == (
        "only one statement is allowed in a query; found 2 (SELECT, DROP TABLE)"
    )


def test_sql_sqlglot_cannot_parse_goes_to_the_engine_unless_it_holds_several_statements():
    # A query sqlglot cannot parse (a newer syntax, or a typo) goes on to the
    # engine, whose own guard and messages apply ...
    assert refusal("SELEC 1", "duckdb") is None
    assert refusal("SELECT 1 FROM", "duckdb") is None
    # ... unless its first word starts a statement that is not a query ...
    assert refusal("IMPORT DATABASE 'x'", "duckdb") == ONLY_SELECT + "IMPORT"
    assert refusal("EXPORT DATABASE 'x'", "duckdb") == ONLY_SELECT + "EXPORT"
    # ... and several statements never go on.
    assert refusal("IMPORT DATABASE 'x'; SELECT 1", "duckdb") == (
        "only one statement is allowed in a query; found 2"
    )
    assert refusal("SELECT 1; SELEC 2", "duckdb") == (
        "only one statement is allowed in a query; found 2"
    )


def test_empty_sql_is_refused():
    assert refusal("  -- nothing\n", "duckdb") == "the SQL holds no statement"


def test_check_query_names_the_pipeline_and_the_query():
    with pytest.raises(SourceError) as info:
        check_query("daily", "kpis", "INSERT INTO t VALUES (1)", "postgres")
    assert str(info.value) == f'pipeline "daily", query "kpis": {ONLY_SELECT}INSERT'
    assert (info.value.pipeline, info.value.query) == ("daily", "kpis")
    check_query("daily", "kpis", "SELECT $a AS a", "postgresql")  # a source kind works too


def test_help_and_validate_do_not_import_sqlglot(tmp_path):
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "p.toml").write_text(
        'title = "P"\n[queries.q]\nsql = "SELECT 1 AS a"\n', encoding="utf-8"
    )
    probe = (
        "import sys\n"
        "from eil_pipelines.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print('SQLGLOT', 'sqlglot' in sys.modules)\n"
    )
    for args in (["--help"], ["validate", "pipelines"]):
        result = subprocess.run(
            [sys.executable, "-c", probe, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "SQLGLOT False" in result.stdout, (args, result.stdout, result.stderr)


def test_deep_validation_reports_several_statements(tmp_path):
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "p.toml").write_text(
        'title = "P"\n[queries.q]\nsql = "CREATE TEMP TABLE t AS SELECT 1 AS a; SELECT a FROM t"\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "eil_pipelines", "validate", "--deep", "pipelines"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        "pipelines/p.toml: queries.q: only one statement is allowed in a query; "
        "found 2 (CREATE TABLE, SELECT)"
    ) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("dialect", ["mssql", "snowflake", "a-dialect-sqlglot-does-not-know"])
def test_every_sqlalchemy_dialect_gets_the_check(dialect):
    """A SQLAlchemy dialect's name, known to sqlglot or not, still refuses writes."""
    assert refusal("SELECT 1 AS a", dialect) is None
    assert refusal("SELECT 1 AS a; DROP TABLE orders", dialect) == (
        "only one statement is allowed in a query; found 2 (SELECT, DROP TABLE)"
    )
