"""Hostile SQL against the real DuckDB: nothing outside the project is read, nothing is written.

Each statement is refused twice over: by the statement check, and (tested
separately, on the connection itself) by DuckDB's own confinement settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from eil_pipelines.errors import SourceError
from eil_pipelines.sources import open_source
from eil_pipelines.spec.models import SourceSpec

ONLY_SELECT = "only one SELECT (or WITH ... SELECT) statement is allowed; found "
CONFINED = (
    "queries read files only inside the project folder, and cannot install or load extensions"
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project folder inside tmp_path, with a file beside it (outside the project)."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "x.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "outside.csv").write_text("secret,value\nsalary,100000\n")
    return project


def refused(root: Path, sql: str, spec: SourceSpec | None = None) -> str:
    """The message a query ``q`` of pipeline ``p`` fails with."""
    with (
        open_source("p", spec or SourceSpec(), root) as source,
        pytest.raises(SourceError) as info,
    ):
        source.run("q", sql, {})
    message = str(info.value)
    assert message.startswith('pipeline "p", query "q": '), message
    return message.removeprefix('pipeline "p", query "q": ')


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("COPY (SELECT 1 AS a) TO 'data/out.csv'", "COPY"),
        ("COPY (SELECT 1 AS a) TO '/tmp/eil-hostile-out.csv'", "COPY"),
        ("ATTACH 'data/new.duckdb' AS n", "ATTACH"),
        ("DETACH n", "DETACH"),
        ("INSTALL httpfs", "INSTALL"),
        ("LOAD httpfs", "LOAD"),
        ("SET enable_external_access = true", "SET"),
        ("SET lock_configuration = false", "SET"),
        ("RESET lock_configuration", "RESET"),
        ("PRAGMA enable_profiling", "PRAGMA"),
        ("CALL checkpoint()", "CALL"),
        ("CREATE TABLE t AS SELECT 1 AS a", "CREATE TABLE"),
        ("EXPORT DATABASE 'data/dump'", "EXPORT"),
        ("VACUUM", "VACUUM"),
    ],
)
def test_statements_that_are_not_queries_are_refused(root, sql, found):
    assert refused(root, sql) == ONLY_SELECT + found
    assert not (root / "data" / "out.csv").exists()
    assert not (root / "data" / "new.duckdb").exists()
    assert not (root / "data" / "dump").exists()
    assert not Path("/tmp/eil-hostile-out.csv").exists()


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT * FROM read_csv('/etc/passwd', sep = ':')", "/etc/passwd"),
        ("SELECT * FROM glob('/etc/*')", "/etc/*"),
        ("SELECT * FROM read_text('/etc/hostname')", "/etc/hostname"),
        ("SELECT * FROM '../outside.csv'", "../outside.csv"),
        ("SELECT * FROM read_csv('data/../../outside.csv')", "data/../../outside.csv"),
        ("SELECT * FROM read_csv_auto('OUTSIDE')", "OUTSIDE"),
        (
            "SELECT * FROM 'https://example.com/orders.parquet'",
            "https://example.com/orders.parquet",
        ),
    ],
)
def test_files_outside_the_project_cannot_be_read(root, sql, name):
    outside = root.parent / "outside.csv"
    message = refused(root, sql.replace("OUTSIDE", str(outside)))
    name = name.replace("OUTSIDE", str(outside))
    assert message.startswith(f'Permission Error: Cannot access file "{name}": {CONFINED}'), message
    assert "salary" not in message


def test_a_symlink_out_of_the_project_cannot_be_read(root):
    os.symlink(root.parent / "outside.csv", root / "data" / "link.csv")
    message = refused(root, "SELECT * FROM 'data/link.csv'")
    assert message.startswith(f'Permission Error: Cannot access file "data/link.csv": {CONFINED}')
    message = refused(root, "SELECT * FROM read_csv('data/*.csv')")
    assert "Permission Error" in message
    assert "salary" not in message


def test_duckdb_database_file_is_confined_too(root):
    con = duckdb.connect(str(root / "data" / "w.duckdb"))
    con.execute("CREATE TABLE t AS SELECT 1 AS a")
    con.close()
    spec = SourceSpec(path="data/w.duckdb")
    assert refused(root, "SELECT * FROM read_text('/etc/hostname')", spec).startswith(
        "Permission Error"
    )
    assert refused(root, "INSERT INTO t VALUES (2)", spec) == ONLY_SELECT + "INSERT"
    with open_source("p", spec, root) as source:
        assert source.run("q", "SELECT a FROM t", {})["a"].tolist() == [1]


def test_files_inside_the_project_are_read_whatever_the_working_folder(root, monkeypatch):
    # A file of the same name in the working folder is not what a query reads.
    elsewhere = root.parent / "cwd"
    (elsewhere / "data").mkdir(parents=True)
    (elsewhere / "data" / "x.csv").write_text("a,b\n99,99\n")
    for folder in (elsewhere, root, Path("/")):
        monkeypatch.chdir(folder)
        with open_source("p", SourceSpec(), root) as source:
            for sql in (
                "SELECT sum(a) AS a FROM 'data/x.csv'",
                "SELECT sum(a) AS a FROM read_csv('data/x.csv', delim = ',')",
                "SELECT sum(a) AS a FROM read_csv(['data/x.csv'])",
                "SELECT sum(a) AS a FROM read_csv('data/*.csv')",
                f"SELECT sum(a) AS a FROM '{root / 'data' / 'x.csv'}'",
            ):
                assert source.run("q", sql, {})["a"].tolist() == [4], (folder, sql)


def test_a_string_that_is_not_a_file_name_is_left_alone(root):
    with open_source("p", SourceSpec(), root) as source:
        df = source.run(
            "q", "SELECT 'data/x.csv' AS name, a FROM read_csv('data/x.csv', delim = ',')", {}
        )
    assert df["name"].tolist() == ["data/x.csv", "data/x.csv"]
    # FROM that is not a query's: the literal after it is a value, not a file.
    with open_source("p", SourceSpec(), root) as source:
        df = source.run(
            "q",
            "SELECT trim(both 'x' FROM 'xdatax') AS t, "
            "extract(year FROM '2026-11-28'::DATE) AS y, "
            "'data' IS DISTINCT FROM 'data' AS d, "
            "'data' IS NOT DISTINCT FROM 'data' AS n "
            "FROM (SELECT * FROM 'data/x.csv') AS f LIMIT 1",
            {},
        )
    assert df.to_dict("records") == [{"t": "data", "y": 2026, "d": False, "n": True}]


def test_missing_file_message_shows_the_name_as_written(root):
    message = refused(root, "SELECT * FROM 'data/missing.csv'")
    assert message == 'IO Error: No files found that match the pattern "data/missing.csv"'


def test_extensions_are_never_installed_or_loaded(root):
    # read_xlsx lives in the excel extension: DuckDB must not fetch it.
    message = refused(root, "SELECT * FROM read_xlsx('data/x.xlsx')")
    assert message.startswith('Catalog Error: Table Function with name "read_xlsx"')
    assert message.endswith(f"({CONFINED}; use a function DuckDB has built in)")
    assert "SET autoinstall" not in message
    with open_source("p", SourceSpec(), root) as source:
        row = source.run(
            "q",
            "SELECT current_setting('autoinstall_known_extensions') AS i, "
            "current_setting('autoload_known_extensions') AS l, "
            "current_setting('enable_external_access') AS e, "
            "current_setting('lock_configuration') AS c",
            {},
        ).iloc[0]
    assert (bool(row.i), bool(row.l), bool(row.e), bool(row.c)) == (False, False, False, True)


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        ("COPY (SELECT 1) TO '/tmp/eil-hostile-engine.csv'", "Permission Error"),
        ("ATTACH '/tmp/eil-hostile-engine.duckdb' AS n", "Permission Error"),
        ("INSTALL httpfs", "Permission Error"),
        ("LOAD httpfs", "Permission Error"),
        ("SET enable_external_access = true", "the configuration has been locked"),
        ("SET lock_configuration = false", "the configuration has been locked"),
        ("SET allowed_directories = ['/']", "the configuration has been locked"),
        ("SELECT * FROM read_csv('/etc/passwd')", "Permission Error"),
    ],
)
def test_duckdb_itself_refuses_beneath_the_statement_check(root, sql, match):
    # Defence in depth: the connection is confined even for SQL the check never sees.
    with (
        open_source("p", SourceSpec(), root) as source,
        pytest.raises(duckdb.Error, match=match),
    ):
        source.connection.execute(sql)
    assert not Path("/tmp/eil-hostile-engine.csv").exists()
    assert not Path("/tmp/eil-hostile-engine.duckdb").exists()


def test_duckdb_own_parser_guards_what_the_check_lets_through(root, monkeypatch):
    from eil_pipelines.sources import statements

    assert refused(root, "IMPORT DATABASE 'data'") == ONLY_SELECT + "IMPORT"
    # With the statement check switched off, DuckDB's statement types still decide.
    monkeypatch.setattr(statements, "refusal", lambda sql, dialect: None)
    assert refused(root, "IMPORT DATABASE 'data'") == ONLY_SELECT + "IMPORT"
    assert refused(root, "COPY (SELECT 1) TO 'data/out.csv'") == ONLY_SELECT + "COPY"
    assert refused(root, "SET lock_configuration = false") == ONLY_SELECT + "SET"
    assert not (root / "data" / "out.csv").exists()
    # Several statements are refused whichever parser counts them.
    assert refused(root, "SELECT 1; EXPORT DATABASE 'data/d'").startswith(
        "only one statement is allowed in a query; found 2"
    )


def test_once_reports_hostile_queries_without_a_traceback(project):
    project.write("data/x.csv", "a\n1\n")
    project.write("../outside.csv", "secret\n42\n")
    project.pipeline(
        "evil",
        """
        title = "Evil"
        [queries.leak]
        sql = "SELECT * FROM read_csv('/etc/passwd', sep = ':')"
        """,
    )
    project.pipeline(
        "dump",
        """
        title = "Dump"
        [queries.out]
        sql = "COPY (SELECT * FROM 'data/x.csv') TO 'reports/stolen.csv'"
        """,
    )
    project.pipeline(
        "up",
        """
        title = "Up"
        [queries.up]
        sql = "SELECT * FROM '../outside.csv'"
        """,
    )
    result = subprocess.run(
        [sys.executable, "-m", "eil_pipelines", "--once", "pipelines", "--at", "2026-11-28"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert (
        f'evil failed: pipeline "evil", query "leak": Permission Error: Cannot access file '
        f'"/etc/passwd": {CONFINED}'
    ) in output
    assert f'dump failed: pipeline "dump", query "out": {ONLY_SELECT}COPY' in output
    assert (
        f'up failed: pipeline "up", query "up": Permission Error: Cannot access file '
        f'"../outside.csv": {CONFINED}'
    ) in output
    assert "root:" not in output
    assert not (project.root / "reports" / "stolen.csv").exists()


def test_runs_of_a_project_share_one_in_memory_database_not_a_connection(root, tmp_path):
    # Making a DuckDB database costs about 35 ms of CPU; each run connects to one per root.
    from eil_pipelines import sources

    with (
        open_source("p", SourceSpec(), root) as first,
        open_source("q", SourceSpec(), root) as second,
    ):
        assert first.connection is not second.connection
        # A connection's own objects (temporary ones: nothing else can be made) stay its own.
        first.connection.execute("CREATE TEMP TABLE mine AS SELECT 1 AS x")
        with pytest.raises(duckdb.CatalogException):
            second.connection.execute("SELECT * FROM mine")
        # Both are confined, and the relative names resolve against the project root.
        for source in (first, second):
            with pytest.raises(duckdb.Error, match="the configuration has been locked"):
                source.connection.execute("SET enable_external_access = true")
            frame = source.run("q", "SELECT sum(a) AS s FROM 'data/x.csv'", {})
            assert frame["s"].tolist() == [4]
    assert sources._memory_database(root.resolve()) is sources._memory_database(root.resolve())
    # A later run starts clean: the temporary table went with its connection.
    with open_source("p", SourceSpec(), root) as later, pytest.raises(duckdb.CatalogException):
        later.connection.execute("SELECT * FROM mine")
    # Another project gets its own database, confined to its own folder.
    other = tmp_path / "other"
    other.mkdir()
    with open_source("p", SourceSpec(), other) as elsewhere:
        message = refused_in(elsewhere, "SELECT * FROM read_csv('../project/data/x.csv')")
    assert CONFINED in message


def test_the_in_memory_databases_kept_are_bounded(tmp_path):
    from eil_pipelines import sources

    roots = [tmp_path / f"p{n}" for n in range(sources._MEMORY_KEEP + 3)]
    for folder in roots:
        folder.mkdir()
        with open_source("p", SourceSpec(), folder) as source:
            assert source.run("q", "SELECT 1 AS x", {})["x"].tolist() == [1]
    assert len(sources._MEMORY_DATABASES) == sources._MEMORY_KEEP
    assert roots[-1].resolve() in sources._MEMORY_DATABASES
    assert roots[0].resolve() not in sources._MEMORY_DATABASES


def refused_in(source, sql: str) -> str:
    with pytest.raises(SourceError) as caught:
        source.run("q", sql, {})
    return str(caught.value)
