"""Named connections in ``eil.toml``: ``.env``, targets, ``source = "NAME"``, pooling, checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from servers import MARKER, READER_PASSWORD, MariaDBServer, PostgresServer

from eil_pipelines.errors import ConfigError, ConfigErrors
from eil_pipelines.sources import open_source
from eil_pipelines.sources.check import check_connections
from eil_pipelines.sources.pool import close_all, pools
from eil_pipelines.spec import load_pipeline, load_pipelines
from eil_pipelines.spec.project import load_project_settings

AT = datetime(2024, 6, 3, 7, 0, tzinfo=ZoneInfo("UTC"))


@pytest.fixture(autouse=True)
def _fresh_pools() -> Iterator[None]:
    close_all()
    yield
    close_all()


def pg_toml(pg: PostgresServer, name: str = "warehouse", extra: str = "") -> str:
    """A connection to the fixture's Postgres, its password from ${PG_PASSWORD}."""
    return (
        f"[connections.{name}]\n"
        f'url = "postgresql://reader:${{PG_PASSWORD}}@127.0.0.1:{pg.port}/analytics"\n'
        f"{extra}"
    )


PIPELINE = """
title = "Orders"
source = "warehouse"
[schedule]
cron = "0 7 * * *"
timezone = "UTC"
period = "day"
[params]
region = "EMEA"
[queries.kpis]
sql = '''
SELECT count(*) AS orders, sum(revenue) AS revenue
FROM orders
WHERE region = $region AND order_ts >= $period_start AND order_ts < $period_end
'''
[[metrics]]
label = "Orders"
query = "kpis"
column = "orders"
"""


# --- eil.toml ----------------------------------------------------------------------


def test_dotenv_supplies_secrets_and_the_real_environment_wins(project) -> None:
    project.write("eil.toml", '[connections.w]\nurl = "postgresql://u:${PW}@db:5432/a"\n')
    project.write(".env", "# local secrets\nPW='from-dotenv'\nexport OTHER=1\n")
    settings = load_project_settings(project.root, env={})
    assert settings.connections["w"].url == "postgresql://u:from-dotenv@db:5432/a"
    assert settings.connections["w"].engine == "postgres"
    settings = load_project_settings(project.root, env={"PW": "from-env"})
    assert settings.connections["w"].url == "postgresql://u:from-env@db:5432/a"
    assert "from-env" in settings.secrets()


def test_a_password_written_in_the_file_is_refused_without_echoing_it(project) -> None:
    project.write("eil.toml", f'[connections.w]\nurl = "postgresql://u:{MARKER}@db/a"\n')
    with pytest.raises(ConfigError) as caught:
        load_project_settings(project.root, env={})
    message = str(caught.value)
    assert message.endswith(
        'eil.toml: connections.w.url: write the password as "${ENV_VAR}" '
        "(in the environment or .env): secrets are never kept in files"
    )
    assert MARKER not in message


def test_an_unset_variable_is_named(project) -> None:
    project.write("eil.toml", '[connections.w]\nurl = "mysql://u:${NOPE}@db/a"\n')
    with pytest.raises(ConfigError, match=r'connections\.w\.url: environment variable "NOPE"'):
        load_project_settings(project.root, env={})


def test_targets_override_connections(project) -> None:
    project.write(
        "eil.toml",
        """
        [connections.w]
        url = "postgresql://u:${PW}@prod-db/a"
        pool_size = 4
        [targets.dev.connections.w]
        url = "postgresql://u:${PW}@localhost/a_dev"
        """,
    )
    env = {"PW": "x"}
    assert "prod-db" in (load_project_settings(project.root, env=env).connections["w"].url or "")
    dev = load_project_settings(project.root, env=env, target="dev").connections["w"]
    assert dev.url == "postgresql://u:x@localhost/a_dev"
    assert dev.pool_size == 4
    by_env = load_project_settings(project.root, env={**env, "EIL_TARGET": "dev"})
    assert "a_dev" in (by_env.connections["w"].url or "")
    with pytest.raises(
        ConfigError, match='targets: no target named "qa" \\(targets defined: dev\\)'
    ):
        load_project_settings(project.root, env=env, target="qa")


@pytest.mark.parametrize(
    ("body", "engine"),
    [
        ('url = "postgresql://u@h/d"', "postgres"),
        ('url = "postgresql+psycopg://u@h/d"', "postgres"),
        ('url = "mariadb://u@h/d"', "mysql"),
        ('url = "snowflake://u@acme/DB"', "sqlalchemy"),
        ('url = "postgresql+pg8000://u@h/d"', "sqlalchemy"),
        ('kind = "duckdb"\npath = "data/w.duckdb"', "duckdb"),
        ("pool_size = 1", "duckdb"),
    ],
)
def test_the_engine_comes_from_kind_or_the_url(project, body: str, engine: str) -> None:
    project.write("eil.toml", f"[connections.c]\n{body}\n")
    assert load_project_settings(project.root, env={}).connections["c"].engine == engine


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('kind = "sqlite"', 'connections.c: a "sqlite" connection needs a "path"'),
        ('kind = "postgres"', 'connections.c: a "postgres" connection needs a "url"'),
        ('url = "mysql://u@h/d"\npath = "x"', '"path" is for duckdb and sqlite connections'),
        ("pool_size = 0", "connections.c.pool_size:"),
        ('statement_timeout = "soon"', "connections.c.statement_timeout:"),
    ],
)
def test_bad_connections_are_named(project, body: str, message: str) -> None:
    project.write("eil.toml", f"[connections.c]\n{body}\n")
    with pytest.raises(ConfigError) as caught:
        load_project_settings(project.root, env={})
    assert message in str(caught.value)


def test_an_unknown_source_name_is_a_validation_error(project) -> None:
    project.write("eil.toml", '[connections.warehouse]\nkind = "duckdb"\n')
    project.pipeline("orders", PIPELINE.replace('source = "warehouse"', 'source = "warehose"'))
    with pytest.raises(ConfigErrors) as caught:
        load_pipelines(project.pipelines, env={})
    assert str(caught.value).endswith(
        'orders.toml: source: no connection named "warehose" in eil.toml; '
        'did you mean "warehouse"? (connections defined: warehouse)'
    )


def test_a_named_duckdb_connection_runs_like_the_source_table(project) -> None:
    project.write("eil.toml", '[connections.files]\nkind = "duckdb"\n')
    project.write("data/t.csv", "x\n1\n2\n")
    with open_source("p", "files", project.root) as src:
        assert src.run("q", "SELECT sum(x) AS s FROM 'data/t.csv'", {})["s"].tolist() == [3]


# --- against the real servers -------------------------------------------------------


def test_a_pipeline_runs_on_a_named_postgres_connection_with_one_pooled_connection(
    project, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eil_pipelines.run import make_context, run_pipeline

    monkeypatch.setenv("PG_PASSWORD", READER_PASSWORD)
    project.write("eil.toml", pg_toml(postgres_server))
    path = project.pipeline("orders", PIPELINE)
    pipeline = load_pipeline(path, root=project.root)
    for day in range(3):
        at = AT.replace(day=3 + day)
        result = run_pipeline(pipeline, make_context(pipeline, at), project.reports)
        assert result.status == "succeeded", result.error
    (pool,) = pools()
    assert pool.opened == 1
    assert pool.open_count == 1
    report = next(project.reports.glob("orders/*.md")).read_text()
    assert "Orders" in report
    import json

    manifest = json.loads(next(project.reports.glob("orders/2*.json")).read_text())
    assert manifest["source"]["connection"] == "warehouse"
    assert manifest["source"]["engine"] == "postgres"
    assert manifest["source"]["server_version"].startswith("PostgreSQL ")
    for file in project.reports.rglob("*"):
        if file.is_file():
            assert MARKER not in file.read_text(errors="replace"), file


def test_a_dead_pooled_connection_is_replaced_after_a_server_restart(
    project, postgres_server: PostgresServer
) -> None:
    project.write("eil.toml", pg_toml(postgres_server))
    env_root = project.root
    (env_root / ".env").write_text(f"PG_PASSWORD={READER_PASSWORD}\n")
    with open_source("p", "warehouse", env_root) as src:
        assert src.run("q", "SELECT 1 AS one", {})["one"].tolist() == [1]
    postgres_server.server.restart()
    with open_source("p", "warehouse", env_root) as src:
        assert src.run("q", "SELECT 2 AS two", {})["two"].tolist() == [2]
    (pool,) = pools()
    assert (pool.opened, pool.replaced) == (2, 1)


def test_an_unclean_connection_is_not_reused(project, postgres_server: PostgresServer) -> None:
    project.write("eil.toml", pg_toml(postgres_server, extra='statement_timeout = "200ms"\n'))
    (project.root / ".env").write_text(f"PG_PASSWORD={READER_PASSWORD}\n")
    with open_source("p", "warehouse", project.root) as src:
        first = src.connection
        src.clean = False  # as after a failed rollback
    with open_source("p", "warehouse", project.root) as src:
        assert src.connection is not first
        assert first.closed


def test_check_connections_reports_versions_and_problems(
    project, postgres_server: PostgresServer, mariadb_server: MariaDBServer
) -> None:
    project.write(
        "eil.toml",
        pg_toml(postgres_server)
        + pg_toml(postgres_server, "wrong").replace("PG_PASSWORD", "WRONG_PASSWORD")
        + f'[connections.shop]\nurl = "mysql://reader:${{PG_PASSWORD}}@127.0.0.1:{mariadb_server.port}/analytics"\n'
        + '[connections.files]\nkind = "duckdb"\n',
    )
    env = {"PG_PASSWORD": READER_PASSWORD, "WRONG_PASSWORD": f"bad-{MARKER}"}
    checks = {c.name: c for c in check_connections(project.root, env=env)}
    assert set(checks) == {"warehouse", "wrong", "shop", "files"}
    assert checks["warehouse"].ok and checks["warehouse"].read_only is True
    assert checks["warehouse"].server_version.startswith("PostgreSQL ")
    assert checks["shop"].ok and checks["shop"].server_version.startswith("MariaDB ")
    assert checks["shop"].problems == []
    assert checks["files"].ok and checks["files"].server_version.startswith("DuckDB ")
    wrong = checks["wrong"]
    assert not wrong.ok
    assert wrong.problems == [
        f"{project.root / 'eil.toml'}: connections.wrong: authentication failed for user "
        f'"reader" at 127.0.0.1:{postgres_server.port}: check the user name and the password '
        "variable"
    ]
    text = repr([c.as_dict() for c in checks.values()])
    assert MARKER not in text and READER_PASSWORD not in text


def test_sqlalchemy_reaches_both_servers(
    project, postgres_server: PostgresServer, mariadb_server: MariaDBServer
) -> None:
    pytest.importorskip("sqlalchemy")
    pg_url = postgres_server.url().replace("postgresql://", "postgresql+psycopg://")
    my_url = mariadb_server.url().replace("mysql://", "mysql+pymysql://")
    project.write(
        "eil.toml",
        '[connections.pg]\nkind = "sqlalchemy"\nurl = "${PG}"\n'
        '[connections.my]\nkind = "sqlalchemy"\nurl = "${MY}"\n',
    )
    (project.root / ".env").write_text(f"PG={pg_url}\nMY={my_url}\n")
    for name in ("pg", "my"):
        with open_source("p", name, project.root) as src:
            frame = src.run(
                "q",
                "SELECT count(*) AS n, '$x 5%' AS lit FROM orders WHERE region = $region",
                {"region": "EMEA"},
            )
            assert frame["n"].tolist()[0] > 0
            assert frame["lit"].tolist() == ["$x 5%"]
            with pytest.raises(
                Exception,
                match=r"only one SELECT \(or WITH ... SELECT\) statement is allowed; found DELETE",
            ):
                src.run("q", "DELETE FROM orders", {})


def test_a_missing_sqlalchemy_dialect_is_named(project) -> None:
    pytest.importorskip("sqlalchemy")
    project.write("eil.toml", '[connections.snow]\nurl = "snowflake://u:${PW}@acme/DB"\n')
    (project.root / ".env").write_text(f"PW={MARKER}\n")
    with pytest.raises(Exception) as caught:
        open_source("p", "snow", project.root)
    message = str(caught.value)
    assert message.startswith(
        'pipeline "p", connection "snow": no SQLAlchemy dialect for "snowflake" URLs is installed'
    )
    assert MARKER not in message


def test_no_eil_toml_is_named(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r'no connection named "warehouse" in eil\.toml'):
        open_source("p", "warehouse", tmp_path)


def test_the_connections_command_prints_each_check_and_exits_2_on_a_problem(
    project, postgres_server: PostgresServer
) -> None:
    """``eil-run connections`` as a user runs it: text and JSON, no secret, exit codes."""
    project.write(
        "eil.toml",
        pg_toml(postgres_server)
        + pg_toml(postgres_server, "wrong").replace("PG_PASSWORD", "WRONG_PASSWORD"),
    )
    env = {**os.environ, "PG_PASSWORD": READER_PASSWORD, "WRONG_PASSWORD": f"bad-{MARKER}"}

    def eil(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "eil_pipelines", "connections", *args],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    shown = eil()
    assert shown.returncode == 2, shown.stderr
    assert shown.stdout.startswith("warehouse: ok (postgres, 127.0.0.1:"), shown.stdout
    assert "read-only" in shown.stdout
    assert "wrong: FAILED (postgres" in shown.stdout
    assert "connections.wrong: authentication failed for user" in shown.stderr
    as_json = eil("--format", "json")
    assert as_json.returncode == 2
    rows = {row["name"]: row for row in json.loads(as_json.stdout)}
    assert rows["warehouse"]["ok"] is True and rows["warehouse"]["read_only"] is True
    assert rows["wrong"]["ok"] is False and rows["wrong"]["problems"]
    for result in (shown, as_json):
        output = result.stdout + result.stderr
        assert MARKER not in output and READER_PASSWORD not in output
        assert "Traceback" not in output
    project.write("eil.toml", pg_toml(postgres_server))
    good = eil("--format", "json")
    assert good.returncode == 0, good.stderr
