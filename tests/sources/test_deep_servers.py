"""``validate --deep`` on servers: queries prepared and described, never run."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from servers import READER_PASSWORD, MariaDBServer, PostgresServer

from eil_pipelines.run.deep import deep_problems
from eil_pipelines.sources.pool import close_all
from eil_pipelines.spec import load_pipeline

NOW = datetime(2026, 6, 3, 7, 0, tzinfo=ZoneInfo("UTC"))

PIPELINE = """
title = "Orders"
source = "warehouse"
[queries.kpis]
sql = '''
SELECT count(*) AS orders, 1 / 0 AS never_run
FROM orders
WHERE order_ts >= $period_start AND order_ts < $period_end
'''
[queries.broken]
sql = "SELECT region,\\n  nope FROM orders"
[[metrics]]
label = "Orders"
query = "kpis"
column = "order_count"
"""


def _problems(project, url: str) -> list[tuple[str, str]]:
    close_all()
    project.write("eil.toml", f'[connections.warehouse]\nurl = "{url}"\n')
    (project.root / ".env").write_text(f"DB_PASSWORD={READER_PASSWORD}\n")
    path = project.pipeline("orders", PIPELINE)
    try:
        return deep_problems(load_pipeline(path, root=project.root), now=NOW)
    finally:
        close_all()


def test_deep_on_postgres_prepares_and_checks_columns(project, postgres_server: PostgresServer):
    url = f"postgresql://reader:${{DB_PASSWORD}}@127.0.0.1:{postgres_server.port}/analytics"
    problems = _problems(project, url)
    # 1 / 0 is never executed: only "broken" and the metric's column are wrong.
    assert ("queries.broken", 'column "nope" does not exist (line 2 of the SQL)') in problems
    assert any(key == "metrics[0].column" and "order_count" in msg for key, msg in problems)
    assert not any(key == "queries.kpis" for key, _ in problems)


def test_deep_on_mariadb(project, mariadb_server: MariaDBServer):
    url = f"mysql://reader:${{DB_PASSWORD}}@127.0.0.1:{mariadb_server.port}/analytics"
    problems = _problems(project, url)
    assert any(key == "queries.broken" and "Unknown column 'nope'" in msg for key, msg in problems)
    assert any(key == "metrics[0].column" and "order_count" in msg for key, msg in problems)
