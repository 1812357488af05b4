"""A real Postgres for the ledger tests: a database ``eil`` whose tables the admin
creates (``eil-run ledger init``), used by a role with only a runner's privileges.

The server is the one of the source tests (``tests/sources/servers.py``).  The
runner role's password carries :data:`servers.MARKER`, which tests search for
in messages.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sources"))

from servers import MARKER, PostgresServer, start_postgres

from eil_pipelines.ledger.postgres_schema import PG_TABLES, grants_sql

__all__ = ["LEDGER_DB", "MARKER", "RUNNER_PASSWORD", "PgLedgerServer", "start_ledger_server"]

LEDGER_DB = "eil"
RUNNER_PASSWORD = f"runner-{MARKER}"


class PgLedgerServer:
    """A Postgres with an empty ledger database and a least-privilege runner role."""

    def __init__(self, pg: PostgresServer):
        self.pg = pg

    @property
    def url(self) -> str:
        """The runner's URL (its password holds the marker)."""
        return self.pg.url("eil_runner", RUNNER_PASSWORD, LEDGER_DB)

    @property
    def admin_url(self) -> str:
        """The admin's URL, for ``ledger init``."""
        from servers import ADMIN_PASSWORD

        return self.pg.url("eil_admin", ADMIN_PASSWORD, LEDGER_DB)

    def admin(self) -> Any:
        """A psycopg connection to the ledger database as the admin (autocommit)."""
        return self.pg.admin(db=LEDGER_DB)

    def init(self) -> None:
        """Create the tables as the admin and grant the runner its privileges."""
        from eil_pipelines.ledger.postgres_schema import migrate_postgres

        with self.admin() as conn:
            migrate_postgres(conn)
            for statement in grants_sql("eil_runner"):
                conn.execute(statement)

    def wipe(self) -> None:
        """Empty every ledger table (a fresh ledger, same schema)."""
        tables = [t for t in PG_TABLES if t != "eil_meta"]
        with self.admin() as conn:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")

    def stop(self) -> None:
        """Stop and delete the server."""
        self.pg.server.remove()


def start_ledger_server() -> PgLedgerServer:
    """Start Postgres, create the ledger database, its tables and the runner role."""
    pg = start_postgres()
    with pg.admin(db="postgres") as conn:
        conn.execute(f"CREATE DATABASE {LEDGER_DB}")
        conn.execute(f"CREATE ROLE eil_runner LOGIN PASSWORD '{RUNNER_PASSWORD}'")
    server = PgLedgerServer(pg)
    server.init()
    return server
