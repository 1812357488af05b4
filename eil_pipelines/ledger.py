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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eil_pipelines.errors import EilError

__all__ = [
    "BUSY_TIMEOUT_S",
    "FAILED_STATUSES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STATUSES",
    "Ledger",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerLockedError",
    "LedgerStateError",
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


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_to_1, _migrate_to_2)
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


def _check_status(status: str, name: str = "status") -> None:
    if status not in STATUSES:
        raise ValueError(f"{name} must be one of {', '.join(STATUSES)}; got {status!r}")


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
