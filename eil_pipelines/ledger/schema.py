"""The SQLite ledger's schema, its migrations, and how times are stored in it.

The schema version lives in ``PRAGMA user_version``; :func:`migrate` brings
an older file up to :data:`SCHEMA_VERSION` by running the steps in
:data:`MIGRATIONS` in order.  To add a table, append a step; never edit a
released one.

Times are stored as UTC ISO 8601 text with an offset
(``2026-11-27T06:00:00+00:00``) and returned as aware UTC datetimes, so a
Europe/Berlin time and its UTC equivalent are the same key, and the text
sorts by time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

from .records import LedgerCorruptError, LedgerError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "check_schema",
    "from_text",
    "migrate",
    "to_text",
]


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE runs (
            id           INTEGER PRIMARY KEY,
            pipeline     TEXT    NOT NULL,
            scheduled_at TEXT    NOT NULL,
            run_id       TEXT,
            status       TEXT    NOT NULL CHECK (status IN
                           ('running', 'succeeded', 'failed', 'skipped', 'timed_out', 'abandoned')),
            attempt      INTEGER NOT NULL DEFAULT 1,
            started_at   TEXT,
            finished_at  TEXT,
            duration_s   REAL,
            error        TEXT,
            files        TEXT    NOT NULL DEFAULT '[]',
            pid          INTEGER,
            host         TEXT,
            owner_token  TEXT,
            summary      TEXT,
            UNIQUE (pipeline, scheduled_at)
        )
        """
    )
    # history() without a pipeline orders by time; mark_abandoned() and
    # failed_only filter by status.  (pipeline, scheduled_at) is covered by UNIQUE.
    conn.execute("CREATE INDEX runs_scheduled_at ON runs (scheduled_at)")
    conn.execute("CREATE INDEX runs_status ON runs (status)")


def _migrate_to_2(conn: sqlite3.Connection) -> None:
    # Named, exclusive leases: "one backfill of pipeline X at a time", held by a
    # process and released by it (or found dead and taken over).
    conn.execute(
        """
        CREATE TABLE leases (
            name         TEXT PRIMARY KEY,
            holder       TEXT NOT NULL,
            pid          INTEGER,
            host         TEXT,
            owner_token  TEXT,
            acquired_at  TEXT NOT NULL
        )
        """
    )


def _migrate_to_3(conn: sqlite3.Connection) -> None:
    # The delivery outbox: one row per message (report, alert, notice) and
    # recipient.  Rendering inserts a row; sending claims it ('sending'), then
    # records 'sent', or 'failed' with the time of the next attempt, or
    # 'gave_up'.  The UNIQUE key is the idempotency key: a message for a run is
    # queued once, however often the run's outcome is processed.  ``target`` is
    # the address, or a fingerprint of a webhook URL (the URL itself is a
    # secret and never stored); ``payload`` is the rendered message, dropped
    # once it is sent or given up.
    conn.execute(
        """
        CREATE TABLE outbox (
            id              INTEGER PRIMARY KEY,
            pipeline        TEXT    NOT NULL,
            scheduled_at    TEXT    NOT NULL,
            kind            TEXT    NOT NULL CHECK (kind IN
                              ('report', 'alert', 'alert_cleared', 'failure', 'recovery')),
            channel         TEXT    NOT NULL CHECK (channel IN ('email', 'webhook')),
            target          TEXT    NOT NULL,
            recipient       TEXT    NOT NULL,
            subject         TEXT,
            status          TEXT    NOT NULL CHECK (status IN
                              ('pending', 'sending', 'sent', 'failed', 'gave_up', 'skipped')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            max_attempts    INTEGER NOT NULL DEFAULT 1,
            next_attempt_at TEXT,
            created_at      TEXT    NOT NULL,
            updated_at      TEXT    NOT NULL,
            sent_at         TEXT,
            last_error      TEXT,
            content_hash    TEXT,
            payload         BLOB,
            pid             INTEGER,
            host            TEXT,
            owner_token     TEXT,
            UNIQUE (pipeline, scheduled_at, kind, target)
        )
        """
    )
    conn.execute("CREATE INDEX outbox_due ON outbox (status, next_attempt_at)")
    # Per pipeline: is a failure notice out (so the next success says "recovered"
    # and further failures stay quiet), is its alert firing, and the newest run
    # that changed either (an older run finishing late changes nothing).
    conn.execute(
        """
        CREATE TABLE delivery_state (
            pipeline          TEXT PRIMARY KEY,
            failing           INTEGER NOT NULL DEFAULT 0,
            failing_since     TEXT,
            alert_active      INTEGER NOT NULL DEFAULT 0,
            alert_since       TEXT,
            last_scheduled_at TEXT,
            updated_at        TEXT NOT NULL
        )
        """
    )


def _migrate_runs_waiting(conn: sqlite3.Connection) -> None:
    # A run that waits for its upstream pipelines or a freshness gate holds its
    # key as 'waiting' (so no other process claims it) until it starts or gives
    # up.  SQLite can't change a CHECK constraint: copy the table.
    conn.execute(
        """
        CREATE TABLE runs_new (
            id           INTEGER PRIMARY KEY,
            pipeline     TEXT    NOT NULL,
            scheduled_at TEXT    NOT NULL,
            run_id       TEXT,
            status       TEXT    NOT NULL CHECK (status IN
                           ('running', 'succeeded', 'failed', 'skipped', 'timed_out', 'abandoned',
                            'waiting')),
            attempt      INTEGER NOT NULL DEFAULT 1,
            started_at   TEXT,
            finished_at  TEXT,
            duration_s   REAL,
            error        TEXT,
            files        TEXT    NOT NULL DEFAULT '[]',
            pid          INTEGER,
            host         TEXT,
            owner_token  TEXT,
            summary      TEXT,
            UNIQUE (pipeline, scheduled_at)
        )
        """
    )
    conn.execute("INSERT INTO runs_new SELECT * FROM runs")
    conn.execute("DROP TABLE runs")
    conn.execute("ALTER TABLE runs_new RENAME TO runs")
    conn.execute("CREATE INDEX runs_scheduled_at ON runs (scheduled_at)")
    conn.execute("CREATE INDEX runs_status ON runs (status)")


def _migrate_to_5(conn: sqlite3.Connection) -> None:
    # Runners' heartbeats (one row per runner, replaced at each beat) for the
    # status page and `eil-run status`; "run now" requests from the status page,
    # taken by a running scheduler (taken_by set) rather than deleted, so the
    # page can say who took one.
    conn.execute(
        """
        CREATE TABLE nodes (
            node        TEXT    PRIMARY KEY,
            host        TEXT    NOT NULL,
            pid         INTEGER NOT NULL,
            version     TEXT    NOT NULL,
            started_at  TEXT    NOT NULL,
            last_beat   TEXT    NOT NULL,
            running     INTEGER NOT NULL DEFAULT 0,
            last_error  TEXT,
            stopped     INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE run_requests (
            id           INTEGER PRIMARY KEY,
            pipeline     TEXT NOT NULL,
            requested_at TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            taken_by     TEXT,
            taken_at     TEXT
        )
        """
    )
    conn.execute("CREATE INDEX run_requests_open ON run_requests (pipeline) WHERE taken_by IS NULL")
    # The status overview: each pipeline's newest success and its failures
    # after it, read from the index alone.
    conn.execute("CREATE INDEX runs_status_pipeline ON runs (status, pipeline, scheduled_at)")


def _migrate_to_6(conn: sqlite3.Connection) -> None:
    # "Run now" with parameters (--param from the status page): the values as
    # typed, JSON text; NULL for a request without any (every older request).
    conn.execute("ALTER TABLE run_requests ADD COLUMN params TEXT")


def _migrate_to_7(conn: sqlite3.Connection) -> None:
    # Each pipeline's runs version, bumped by triggers on every write to its rows,
    # whoever writes: the status page reads again only the pipelines whose version
    # moved since its last read (a runner's heartbeat moves none).  A step that
    # rebuilds the runs table must create these triggers again.
    conn.execute(
        "CREATE TABLE runs_versions (pipeline TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        " WITHOUT ROWID"
    )
    conn.execute(
        "INSERT INTO runs_versions (pipeline, version) SELECT DISTINCT pipeline, 1 FROM runs"
    )
    bump = (
        "INSERT INTO runs_versions (pipeline, version) VALUES ({row}.pipeline, 1)"
        " ON CONFLICT (pipeline) DO UPDATE SET version = version + 1;"
    )
    conn.execute(
        f"CREATE TRIGGER runs_versions_insert AFTER INSERT ON runs"
        f" BEGIN {bump.format(row='NEW')} END"
    )
    conn.execute(
        f"CREATE TRIGGER runs_versions_update AFTER UPDATE ON runs"
        f" BEGIN {bump.format(row='NEW')} END"
    )
    conn.execute(
        "CREATE TRIGGER runs_versions_moved AFTER UPDATE OF pipeline ON runs"
        f" WHEN OLD.pipeline IS NOT NEW.pipeline BEGIN {bump.format(row='OLD')} END"
    )
    conn.execute(
        f"CREATE TRIGGER runs_versions_delete AFTER DELETE ON runs"
        f" BEGIN {bump.format(row='OLD')} END"
    )


#: Step ``i`` brings a file from schema version ``i`` to ``i + 1``.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migrate_to_1,
    _migrate_to_2,
    _migrate_to_3,
    _migrate_runs_waiting,
    _migrate_to_5,
    _migrate_to_6,
    _migrate_to_7,
)
#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)
#: ``TABLES[v]``: the tables a file at schema version ``v`` has (``v`` from 0 to the newest).
TABLES: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset({"runs"}),
    frozenset({"runs", "leases"}),
    frozenset({"runs", "leases", "outbox", "delivery_state"}),
    frozenset({"runs", "leases", "outbox", "delivery_state"}),
    frozenset({"runs", "leases", "outbox", "delivery_state", "nodes", "run_requests"}),
    frozenset({"runs", "leases", "outbox", "delivery_state", "nodes", "run_requests"}),
    frozenset(
        {"runs", "leases", "outbox", "delivery_state", "nodes", "run_requests", "runs_versions"}
    ),
)


def check_schema(conn: sqlite3.Connection, *, name: str) -> int:
    """The file's schema version, once it is known to be a run ledger this code can read.

    Raises :class:`LedgerCorruptError` for another program's SQLite
    database (tables but no schema version, or a version whose tables are
    missing), so it is never taken for an empty ledger and written into; and
    :class:`LedgerError` for a file written by a newer eil-pipelines.
    ``name`` is how messages name the file.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"{name} has schema version {version}, but this version of "
            f"eil-pipelines knows only up to {SCHEMA_VERSION}: upgrade eil-pipelines"
        )
    tables = {
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%'"
            " ESCAPE '\\'"
        )
    }
    if version == 0 and tables:
        raise LedgerCorruptError(
            f"{name} is a SQLite database, but not an eil-pipelines run ledger: it has "
            f"tables ({', '.join(sorted(tables))}) and no ledger schema version; "
            "point eil-pipelines at another file, or move this one away"
        )
    if version < 0 or not TABLES[version] <= tables:
        missing = ", ".join(sorted(TABLES[version] - tables)) if version >= 0 else "all"
        raise LedgerCorruptError(
            f"{name} is not an eil-pipelines run ledger, or is damaged: it says schema "
            f"version {version}, but tables are missing ({missing})"
        )
    return version


def migrate(conn: sqlite3.Connection, *, name: str = "the run ledger") -> int:
    """Bring the ledger schema on ``conn`` up to :data:`SCHEMA_VERSION`; return the old version.

    ``conn`` must be in autocommit mode (``isolation_level=None``).  The steps
    run in one ``BEGIN IMMEDIATE`` transaction, so two processes opening a new
    file at once can't both create the tables, and a failed step leaves the
    file as it was.  Raises :class:`LedgerError` when the file was written by
    a newer version of eil-pipelines, and :class:`LedgerCorruptError` when it
    is another program's database (see :func:`check_schema`); ``name`` is how
    those messages name the file.
    """
    version = check_schema(conn, name=name)
    if version == SCHEMA_VERSION:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = check_schema(conn, name=name)
        for step in MIGRATIONS[version:]:
            step(conn)
        # PRAGMA can't take a bound parameter; SCHEMA_VERSION is our own int.
        conn.execute(f"PRAGMA user_version = {int(SCHEMA_VERSION)}")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return version


def to_text(value: datetime, name: str) -> str:
    """``value`` as the stored text (UTC, ISO 8601); ``name`` is the argument's, for errors.

    Raises ``TypeError`` for a non-datetime and ``ValueError`` for a naive one.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")
    utc = value.astimezone(UTC)
    # Whole seconds print without a fraction, matching the documented form; the
    # text still sorts by time because "+" sorts before ".".
    return utc.isoformat(timespec="seconds" if utc.microsecond == 0 else "microseconds")


def from_text(text: str | None) -> datetime | None:
    """The aware UTC datetime of stored text, or ``None`` for ``NULL``."""
    if text is None:
        return None
    return datetime.fromisoformat(text).astimezone(UTC)
