"""Session fixtures: a real PostgreSQL and a real MariaDB (see ``servers.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import MariaDBServer, PostgresServer, start_mariadb, start_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """PostgreSQL on 127.0.0.1 with the sample orders in ``analytics.orders``."""
    pytest.importorskip("psycopg", reason="pip install -e '.[test]' installs psycopg")
    pg = start_postgres()
    try:
        yield pg
    finally:
        pg.server.remove()


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    """MariaDB on 127.0.0.1 with the sample orders in ``analytics.orders``."""
    pytest.importorskip("pymysql", reason="pip install -e '.[test]' installs PyMySQL")
    maria = start_mariadb()
    try:
        yield maria
    finally:
        maria.server.remove()
