"""The ledger's administration: which ledger a project uses, ``ledger init``,
``ledger migrate --to postgresql://…`` and ``ledger check``.

The CLI (:mod:`eil_pipelines.cli.ledger`) only parses and prints; the logic is here.
Migration copies a SQLite ledger's rows into Postgres with ``INSERT … ON
CONFLICT DO NOTHING`` on each table's key, so running it twice (or after a
partial copy) copies only what is missing and never changes a row Postgres
already holds.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..errors import EilError
from ..ledger import LedgerBackend, LedgerError, open_ledger
from ..ledger.factory import POSTGRES_SCHEMES, redact_url
from ..ledger.postgres_schema import PG_SCHEMA_VERSION, grants_sql
from ..ledger.schema import from_text
from ..spec.project import load_project_settings
from . import ledger_path

__all__ = [
    "CheckResult",
    "MigrateResult",
    "check_ledgers",
    "init_ledger",
    "ledger_settings",
    "migrate_ledger",
    "open_project_ledger",
    "runner_grants",
]


def ledger_settings(
    root: Path, env: Mapping[str, str] | None = None
) -> tuple[str | None, timedelta]:
    """``[ledger] url`` (``None``: the SQLite file) and ``lease`` of the project at ``root``."""
    settings = load_project_settings(root, env=os.environ if env is None else env)
    return settings.ledger.url, settings.ledger.lease


def open_project_ledger(
    root: Path,
    reports_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    node: str | None = None,
    read_only: bool = False,
) -> LedgerBackend:
    """The ledger the project at ``root`` names in ``eil.toml`` (default: the SQLite
    file under ``reports_dir``)."""
    url, lease = ledger_settings(root, env)
    if url is None:
        return open_ledger(ledger_path(reports_dir), read_only=read_only)
    return open_ledger(url, read_only=read_only, lease=lease, node=node)


def _is_postgres(url: str) -> bool:
    return "://" in url and url.split("://", 1)[0].lower() in POSTGRES_SCHEMES


def init_ledger(url: str) -> str:
    """Create the Postgres ledger's tables at ``url`` (idempotent); return what was done."""
    if not _is_postgres(url):
        raise EilError(f"ledger init: {redact_url(url)} is not a postgresql:// URL")
    with open_ledger(url, create=True) as ledger:
        version = ledger.schema_version()
    return f"run ledger {redact_url(url)} is ready (schema version {version}/{PG_SCHEMA_VERSION})"


def runner_grants(role: str) -> list[str]:
    """The ``GRANT`` statements that give ``role`` the least privileges a runner needs."""
    return grants_sql(role)


@dataclass
class MigrateResult:
    """What :func:`migrate_ledger` copied (rows already in Postgres are not counted)."""

    runs: int = 0
    outbox: int = 0
    delivery_state: int = 0
    leases: int = 0


def _sqlite_rows(path: Path, sql: str) -> list[sqlite3.Row]:
    if not path.exists():
        raise EilError(f"ledger migrate: there is no SQLite ledger at {path}")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.Error as exc:
        raise LedgerError(f"ledger migrate: cannot read {path}: {exc}") from None
    finally:
        conn.close()


def _pg(url: str) -> Any:
    """A psycopg connection to the ledger at ``url``, with the tables created."""
    with open_ledger(url, create=True):
        pass  # creates the tables, and says clearly when the server can't be reached
    import psycopg

    try:
        return psycopg.connect(url, options="-c TimeZone=UTC", connect_timeout=10)
    except psycopg.Error:
        raise LedgerError(f"ledger migrate: cannot reach {redact_url(url)}") from None


def _t(text: str | None) -> Any:
    return from_text(text)


def migrate_ledger(sqlite_file: Path, url: str) -> MigrateResult:
    """Copy the SQLite ledger ``sqlite_file`` into the Postgres ledger at ``url``, idempotently.

    Runs, the outbox (payloads included), delivery state and named leases are
    copied in one transaction; a key Postgres already holds keeps its row.
    """
    if not _is_postgres(url):
        raise EilError(f"ledger migrate: --to must be a postgresql:// URL, not {redact_url(url)}")
    runs = _sqlite_rows(sqlite_file, "SELECT * FROM runs ORDER BY id")
    outbox = _sqlite_rows(sqlite_file, "SELECT * FROM outbox ORDER BY id")
    states = _sqlite_rows(sqlite_file, "SELECT * FROM delivery_state")
    leases = _sqlite_rows(sqlite_file, "SELECT * FROM leases")
    result = MigrateResult()
    import psycopg

    conn = _pg(url)
    try:
        with conn.transaction():
            for r in runs:
                cursor = conn.execute(
                    "INSERT INTO eil_runs (pipeline, scheduled_at, run_id, status, attempt,"
                    " started_at, finished_at, duration_s, error, files, pid, host, owner_token,"
                    " summary, lease_until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb,"
                    " %s, %s, %s, %s::jsonb,"
                    # A running row keeps one lease from now: if its runner is alive
                    # it renews it; if not, it is taken over like any dead runner's.
                    " CASE WHEN %s = 'running' THEN now() + interval '30 seconds' END)"
                    " ON CONFLICT (pipeline, scheduled_at) DO NOTHING",
                    (
                        r["pipeline"],
                        _t(r["scheduled_at"]),
                        r["run_id"],
                        r["status"],
                        r["attempt"],
                        _t(r["started_at"]),
                        _t(r["finished_at"]),
                        r["duration_s"],
                        r["error"],
                        r["files"] or "[]",
                        r["pid"],
                        r["host"],
                        r["owner_token"],
                        r["summary"],
                        r["status"],
                    ),
                )
                result.runs += cursor.rowcount
            for o in outbox:
                cursor = conn.execute(
                    "INSERT INTO eil_outbox (pipeline, scheduled_at, kind, channel, target,"
                    " recipient, subject, status, attempts, max_attempts, next_attempt_at,"
                    " created_at, updated_at, sent_at, last_error, content_hash, payload, pid,"
                    " host, owner_token, lease_until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                    " CASE WHEN %s = 'sending' THEN now() + interval '30 seconds' END)"
                    " ON CONFLICT (pipeline, scheduled_at, kind, target) DO NOTHING",
                    (
                        o["pipeline"],
                        _t(o["scheduled_at"]),
                        o["kind"],
                        o["channel"],
                        o["target"],
                        o["recipient"],
                        o["subject"],
                        o["status"],
                        o["attempts"],
                        o["max_attempts"],
                        _t(o["next_attempt_at"]),
                        _t(o["created_at"]),
                        _t(o["updated_at"]),
                        _t(o["sent_at"]),
                        o["last_error"],
                        o["content_hash"],
                        o["payload"],
                        o["pid"],
                        o["host"],
                        o["owner_token"],
                        o["status"],
                    ),
                )
                result.outbox += cursor.rowcount
            for s in states:
                cursor = conn.execute(
                    "INSERT INTO eil_delivery_state (pipeline, failing, failing_since,"
                    " alert_active, alert_since, last_scheduled_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (pipeline) DO NOTHING",
                    (
                        s["pipeline"],
                        bool(s["failing"]),
                        _t(s["failing_since"]),
                        bool(s["alert_active"]),
                        _t(s["alert_since"]),
                        _t(s["last_scheduled_at"]),
                        _t(s["updated_at"]),
                    ),
                )
                result.delivery_state += cursor.rowcount
            for lease in leases:
                cursor = conn.execute(
                    "INSERT INTO eil_leases (name, holder, pid, host, owner_token, acquired_at,"
                    " lease_until) VALUES (%s, %s, %s, %s, %s, %s,"
                    " now() + interval '30 seconds') ON CONFLICT (name) DO NOTHING",
                    (
                        lease["name"],
                        lease["holder"],
                        lease["pid"],
                        lease["host"],
                        lease["owner_token"],
                        _t(lease["acquired_at"]),
                    ),
                )
                result.leases += cursor.rowcount
    except psycopg.Error as exc:
        raise LedgerError(
            f"ledger migrate: could not copy into {redact_url(url)}: "
            f"{type(exc).__name__}; nothing was copied"
        ) from None
    finally:
        conn.close()
    return result


@dataclass
class CheckResult:
    """Keys one ledger holds and the other doesn't (empty lists: the same keys)."""

    only_in_sqlite: list[str] = field(default_factory=list)
    only_in_postgres: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """Both ledgers hold the same keys."""
        return not self.only_in_sqlite and not self.only_in_postgres


def _keys_sqlite(path: Path) -> set[str]:
    keys = {
        f"run {r['pipeline']} {from_text(r['scheduled_at']).isoformat()}"  # type: ignore[union-attr]
        for r in _sqlite_rows(path, "SELECT pipeline, scheduled_at FROM runs")
    }
    keys |= {
        f"message {r['pipeline']} {from_text(r['scheduled_at']).isoformat()}"  # type: ignore[union-attr]
        f" {r['kind']} {r['target']}"
        for r in _sqlite_rows(path, "SELECT pipeline, scheduled_at, kind, target FROM outbox")
    }
    keys |= {f"lease {r['name']}" for r in _sqlite_rows(path, "SELECT name FROM leases")}
    return keys


def _keys_postgres(url: str) -> set[str]:
    conn = _pg(url)
    try:
        keys = {
            f"run {p} {at.isoformat()}"
            for p, at in conn.execute("SELECT pipeline, scheduled_at FROM eil_runs")
        }
        keys |= {
            f"message {p} {at.isoformat()} {k} {t}"
            for p, at, k, t in conn.execute(
                "SELECT pipeline, scheduled_at, kind, target FROM eil_outbox"
            )
        }
        keys |= {f"lease {n}" for (n,) in conn.execute("SELECT name FROM eil_leases")}
    finally:
        conn.close()
    return keys


def check_ledgers(sqlite_file: Path, url: str) -> CheckResult:
    """Compare the keys (runs, messages, leases) of a SQLite ledger and a Postgres one."""
    if not _is_postgres(url):
        raise EilError(f"ledger check: --to must be a postgresql:// URL, not {redact_url(url)}")
    mine, theirs = _keys_sqlite(sqlite_file), _keys_postgres(url)
    return CheckResult(sorted(mine - theirs), sorted(theirs - mine))
