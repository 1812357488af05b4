"""The run ledger: one row per (pipeline, scheduled time), in SQLite.

The ledger is what makes a scheduled time run at most once, across threads,
processes and restarts: a worker first *claims* the time (an atomic insert of a
``running`` row), runs the pipeline, then *finishes* the row with its outcome.
Retries and ``--reprocess`` backfills *reclaim* a finished row; runs whose
process died are found by :meth:`Ledger.mark_abandoned` and can be reclaimed.

Concurrency model
    The file is opened in WAL mode with a busy timeout of
    :data:`BUSY_TIMEOUT_S` seconds, so readers never block the writer and two
    ``eil-run`` processes may share it.  Every thread gets its own connection
    (connections are never shared across threads), and every write happens in
    a ``BEGIN IMMEDIATE`` transaction, which takes the write lock up front so
    a check-then-write can't interleave with another writer.

Times
    Every datetime passed in must be aware.  Times are stored as UTC ISO 8601
    text with an offset (``2026-11-27T06:00:00+00:00``) and returned as aware
    UTC datetimes, so a Europe/Berlin time and its UTC equivalent are the same
    key.

Secrets
    The ledger stores the text it is given.  Callers pass *redacted* error
    text (no connection strings, tokens or passwords); the ledger cannot tell
    a secret from a message.

Schema
    The schema version lives in ``PRAGMA user_version``; :func:`migrate` brings
    an older file up to :data:`SCHEMA_VERSION` by running the steps in
    :data:`MIGRATIONS` in order.  To add a table (a delivery outbox, say),
    append a step; never edit a released one.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eil_pipelines.errors import EilError

__all__ = [
    "BUSY_TIMEOUT_S",
    "DELIVERY_STATUSES",
    "FAILED_STATUSES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STATUSES",
    "DeliveryBatch",
    "DeliveryRecord",
    "DeliveryState",
    "Ledger",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerLockedError",
    "LedgerStateError",
    "NewDelivery",
    "RunRecord",
    "migrate",
]

#: Every status a row can have.
STATUSES = ("running", "succeeded", "failed", "skipped", "timed_out", "abandoned")
#: What ``history(failed_only=True)`` shows: every way a run can go wrong.
FAILED_STATUSES = ("failed", "timed_out", "abandoned")
#: How long a write waits for another process's write lock before giving up.
BUSY_TIMEOUT_S = 5.0


class LedgerError(EilError):
    """The run ledger could not be read or written."""


class LedgerCorruptError(LedgerError):
    """The ledger file is not a SQLite database, or is damaged."""


class LedgerLockedError(LedgerError):
    """Another connection held the ledger's write lock beyond the busy timeout."""


class LedgerStateError(LedgerError):
    """A run is not in the state the operation needs (finishing a run that isn't running)."""


@dataclass(frozen=True)
class RunRecord:
    """One row of the ledger: one pipeline at one scheduled time.

    Datetimes are aware (UTC).  ``error`` holds the failure message, or the
    reason for a ``skipped`` row.  ``duration_s`` is ``None`` while running,
    for skipped rows and for abandoned rows (their real end is unknown).
    """

    id: int
    pipeline: str
    scheduled_at: datetime
    run_id: str | None
    status: str
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    error: str | None
    files: list[str]
    pid: int | None
    host: str | None
    owner_token: str | None
    summary: dict[str, Any] | None = None
    """Headline figures of a finished run (``{"metrics": [{"label", "text", "change_text"}]}``)."""


# --- schema -----------------------------------------------------------------


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


#: Step ``i`` brings a file from schema version ``i`` to ``i + 1``.
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


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migrate_to_1,
    _migrate_to_2,
    _migrate_to_3,
)
#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, *, name: str = "the run ledger") -> int:
    """Bring the ledger schema on ``conn`` up to :data:`SCHEMA_VERSION`; return the old version.

    ``conn`` must be in autocommit mode (``isolation_level=None``).  The steps
    run in one ``BEGIN IMMEDIATE`` transaction, so two processes opening a new
    file at once can't both create the tables, and a failed step leaves the
    file as it was.  Raises :class:`LedgerError` when the file was written by
    a newer version of eil-pipelines; ``name`` is how that message names the file.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"{name} has schema version {version}, but this version of "
                f"eil-pipelines knows only up to {SCHEMA_VERSION}: upgrade eil-pipelines"
            )
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


# --- times and processes ----------------------------------------------------


def _to_text(value: datetime, name: str) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")
    utc = value.astimezone(UTC)
    # Whole seconds print without a fraction, matching the documented form; the
    # text still sorts by time because "+" sorts before ".".
    return utc.isoformat(timespec="seconds" if utc.microsecond == 0 else "microseconds")


def _from_text(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


_TOKENS: dict[int, str] = {}
_TOKENS_LOCK = threading.Lock()


def _process_token() -> str:
    """A random token naming this process incarnation.

    A pid alone can't tell this process from an earlier one with the same pid,
    which is the normal case in containers (the scheduler is pid 1 after every
    restart); the token can.
    """
    pid = os.getpid()
    with _TOKENS_LOCK:
        token = _TOKENS.get(pid)
        if token is None:
            token = _TOKENS[pid] = uuid.uuid4().hex
        return token


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _pid_exists_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        # PermissionError: it exists but belongs to another user.  Anything
        # else: we can't tell, and abandoning a live run is the worse mistake.
        return True
    return True


def _pid_exists_windows(pid: int) -> bool:  # pragma: no cover - exercised on Windows only
    # os.kill(pid, 0) on Windows sends CTRL_C_EVENT, so ask the kernel instead.
    import ctypes
    from ctypes import wintypes

    process_query_limited_information = 0x1000
    still_active = 259
    error_access_denied = 5
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        return ctypes.get_last_error() == error_access_denied
    try:
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


def _default_alive(pid: int, owner_token: str | None) -> bool:
    if pid == os.getpid():
        return owner_token == _process_token()
    return _pid_exists(pid)


# --- the ledger -------------------------------------------------------------


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode (it stays so), retrying for up to the busy timeout.

    Switching a new file to WAL needs an exclusive lock, and SQLite reports
    "database is locked" at once instead of calling the busy handler when two
    processes create the ledger together, so wait here as a write would.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            busy = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


_COLUMNS = (
    "id, pipeline, scheduled_at, run_id, status, attempt, started_at, finished_at, "
    "duration_s, error, files, pid, host, owner_token, summary"
)


def _record(row: Sequence) -> RunRecord:
    (id_, pipeline, scheduled_at, run_id, status, attempt, started_at, finished_at) = row[:8]
    (duration_s, error, files, pid, host, owner_token, summary) = row[8:]
    return RunRecord(
        id=id_,
        pipeline=pipeline,
        scheduled_at=_from_text(scheduled_at),
        run_id=run_id,
        status=status,
        attempt=attempt,
        started_at=_from_text(started_at),
        finished_at=_from_text(finished_at),
        duration_s=duration_s,
        error=error,
        files=list(json.loads(files)) if files else [],
        pid=pid,
        host=host,
        owner_token=owner_token,
        summary=json.loads(summary) if summary else None,
    )


def _pipeline_filter(pipelines: Collection[str] | None) -> tuple[str, list[str]] | None:
    """An ``AND pipeline IN (...)`` clause and its parameters; ``None`` when the set is empty."""
    if pipelines is None:
        return "", []
    names = list(pipelines)
    if not names:
        return None
    return f" AND pipeline IN ({', '.join('?' * len(names))})", names


def _check_status(status: str, name: str = "status") -> None:
    if status not in STATUSES:
        raise ValueError(f"{name} must be one of {', '.join(STATUSES)}; got {status!r}")


#: Every status of an outbox row.
DELIVERY_STATUSES = ("pending", "sending", "sent", "failed", "gave_up", "skipped")
#: Outbox rows still to be sent (or being sent): what ``history`` calls undelivered.
OPEN_DELIVERY_STATUSES = ("pending", "sending", "failed")


@dataclass(frozen=True)
class DeliveryRecord:
    """One row of the delivery outbox: one message to one recipient.

    ``kind`` is ``report``, ``alert``, ``alert_cleared``, ``failure`` or
    ``recovery``; ``channel`` is ``email`` or ``webhook``.  ``target`` is the
    idempotency part of the key (a lower-case address, or ``webhook:`` and a
    fingerprint of the URL); ``recipient`` is how people see it (the address,
    or the webhook's URL without its secret path).  ``status`` is ``pending``
    (not tried yet), ``sending``, ``sent``, ``failed`` (tried; tried again at
    ``next_attempt_at``), ``gave_up`` or ``skipped`` (``last_error`` says why).
    """

    id: int
    pipeline: str
    scheduled_at: datetime
    kind: str
    channel: str
    target: str
    recipient: str
    subject: str | None
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    last_error: str | None
    content_hash: str | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able mapping (ISO 8601 times), for ``eil-run history --format json``."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "kind": self.kind,
            "channel": self.channel,
            "recipient": self.recipient,
            "subject": self.subject,
            "status": self.status,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "next_attempt_at": iso(self.next_attempt_at) if self.status == "failed" else None,
            "sent_at": iso(self.sent_at),
            "error": self.last_error,
        }


@dataclass(frozen=True)
class NewDelivery:
    """A rendered message to queue in the outbox (see :meth:`DeliveryBatch.add`)."""

    kind: str
    channel: str
    target: str
    recipient: str
    subject: str | None
    payload: bytes | None
    """The message as it goes on the wire (MIME bytes, or the JSON body)."""
    content_hash: str | None = None
    """Hash of the report, for ``when = "changed"``."""
    status: str = "pending"
    """``pending``, or ``skipped`` / ``gave_up`` for a row kept only to be seen."""
    error: str | None = None
    """Why a row was skipped or given up at once (redacted text)."""
    max_attempts: int = 1


@dataclass(frozen=True)
class DeliveryState:
    """What a pipeline's previous runs said, for notices and alerts."""

    pipeline: str
    failing: bool = False
    """A failure notice went out (or was due) and no run has succeeded since."""
    failing_since: datetime | None = None
    alert_active: bool = False
    """The alert fired and has not cleared."""
    alert_since: datetime | None = None
    last_scheduled_at: datetime | None = None
    """The newest run that shaped this state; older runs finishing later change nothing."""


_DELIVERY_COLUMNS = (
    "id, pipeline, scheduled_at, kind, channel, target, recipient, subject, status, attempts, "
    "max_attempts, next_attempt_at, created_at, updated_at, sent_at, last_error, content_hash"
)


def _delivery(row: Sequence) -> DeliveryRecord:
    (id_, pipeline, scheduled_at, kind, channel, target, recipient, subject, status) = row[:9]
    (attempts, max_attempts, next_at, created, updated, sent, error, content_hash) = row[9:]
    return DeliveryRecord(
        id=id_,
        pipeline=pipeline,
        scheduled_at=_from_text(scheduled_at),  # type: ignore[arg-type]
        kind=kind,
        channel=channel,
        target=target,
        recipient=recipient,
        subject=subject,
        status=status,
        attempts=attempts,
        max_attempts=max_attempts,
        next_attempt_at=_from_text(next_at),
        created_at=_from_text(created),  # type: ignore[arg-type]
        updated_at=_from_text(updated),  # type: ignore[arg-type]
        sent_at=_from_text(sent),
        last_error=error,
        content_hash=content_hash,
    )


class DeliveryBatch:
    """Queueing a run's messages and moving its pipeline's delivery state, in one
    write transaction (from :meth:`Ledger.delivery_batch`): the decision "the
    alert starts, tell ops" and the message that says so are stored together
    or not at all."""

    def __init__(self, conn: sqlite3.Connection, now: datetime):
        self._conn = conn
        self._now = _to_text(now, "now")

    def state(self, pipeline: str) -> DeliveryState:
        """The pipeline's delivery state (all clear when it has none yet)."""
        row = self._conn.execute(
            "SELECT failing, failing_since, alert_active, alert_since, last_scheduled_at"
            " FROM delivery_state WHERE pipeline = ?",
            (pipeline,),
        ).fetchone()
        if row is None:
            return DeliveryState(pipeline)
        return DeliveryState(
            pipeline,
            failing=bool(row[0]),
            failing_since=_from_text(row[1]),
            alert_active=bool(row[2]),
            alert_since=_from_text(row[3]),
            last_scheduled_at=_from_text(row[4]),
        )

    def set_state(self, state: DeliveryState) -> None:
        """Store ``state`` as the pipeline's delivery state."""

        def text(value: datetime | None) -> str | None:
            return _to_text(value, "time") if value is not None else None

        self._conn.execute(
            "INSERT INTO delivery_state (pipeline, failing, failing_since, alert_active,"
            " alert_since, last_scheduled_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (pipeline) DO UPDATE SET failing = excluded.failing,"
            " failing_since = excluded.failing_since, alert_active = excluded.alert_active,"
            " alert_since = excluded.alert_since, last_scheduled_at = excluded.last_scheduled_at,"
            " updated_at = excluded.updated_at",
            (
                state.pipeline,
                int(state.failing),
                text(state.failing_since),
                int(state.alert_active),
                text(state.alert_since),
                text(state.last_scheduled_at),
                self._now,
            ),
        )

    def last_content_hash(self, pipeline: str, kind: str, target: str) -> str | None:
        """The report hash of the newest message to ``target`` that was sent or is
        still on its way (for ``when = "changed"``); ``None`` when there is none."""
        row = self._conn.execute(
            "SELECT content_hash FROM outbox WHERE pipeline = ? AND kind = ? AND target = ?"
            " AND status IN ('pending', 'sending', 'failed', 'sent')"
            " ORDER BY scheduled_at DESC, id DESC LIMIT 1",
            (pipeline, kind, target),
        ).fetchone()
        return row[0] if row else None

    def add(self, pipeline: str, scheduled_at: datetime, message: NewDelivery) -> bool:
        """Queue ``message`` for the run of ``pipeline`` at ``scheduled_at``.

        Returns False when a message with the same idempotency key (pipeline,
        scheduled time, kind, target) is already in the outbox: it is never
        queued, so never sent, twice.
        """
        if message.status not in ("pending", "skipped", "gave_up"):
            raise ValueError(f"a new delivery is pending, skipped or gave_up, not {message.status}")
        pending = message.status == "pending"
        cursor = self._conn.execute(
            "INSERT INTO outbox (pipeline, scheduled_at, kind, channel, target, recipient,"
            " subject, status, attempts, max_attempts, next_attempt_at, created_at, updated_at,"
            " last_error, content_hash, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (pipeline, scheduled_at, kind, target) DO NOTHING",
            (
                pipeline,
                _to_text(scheduled_at, "scheduled_at"),
                message.kind,
                message.channel,
                message.target,
                message.recipient,
                message.subject,
                message.status,
                message.max_attempts,
                self._now if pending else None,
                self._now,
                self._now,
                message.error,
                message.content_hash,
                message.payload if pending else None,
            ),
        )
        return cursor.rowcount == 1


class Ledger:
    """The run ledger stored in the SQLite file at ``path``.

    Parent folders are created.  The file is opened (and created or migrated)
    at once, so a corrupt or unreadable ledger is reported at start-up rather
    than at the first run.  ``display_path`` is how messages name the file
    (default: ``path`` as given).  Safe to use from many threads: each thread
    lazily gets its own connection.  Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], *, display_path: str | None = None):
        self.path = Path(path)
        self.display_path = display_path or str(path)
        self._lock = threading.Lock()
        self._local = threading.local()
        # Every open connection, keyed by id, with a weak reference to its
        # thread: close() closes them all, and connections of threads that
        # have ended are closed when the next one opens.
        self._conns: dict[int, tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = {}
        # Connections inherited across fork(): never used, and never closed,
        # since closing them in the child could release the parent's locks.
        self._inherited: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False
        self._host = socket.gethostname()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"run ledger {self.display_path} cannot be created: {exc.strerror or exc}"
            ) from exc
        self._conn()

    # -- connections --

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise LedgerError(f"run ledger {self.display_path} is closed")
        if os.getpid() != self._pid:
            with self._lock:
                self._inherited.extend(conn for _, conn in self._conns.values())
                self._conns.clear()
                self._local = threading.local()
                self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                for key, (thread_ref, other) in list(self._conns.items()):
                    thread = thread_ref()
                    if thread is None or not thread.is_alive():
                        other.close()
                        del self._conns[key]
                self._conns[id(conn)] = (weakref.ref(threading.current_thread()), conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        with self._translate():
            # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, since
            # the module's implicit BEGIN DEFERRED can deadlock two writers.
            # check_same_thread=False only so close() can close connections
            # opened by other threads; each is still used by one thread only.
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                conn.execute("PRAGMA foreign_keys = ON")
                _enable_wal(conn)
                migrate(conn, name=f"run ledger {self.display_path}")
            except BaseException:
                conn.close()
                raise
        return conn

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn SQLite errors about the file into :class:`LedgerError` messages for the user."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                raise  # a bug in this module, not a problem with the file
            code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
            detail = str(exc)
            shown = self.display_path
            if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT) or (
                "not a database" in detail or "malformed" in detail
            ):
                raise LedgerCorruptError(
                    f"run ledger {shown} is not a valid SQLite database: {detail}"
                ) from exc
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in detail:
                raise LedgerLockedError(
                    f"run ledger {shown} is locked: another process held it for more than "
                    f"{BUSY_TIMEOUT_S:g} s ({detail})"
                ) from exc
            if code == sqlite3.SQLITE_CANTOPEN:
                raise LedgerError(f"run ledger {shown} cannot be opened: {detail}") from exc
            if code == sqlite3.SQLITE_READONLY:
                raise LedgerError(f"run ledger {shown} is read-only: {detail}") from exc
            raise LedgerError(f"run ledger {shown}: {detail}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: the write lock is taken before any read."""
        conn = self._conn()
        with self._translate():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself after some errors.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: Iterable = ()) -> list[tuple]:
        conn = self._conn()
        with self._translate():
            return conn.execute(sql, tuple(params)).fetchall()

    @staticmethod
    def _fetch(conn: sqlite3.Connection, pipeline: str, key: str) -> RunRecord | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE pipeline = ? AND scheduled_at = ?",
            (pipeline, key),
        ).fetchone()
        return _record(row) if row else None

    # -- claims --

    def claim(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        run_id: str,
        attempt: int = 1,
        now: datetime,
    ) -> RunRecord | None:
        """Claim ``pipeline`` at ``scheduled_at``: insert a ``running`` row and return it.

        Returns ``None`` when a row for that key already exists in any state,
        so a scheduled time is never run twice, whichever thread or process
        asks, and however often the scheduler restarts.
        """
        key = _to_text(scheduled_at, "scheduled_at")
        started = _to_text(now, "now")
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (pipeline, scheduled_at, run_id, status, attempt, started_at,"
                " files, pid, host, owner_token)"
                " VALUES (?, ?, ?, 'running', ?, ?, '[]', ?, ?, ?)"
                " ON CONFLICT (pipeline, scheduled_at) DO NOTHING",
                (
                    pipeline,
                    key,
                    run_id,
                    attempt,
                    started,
                    os.getpid(),
                    self._host,
                    _process_token(),
                ),
            )
            if cursor.rowcount != 1:
                return None
            return self._fetch(conn, pipeline, key)

    def reclaim(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        run_id: str,
        attempt: int,
        now: datetime,
        allowed_from: Sequence[str] = ("failed", "abandoned", "timed_out"),
    ) -> RunRecord | None:
        """Turn an existing row in one of ``allowed_from`` back to ``running``, for a retry.

        Used for retries and ``backfill --reprocess`` (which passes
        ``allowed_from`` including ``"succeeded"`` or ``"skipped"``).  The row
        gets the new ``run_id``, ``attempt`` and start time, and its previous
        outcome is cleared.  Returns the updated row, or ``None`` when there
        is no row or it is in another state, so of several callers only one
        wins.  ``"running"`` can't be in ``allowed_from``: taking over a live
        run would run the time twice (abandon it first).
        """
        for status in allowed_from:
            _check_status(status, "allowed_from")
        if "running" in allowed_from:
            raise ValueError("allowed_from can't include 'running': a running row has an owner")
        if not allowed_from:
            return None
        key = _to_text(scheduled_at, "scheduled_at")
        started = _to_text(now, "now")
        marks = ", ".join("?" * len(allowed_from))
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = 'running', run_id = ?, attempt = ?, started_at = ?,"
                " finished_at = NULL, duration_s = NULL, error = NULL, files = '[]',"
                " pid = ?, host = ?, owner_token = ?"
                f" WHERE pipeline = ? AND scheduled_at = ? AND status IN ({marks})",
                (
                    run_id,
                    attempt,
                    started,
                    os.getpid(),
                    self._host,
                    _process_token(),
                    pipeline,
                    key,
                    *allowed_from,
                ),
            )
            if cursor.rowcount != 1:
                return None
            return self._fetch(conn, pipeline, key)

    def finish(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        status: str,
        now: datetime,
        error: str | None = None,
        files: Iterable[str | os.PathLike[str]] = (),
        run_id: str | None = None,
        summary: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Record the outcome of a running row and return it.

        ``summary`` is a small JSON-able mapping kept with the row (the run's
        headline metrics, for digests).

        Sets ``status`` (anything but ``running``), ``finished_at = now``,
        ``duration_s`` (from ``started_at``), ``error`` (pass redacted text)
        and ``files``.  When ``run_id`` is given, the row must still belong to
        that run, so a run that was abandoned and reclaimed by someone else
        can't overwrite the new attempt.  Raises :class:`LedgerStateError`
        when there is no such row or it isn't running.
        """
        _check_status(status)
        if status == "running":
            raise ValueError("finish() needs a final status, not 'running'")
        key = _to_text(scheduled_at, "scheduled_at")
        finished = _to_text(now, "now")
        paths = json.dumps([os.fspath(f) for f in files])
        with self._write() as conn:
            row = self._fetch(conn, pipeline, key)
            what = f'cannot finish the run of pipeline "{pipeline}" scheduled at {key}'
            if row is None:
                raise LedgerStateError(f"{what}: it was never claimed")
            if row.status != "running":
                raise LedgerStateError(f"{what}: it is {row.status}, not running")
            if run_id is not None and row.run_id != run_id:
                raise LedgerStateError(
                    f"{what}: it now belongs to run {row.run_id} (attempt {row.attempt}), "
                    f"not {run_id}"
                )
            duration = None
            if row.started_at is not None:
                # Clamp: a clock stepped backwards shouldn't produce a negative duration.
                duration = max(0.0, (now - row.started_at).total_seconds())
            conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, duration_s = ?, error = ?, files = ?,"
                " summary = ? WHERE id = ?",
                (
                    status,
                    finished,
                    duration,
                    error,
                    paths,
                    json.dumps(summary, sort_keys=True) if summary is not None else None,
                    row.id,
                ),
            )
            return self._fetch(conn, pipeline, key)  # type: ignore[return-value]

    def record_skipped(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        reason: str,
        now: datetime,
        run_id: str | None = None,
    ) -> RunRecord | None:
        """Record that ``pipeline`` at ``scheduled_at`` was deliberately not run.

        Used for ``overlap = "skip"`` and ``catch_up`` skips.  The reason goes
        in ``error``; ``finished_at`` is ``now``; ``attempt`` is 0 (no attempt
        was made).  Does nothing and returns ``None`` if a row already exists,
        so a skip never hides a real run.
        """
        key = _to_text(scheduled_at, "scheduled_at")
        finished = _to_text(now, "now")
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (pipeline, scheduled_at, run_id, status, attempt, finished_at,"
                " error, files, pid, host)"
                " VALUES (?, ?, ?, 'skipped', 0, ?, ?, '[]', ?, ?)"
                " ON CONFLICT (pipeline, scheduled_at) DO NOTHING",
                (pipeline, key, run_id, finished, reason, os.getpid(), self._host),
            )
            if cursor.rowcount != 1:
                return None
            return self._fetch(conn, pipeline, key)

    def mark_abandoned(
        self,
        *,
        now: datetime,
        pids_alive: Callable[[int], bool] | None = None,
        host: str | None = None,
    ) -> list[RunRecord]:
        """Mark ``running`` rows whose process is gone as ``abandoned``; return them.

        Only rows claimed on ``host`` are considered (default: this machine).
        Liveness comes from ``pids_alive(pid)`` when given.  Otherwise, for
        this machine, a row is dead when its pid no longer exists, or when it
        is this process's pid but was claimed by an earlier process that had
        the same pid (a restarted container); for another ``host`` with no
        ``pids_alive``, the caller is stating that machine's runs are gone and
        all its running rows are abandoned.  The error reads
        ``the process running it stopped (pid N)``; ``finished_at`` is
        ``now`` and ``duration_s`` stays unknown.
        """
        stamp = _to_text(now, "now")
        host = self._host if host is None else host
        local = host == self._host
        candidates = self._read(
            "SELECT id, pid, owner_token FROM runs WHERE status = 'running' AND host IS ?",
            (host,),
        )
        dead = []
        for row_id, pid, token in candidates:
            if pid is None:
                continue
            if pids_alive is not None:
                alive = pids_alive(pid)
            elif local:
                alive = _default_alive(pid, token)
            else:
                alive = False
            if not alive:
                dead.append((row_id, pid, token))
        abandoned = []
        if not dead:
            return abandoned
        with self._write() as conn:
            for row_id, pid, token in dead:
                # Match pid and token too: the row may have been reclaimed by a
                # live process since we looked.
                cursor = conn.execute(
                    "UPDATE runs SET status = 'abandoned', finished_at = ?, error = ?"
                    " WHERE id = ? AND status = 'running' AND pid IS ? AND owner_token IS ?",
                    (stamp, f"the process running it stopped (pid {pid})", row_id, pid, token),
                )
                if cursor.rowcount == 1:
                    row = conn.execute(
                        f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (row_id,)
                    ).fetchone()
                    abandoned.append(_record(row))
        return abandoned

    # -- queries --

    def history(
        self, *, pipeline: str | None = None, failed_only: bool = False, limit: int | None = 50
    ) -> list[RunRecord]:
        """Rows, newest scheduled time first.

        ``pipeline`` restricts to one pipeline; ``failed_only`` keeps
        ``failed``, ``timed_out`` and ``abandoned`` rows; ``limit`` caps the
        count (``None``: no cap).
        """
        where, params = [], []
        if pipeline is not None:
            where.append("pipeline = ?")
            params.append(pipeline)
        if failed_only:
            where.append(f"status IN ({', '.join('?' * len(FAILED_STATUSES))})")
            params.extend(FAILED_STATUSES)
        sql = f"SELECT {_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY scheduled_at DESC, id DESC"
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be zero or more, got {limit}")
            sql += " LIMIT ?"
            params.append(limit)
        return [_record(row) for row in self._read(sql, params)]

    def last_run(self, pipeline: str) -> RunRecord | None:
        """The row of ``pipeline`` with the newest scheduled time, in any state."""
        rows = self.history(pipeline=pipeline, limit=1)
        return rows[0] if rows else None

    def get(self, pipeline: str, scheduled_at: datetime) -> RunRecord | None:
        """The row of ``pipeline`` at ``scheduled_at``, or ``None``."""
        key = _to_text(scheduled_at, "scheduled_at")
        rows = self._read(
            f"SELECT {_COLUMNS} FROM runs WHERE pipeline = ? AND scheduled_at = ?",
            (pipeline, key),
        )
        return _record(rows[0]) if rows else None

    def succeeded_times(self, pipeline: str, start: datetime, end: datetime) -> set[datetime]:
        """Scheduled times of ``pipeline`` that succeeded, with ``start <= t < end`` (UTC)."""
        rows = self._read(
            "SELECT scheduled_at FROM runs WHERE pipeline = ? AND status = 'succeeded'"
            " AND scheduled_at >= ? AND scheduled_at < ?",
            (pipeline, _to_text(start, "start"), _to_text(end, "end")),
        )
        return {_from_text(text) for (text,) in rows}  # type: ignore[misc]

    def latest_scheduled(self, pipeline: str) -> datetime | None:
        """The newest scheduled time of ``pipeline`` in any state, or ``None``.

        The scheduler starts from here to find the runs missed while it was down.
        """
        rows = self._read("SELECT max(scheduled_at) FROM runs WHERE pipeline = ?", (pipeline,))
        return _from_text(rows[0][0])

    def schema_version(self) -> int:
        """The schema version of the open file (``PRAGMA user_version``)."""
        return self._read("PRAGMA user_version")[0][0]

    # -- delivery outbox --

    @contextmanager
    def delivery_batch(self, *, now: datetime) -> Iterator[DeliveryBatch]:
        """A write transaction for queueing messages and moving delivery state.

        Everything done through the batch commits together when the block ends,
        or not at all when it raises.  Keep the block short: it holds the
        ledger's write lock (render messages before entering it).
        """
        with self._write() as conn:
            yield DeliveryBatch(conn, now)

    def claim_delivery(
        self, *, now: datetime, pipelines: Collection[str] | None = None
    ) -> tuple[DeliveryRecord, bytes] | None:
        """Take the next message due at ``now``: mark it ``sending`` for this process.

        Due means ``pending``, or ``failed`` with ``next_attempt_at <= now``.
        The attempt is counted here, before anything goes on the wire.
        Returns the row and its payload, or ``None`` when nothing is due.  Of
        several threads or processes asking, exactly one gets each row.
        ``pipelines`` restricts the choice to those pipelines.
        """
        stamp = _to_text(now, "now")
        restriction = _pipeline_filter(pipelines)
        if restriction is None:
            return None
        where, params = restriction
        with self._write() as conn:
            row = conn.execute(
                "SELECT id FROM outbox WHERE status IN ('pending', 'failed')"
                f" AND next_attempt_at <= ?{where} ORDER BY next_attempt_at, id LIMIT 1",
                (stamp, *params),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = ?,"
                " pid = ?, host = ?, owner_token = ? WHERE id = ?",
                (stamp, os.getpid(), self._host, _process_token(), row[0]),
            )
            found = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS}, payload FROM outbox WHERE id = ?", (row[0],)
            ).fetchone()
        return _delivery(found[:-1]), bytes(found[-1] or b"")

    def finish_delivery(
        self,
        delivery_id: int,
        *,
        status: str,
        now: datetime,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> DeliveryRecord | None:
        """Record the outcome of a send this process claimed; return the row.

        ``status`` is ``sent``, ``failed`` (with ``next_attempt_at``) or
        ``gave_up``; ``error`` must be redacted text.  The payload is dropped
        once the row is sent or given up.  Returns ``None`` (and changes
        nothing) when the row is no longer this process's ``sending`` row.
        """
        if status not in ("sent", "failed", "gave_up"):
            raise ValueError(f"status must be sent, failed or gave_up; got {status!r}")
        if status == "failed" and next_attempt_at is None:
            raise ValueError("a failed send needs next_attempt_at")
        stamp = _to_text(now, "now")
        retry = _to_text(next_attempt_at, "next_attempt_at") if status == "failed" else None
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET status = ?, updated_at = ?, next_attempt_at = ?,"
                " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END,"
                " last_error = CASE WHEN ? = 'sent' THEN last_error ELSE ? END,"
                " payload = CASE WHEN ? = 'failed' THEN payload ELSE NULL END,"
                " pid = NULL, host = NULL, owner_token = NULL"
                " WHERE id = ? AND status = 'sending' AND owner_token IS ? AND pid IS ?",
                (
                    status,
                    stamp,
                    retry,
                    status,
                    stamp,
                    status,
                    error,
                    status,
                    delivery_id,
                    _process_token(),
                    os.getpid(),
                ),
            )
            if cursor.rowcount != 1:
                return None
            row = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM outbox WHERE id = ?", (delivery_id,)
            ).fetchone()
        return _delivery(row)

    def recover_deliveries(
        self, *, now: datetime, pids_alive: Callable[[int], bool] | None = None
    ) -> list[DeliveryRecord]:
        """Rows left ``sending`` by a process that is gone become ``failed``, due now.

        The message may or may not have reached the server before the process
        died; it is sent again (at-least-once), with the same Message-ID or
        ``Idempotency-Key`` so the receiver can drop a duplicate.  Rows of a
        live process (another ``eil-run``) are left alone.  Only rows claimed
        on this machine are considered.
        """
        stamp = _to_text(now, "now")
        candidates = self._read(
            "SELECT id, pid, owner_token FROM outbox WHERE status = 'sending' AND host IS ?",
            (self._host,),
        )
        recovered = []
        with self._write() as conn:
            for row_id, pid, token in candidates:
                alive = (
                    pids_alive(pid)
                    if pids_alive is not None
                    else pid is not None and _default_alive(pid, token)
                )
                if alive:
                    continue
                cursor = conn.execute(
                    "UPDATE outbox SET status = 'failed', next_attempt_at = ?, updated_at = ?,"
                    " last_error = ?, pid = NULL, host = NULL, owner_token = NULL"
                    " WHERE id = ? AND status = 'sending' AND pid IS ? AND owner_token IS ?",
                    (
                        stamp,
                        stamp,
                        f"interrupted while sending (the process stopped, pid {pid}); "
                        "sending again",
                        row_id,
                        pid,
                        token,
                    ),
                )
                if cursor.rowcount == 1:
                    row = conn.execute(
                        f"SELECT {_DELIVERY_COLUMNS} FROM outbox WHERE id = ?", (row_id,)
                    ).fetchone()
                    recovered.append(_delivery(row))
        return recovered

    def next_delivery_due(self, pipelines: Collection[str] | None = None) -> datetime | None:
        """When the next queued message is due (UTC), or ``None`` when none waits."""
        restriction = _pipeline_filter(pipelines)
        if restriction is None:
            return None
        where, params = restriction
        rows = self._read(
            f"SELECT min(next_attempt_at) FROM outbox WHERE status IN ('pending', 'failed'){where}",
            params,
        )
        return _from_text(rows[0][0])

    def deliveries(
        self,
        *,
        pipeline: str | None = None,
        scheduled_at: datetime | None = None,
        statuses: Collection[str] | None = None,
    ) -> list[DeliveryRecord]:
        """Outbox rows, oldest first, optionally of one pipeline, one run, some statuses."""
        where, params = [], []
        if pipeline is not None:
            where.append("pipeline = ?")
            params.append(pipeline)
        if scheduled_at is not None:
            where.append("scheduled_at = ?")
            params.append(_to_text(scheduled_at, "scheduled_at"))
        if statuses is not None:
            for status in statuses:
                if status not in DELIVERY_STATUSES:
                    raise ValueError(f"unknown delivery status {status!r}")
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY scheduled_at, id"
        return [_delivery(row) for row in self._read(sql, params)]

    def deliveries_by_run(
        self, records: Iterable[RunRecord]
    ) -> dict[tuple[str, datetime], list[DeliveryRecord]]:
        """The outbox rows of each run in ``records``, keyed by (pipeline, scheduled time)."""
        out: dict[tuple[str, datetime], list[DeliveryRecord]] = {}
        for record in records:
            rows = self.deliveries(pipeline=record.pipeline, scheduled_at=record.scheduled_at)
            if rows:
                out[(record.pipeline, record.scheduled_at)] = rows
        return out

    # -- lifetime --

    def acquire_lease(self, name: str, *, holder: str, now: datetime) -> str | None:
        """Take the exclusive lease ``name`` for this process.

        Returns None when it was taken, else a description of the live holder
        (``"backfill … (pid 123 on host)"``) for the refusal message.  A lease
        whose process is gone is taken over.
        """
        stamp = _to_text(now, "now")
        with self._write() as conn:
            row = conn.execute(
                "SELECT holder, pid, host, owner_token FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is not None:
                other, pid, host, token = row
                alive = host != self._host or pid is None or _default_alive(pid, token)
                if alive:
                    return f"{other} (pid {pid} on {host})"
                conn.execute("DELETE FROM leases WHERE name = ?", (name,))
            conn.execute(
                "INSERT INTO leases (name, holder, pid, host, owner_token, acquired_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, holder, os.getpid(), self._host, _process_token(), stamp),
            )
        return None

    def release_lease(self, name: str) -> bool:
        """Give back a lease this process holds; False when it held none."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM leases WHERE name = ? AND pid = ? AND host = ? AND owner_token = ?",
                (name, os.getpid(), self._host, _process_token()),
            )
            return cursor.rowcount == 1

    def close(self) -> None:
        """Close every connection this ledger opened, in all threads; further use raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _, conn in self._conns.values():
                conn.close()
            self._conns.clear()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
