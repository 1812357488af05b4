"""The Postgres ledger's tables, and how a database is brought up to them.

All tables are named ``eil_*`` so the ledger can share a database (and a
schema) with other applications.  Times are ``timestamptz`` (microseconds
kept, compared as instants).  The schema version lives in ``eil_meta``.
:func:`migrate_postgres` runs under a transaction-level advisory lock, so
runners starting together never both create the tables.

Least privileges
    ``eil-run ledger init`` (or the first runner) needs ``CREATE`` on the
    schema.  Afterwards a runner's role needs only ``SELECT, INSERT, UPDATE,
    DELETE`` on the ``eil_*`` tables and ``USAGE`` on their sequences
    (:data:`GRANTS` prints the statements).
"""

from __future__ import annotations

from typing import Any

__all__ = ["GRANTS", "PG_SCHEMA_VERSION", "PG_TABLES", "grants_sql", "migrate_postgres"]

#: The advisory lock key of schema changes (any stable 64-bit number).
_MIGRATE_LOCK = 0x45494C0001

_STEP_1 = (
    """
    CREATE TABLE IF NOT EXISTS eil_meta (
        key   text PRIMARY KEY,
        value text NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS eil_runs (
        id           bigserial PRIMARY KEY,
        pipeline     text        NOT NULL,
        scheduled_at timestamptz NOT NULL,
        run_id       text,
        status       text        NOT NULL CHECK (status IN
                       ('running', 'succeeded', 'failed', 'skipped', 'timed_out', 'abandoned',
                        'waiting')),
        attempt      integer     NOT NULL DEFAULT 1,
        started_at   timestamptz,
        finished_at  timestamptz,
        duration_s   double precision,
        error        text,
        files        jsonb       NOT NULL DEFAULT '[]',
        pid          integer,
        host         text,
        owner_token  text,
        node         text,
        lease_until  timestamptz,
        summary      jsonb,
        UNIQUE (pipeline, scheduled_at)
    )
    """,
    "CREATE INDEX IF NOT EXISTS eil_runs_scheduled_at ON eil_runs (scheduled_at)",
    # The heartbeat renews, and takeover scans, running and waiting rows only: a partial index.
    "CREATE INDEX IF NOT EXISTS eil_runs_running ON eil_runs (lease_until)"
    " WHERE status IN ('running', 'waiting')",
    "CREATE INDEX IF NOT EXISTS eil_runs_status ON eil_runs (status)",
    """
    CREATE TABLE IF NOT EXISTS eil_leases (
        name         text PRIMARY KEY,
        holder       text NOT NULL,
        pid          integer,
        host         text,
        owner_token  text,
        node         text,
        acquired_at  timestamptz NOT NULL,
        lease_until  timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS eil_outbox (
        id              bigserial PRIMARY KEY,
        pipeline        text        NOT NULL,
        scheduled_at    timestamptz NOT NULL,
        kind            text        NOT NULL CHECK (kind IN
                          ('report', 'alert', 'alert_cleared', 'failure', 'recovery')),
        channel         text        NOT NULL CHECK (channel IN ('email', 'webhook')),
        target          text        NOT NULL,
        recipient       text        NOT NULL,
        subject         text,
        status          text        NOT NULL CHECK (status IN
                          ('pending', 'sending', 'sent', 'failed', 'gave_up', 'skipped')),
        attempts        integer     NOT NULL DEFAULT 0,
        max_attempts    integer     NOT NULL DEFAULT 1,
        next_attempt_at timestamptz,
        created_at      timestamptz NOT NULL,
        updated_at      timestamptz NOT NULL,
        sent_at         timestamptz,
        last_error      text,
        content_hash    text,
        payload         bytea,
        pid             integer,
        host            text,
        owner_token     text,
        node            text,
        lease_until     timestamptz,
        UNIQUE (pipeline, scheduled_at, kind, target)
    )
    """,
    "CREATE INDEX IF NOT EXISTS eil_outbox_due ON eil_outbox (status, next_attempt_at)",
    """
    CREATE TABLE IF NOT EXISTS eil_delivery_state (
        pipeline          text PRIMARY KEY,
        failing           boolean NOT NULL DEFAULT false,
        failing_since     timestamptz,
        alert_active      boolean NOT NULL DEFAULT false,
        alert_since       timestamptz,
        last_scheduled_at timestamptz,
        updated_at        timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS eil_nodes (
        node        text PRIMARY KEY,
        host        text        NOT NULL,
        pid         integer     NOT NULL,
        version     text        NOT NULL,
        started_at  timestamptz NOT NULL,
        last_beat   timestamptz NOT NULL,
        running     integer     NOT NULL DEFAULT 0,
        last_error  text,
        stopped     boolean     NOT NULL DEFAULT false
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS eil_run_requests (
        id           bigserial PRIMARY KEY,
        pipeline     text        NOT NULL,
        requested_at timestamptz NOT NULL DEFAULT now(),
        requested_by text        NOT NULL,
        taken_by     text,
        taken_at     timestamptz
    )
    """,
    "CREATE INDEX IF NOT EXISTS eil_run_requests_open ON eil_run_requests (pipeline)"
    " WHERE taken_by IS NULL",
)

#: "Run now" with parameters: the values as typed, JSON text; NULL for none.
_STEP_2: tuple[str, ...] = ("ALTER TABLE eil_run_requests ADD COLUMN IF NOT EXISTS params text",)

#: Step ``i`` brings a database from schema version ``i`` to ``i + 1``.
_STEPS: tuple[tuple[str, ...], ...] = (_STEP_1, _STEP_2)
#: The schema version this code writes.
PG_SCHEMA_VERSION = len(_STEPS)
#: The tables of the newest schema.
PG_TABLES = (
    "eil_meta",
    "eil_runs",
    "eil_leases",
    "eil_outbox",
    "eil_delivery_state",
    "eil_nodes",
    "eil_run_requests",
)
#: The sequences behind the ``bigserial`` ids.
_SEQUENCES = ("eil_runs_id_seq", "eil_outbox_id_seq", "eil_run_requests_id_seq")


def grants_sql(role: str) -> list[str]:
    """The statements that give ``role`` the least privileges a runner needs (quoted name)."""
    quoted = '"' + role.replace('"', '""') + '"'
    return [
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(PG_TABLES)} TO {quoted}",
        f"GRANT USAGE, SELECT ON SEQUENCE {', '.join(_SEQUENCES)} TO {quoted}",
    ]


#: The grants for a role named ``eil_runner``, for the documentation.
GRANTS = grants_sql("eil_runner")


def stored_version(conn: Any) -> int:
    """The schema version of the database on ``conn`` (0: no ledger tables yet)."""
    found = conn.execute("SELECT to_regclass('eil_meta') IS NOT NULL").fetchone()[0]
    if not found:
        return 0
    row = conn.execute("SELECT value FROM eil_meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate_postgres(conn: Any) -> int:
    """Bring the database on ``conn`` (a psycopg connection, autocommit) up to
    :data:`PG_SCHEMA_VERSION`; return the version it had.

    Raises ``RuntimeError`` when the database was written by a newer
    eil-pipelines (the caller turns it into a :class:`LedgerError`).
    """
    version = stored_version(conn)
    if version == PG_SCHEMA_VERSION:
        return version
    if version > PG_SCHEMA_VERSION:
        raise RuntimeError(
            f"has schema version {version}, but this version of eil-pipelines knows only up "
            f"to {PG_SCHEMA_VERSION}: upgrade eil-pipelines"
        )
    with conn.transaction():
        # Serialise runners that start together: the second waits, then sees the tables.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        version = stored_version(conn)
        for step in _STEPS[version:]:
            for statement in step:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO eil_meta (key, value) VALUES ('schema_version', %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(PG_SCHEMA_VERSION),),
        )
    return version
