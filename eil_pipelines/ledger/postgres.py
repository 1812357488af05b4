"""The Postgres backend of the run ledger: :class:`PostgresLedger`, one ledger for N runners.

Every runner, on any machine, opens the same database.  The guarantees of
:class:`~eil_pipelines.ledger.base.LedgerBackend` hold across all of them
because each check-then-write is one Postgres statement or one transaction
with row locks, never a home-made protocol:

Claims
    ``INSERT … ON CONFLICT DO NOTHING`` on the unique (pipeline, scheduled
    time) key: of N runners exactly one gets the row.
Leases
    A ``running`` row, a message being sent and a named lease carry
    ``lease_until = now() + lease`` on the *database's* clock; the holder's
    heartbeat (:meth:`PostgresLedger.renew_leases`) pushes it back.  A row
    whose lease expired is dead, whatever the runners' clocks say, so clock
    skew between machines cannot let two runners hold one run.
Fencing
    ``attempt`` grows with every claim of a key and is the generation:
    :meth:`finish` is one ``UPDATE … WHERE status = 'running' AND run_id = …
    AND attempt = …``, and :meth:`holds` lets a run check before it
    publishes its files, so a runner that comes back late can neither record
    nor publish over the run that replaced it.
Outbox and requests
    ``SELECT … FOR UPDATE SKIP LOCKED``: runners never wait on each other's rows.
Connections
    One per thread, opened lazily, reopened (with a short backoff) after the
    server went away.  When the server cannot be reached a
    :class:`~eil_pipelines.ledger.records.LedgerUnavailableError` is raised;
    no driver exception and no password ever reaches the caller.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from .base import DEFAULT_RECLAIMABLE, SKIP_BATCH_SIZE, LedgerBackend
from .overview import PipelineOverview, assemble_overviews
from .postgres_schema import PG_SCHEMA_VERSION, migrate_postgres, stored_version
from .process import default_alive, host_name, process_token
from .records import (
    DELIVERY_STATUSES,
    FAILED_STATUSES,
    DeliveryBatch,
    DeliveryRecord,
    DeliveryState,
    LedgerCorruptError,
    LedgerError,
    LedgerLockedError,
    LedgerStateError,
    LedgerUnavailableError,
    NewDelivery,
    NewSkip,
    NodeRecord,
    RunRecord,
    RunRequest,
    check_status,
)
from .schema import to_text

__all__ = ["DEFAULT_LEASE", "PostgresLedger", "redact_url"]

#: How long a claim stays held without a heartbeat.
DEFAULT_LEASE = timedelta(seconds=30)
#: How long a statement may wait for a row lock before it is a LedgerLockedError.
LOCK_TIMEOUT_S = 5.0
#: Seconds between tries to reach the server (then the error propagates).
_CONNECT_BACKOFF = (0.1, 0.4, 1.0)
#: The advisory lock key of the site rebuild.
SITE_LOCK = 0x45494C0002

_RUN_COLUMNS = (
    "id, pipeline, scheduled_at, run_id, status, attempt, started_at, finished_at, "
    "duration_s, error, files, pid, host, owner_token, summary"
)
_DELIVERY_COLUMNS = (
    "id, pipeline, scheduled_at, kind, channel, target, recipient, subject, status, attempts, "
    "max_attempts, next_attempt_at, created_at, updated_at, sent_at, last_error, content_hash"
)
# "now" of a statement: the caller's time when given, else the database's.
_NOW = "COALESCE(%(now)s::timestamptz, now())"


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _aware(value: datetime, name: str) -> datetime:
    """``value`` in UTC, once known to be an aware datetime (``TypeError``/``ValueError``)."""
    to_text(value, name)  # the one place the rules on times are written
    return value.astimezone(UTC)


def _maybe(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else _aware(value, name)


def _json(value: Any) -> Any:
    # psycopg returns jsonb decoded; a text value (an older driver) is decoded here.
    return json.loads(value) if isinstance(value, str) else value


def _run(row: Sequence[Any]) -> RunRecord:
    (id_, pipeline, scheduled_at, run_id, status, attempt, started_at, finished_at) = row[:8]
    (duration_s, error, files, pid, host, owner_token, summary) = row[8:]
    return RunRecord(
        id=id_,
        pipeline=pipeline,
        scheduled_at=_utc(scheduled_at),  # type: ignore[arg-type]
        run_id=run_id,
        status=status,
        attempt=attempt,
        started_at=_utc(started_at),
        finished_at=_utc(finished_at),
        duration_s=duration_s,
        error=error,
        files=list(_json(files) or []),
        pid=pid,
        host=host,
        owner_token=owner_token,
        summary=_json(summary),
    )


def _delivery(row: Sequence[Any]) -> DeliveryRecord:
    (id_, pipeline, scheduled_at, kind, channel, target, recipient, subject, status) = row[:9]
    (attempts, max_attempts, next_at, created, updated, sent, error, content_hash) = row[9:]
    return DeliveryRecord(
        id=id_,
        pipeline=pipeline,
        scheduled_at=_utc(scheduled_at),  # type: ignore[arg-type]
        kind=kind,
        channel=channel,
        target=target,
        recipient=recipient,
        subject=subject,
        status=status,
        attempts=attempts,
        max_attempts=max_attempts,
        next_attempt_at=_utc(next_at),
        created_at=_utc(created),  # type: ignore[arg-type]
        updated_at=_utc(updated),  # type: ignore[arg-type]
        sent_at=_utc(sent),
        last_error=error,
        content_hash=content_hash,
    )


def redact_url(url: str) -> str:
    """``url`` without its user name and password, for messages: ``postgresql://host:5432/eil``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    try:
        port = parts.port
    except ValueError:  # a port that isn't a number: show none rather than fail here
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path}"


def _redactor(url: str) -> Callable[[str], str]:
    """A function removing ``url``'s password, user and the URL itself from a text."""
    parts = urlsplit(url)
    secrets = [url]
    if parts.password:
        secrets += [parts.password, unquote(parts.password)]
    secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        # Any other URL with credentials that a driver may quote.
        return re.sub(r"(\w+://)[^/@\s]*@", r"\1***@", text)

    return redact


class _PgDeliveryBatch(DeliveryBatch):
    """A :class:`DeliveryBatch` inside one Postgres transaction; state rows are locked."""

    def __init__(self, conn: Any, now: datetime):
        self._conn = conn
        self._now = now
        self._locked: set[str] = set()

    def _lock(self, pipeline: str) -> None:
        if pipeline in self._locked:
            return
        # Create the row when missing, then lock it: two runners deciding about
        # one pipeline serialise here, as they do on SQLite's write lock.
        self._conn.execute(
            "INSERT INTO eil_delivery_state (pipeline, updated_at) VALUES (%s, %s)"
            " ON CONFLICT (pipeline) DO NOTHING",
            (pipeline, self._now),
        )
        self._conn.execute(
            "SELECT 1 FROM eil_delivery_state WHERE pipeline = %s FOR UPDATE", (pipeline,)
        )
        self._locked.add(pipeline)

    def state(self, pipeline: str) -> DeliveryState:
        """The pipeline's delivery state (all clear when it has none yet); locks its row."""
        self._lock(pipeline)
        row = self._conn.execute(
            "SELECT failing, failing_since, alert_active, alert_since, last_scheduled_at"
            " FROM eil_delivery_state WHERE pipeline = %s",
            (pipeline,),
        ).fetchone()
        return DeliveryState(
            pipeline,
            failing=bool(row[0]),
            failing_since=_utc(row[1]),
            alert_active=bool(row[2]),
            alert_since=_utc(row[3]),
            last_scheduled_at=_utc(row[4]),
        )

    def set_state(self, state: DeliveryState) -> None:
        """Store ``state`` as the pipeline's delivery state."""
        self._lock(state.pipeline)
        self._conn.execute(
            "UPDATE eil_delivery_state SET failing = %s, failing_since = %s, alert_active = %s,"
            " alert_since = %s, last_scheduled_at = %s, updated_at = %s WHERE pipeline = %s",
            (
                state.failing,
                _maybe(state.failing_since, "failing_since"),
                state.alert_active,
                _maybe(state.alert_since, "alert_since"),
                _maybe(state.last_scheduled_at, "last_scheduled_at"),
                self._now,
                state.pipeline,
            ),
        )

    def last_content_hash(self, pipeline: str, kind: str, target: str) -> str | None:
        """The report hash of the newest message to ``target`` sent or on its way."""
        row = self._conn.execute(
            "SELECT content_hash FROM eil_outbox WHERE pipeline = %s AND kind = %s"
            " AND target = %s AND status IN ('pending', 'sending', 'failed', 'sent')"
            " ORDER BY scheduled_at DESC, id DESC LIMIT 1",
            (pipeline, kind, target),
        ).fetchone()
        return row[0] if row else None

    def add(self, pipeline: str, scheduled_at: datetime, message: NewDelivery) -> bool:
        """Queue ``message``; False when its idempotency key is already in the outbox."""
        if message.status not in ("pending", "skipped", "gave_up"):
            raise ValueError(f"a new delivery is pending, skipped or gave_up, not {message.status}")
        pending = message.status == "pending"
        cursor = self._conn.execute(
            "INSERT INTO eil_outbox (pipeline, scheduled_at, kind, channel, target, recipient,"
            " subject, status, attempts, max_attempts, next_attempt_at, created_at, updated_at,"
            " last_error, content_hash, payload)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (pipeline, scheduled_at, kind, target) DO NOTHING",
            (
                pipeline,
                _aware(scheduled_at, "scheduled_at"),
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


class PostgresLedger(LedgerBackend):
    """The run ledger in the Postgres database at ``url``, shared by any number of runners.

    ``url`` is a ``postgresql://`` URL (with the password already expanded
    from ``${ENV}``); messages name the database by ``display_path`` (default:
    the URL without user and password).  ``lease`` is how long a claim stays
    held without a heartbeat.  ``node`` names this runner in the rows it
    holds (default ``host-pid``).  ``clock`` is accepted for symmetry with
    SQLite and ignored: ``now=None`` always means the database's ``now()``.
    The tables are created on first use unless ``create=False`` (then a
    database without them is a :class:`LedgerError`).  ``read_only=True``
    never writes (no table creation either).
    """

    def __init__(
        self,
        url: str,
        *,
        display_path: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        node: str | None = None,
        read_only: bool = False,
        create: bool = True,
        connect_timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ):
        if lease <= timedelta(0):
            raise ValueError(f"lease must be positive, got {lease}")
        self._url = url
        self.display_path = display_path or redact_url(url)
        self._redact = _redactor(url)
        self.lease = lease
        self._host = host_name()
        self.node = node or f"{self._host}-{os.getpid()}"
        self.read_only = read_only
        self._connect_timeout = connect_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._all: list[Any] = []
        self._closed = False
        self._generation = 0  # bumped when a connection fails: the others reconnect
        with self._session() as conn:
            self._prepare(conn, create=create and not read_only)

    # -- connections and errors --

    def _prepare(self, conn: Any, *, create: bool) -> None:
        try:
            version = migrate_postgres(conn) if create else stored_version(conn)
        except RuntimeError as exc:
            raise LedgerError(f"run ledger {self.display_path} {exc}") from None
        if not create and version != PG_SCHEMA_VERSION:
            raise LedgerError(
                f"run ledger {self.display_path} has no ledger tables (schema version {version}):"
                " run `eil-run ledger init` with a role that may create tables"
            )

    def _connect(self) -> Any:
        import psycopg

        last: Exception | None = None
        for pause in (*_CONNECT_BACKOFF, None):
            try:
                conn = psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=max(1, round(self._connect_timeout)),
                    application_name=f"eil-run {self.node}"[:63],
                    options=f"-c TimeZone=UTC -c lock_timeout={int(LOCK_TIMEOUT_S * 1000)}",
                )
            except psycopg.Error as exc:
                last = exc
                if pause is None:
                    break
                time.sleep(pause)
                continue
            if self.read_only:
                conn.execute("SET default_transaction_read_only = on")
            return conn
        raise LedgerUnavailableError(
            f"run ledger {self.display_path} cannot be reached: {self._reason(last)}"
        ) from None

    def _reason(self, exc: BaseException | None) -> str:
        text = " ".join(str(exc).split()) if exc is not None else "unknown error"
        return self._redact(text)[:300] or type(exc).__name__

    def _conn(self) -> Any:
        if self._closed:
            raise LedgerError(f"run ledger {self.display_path} is closed")
        conn = getattr(self._local, "conn", None)
        stale = getattr(self._local, "generation", 0) != self._generation
        if conn is not None and (conn.closed or conn.broken or stale):
            # Another thread's connection failed (a restart, a cut): this one, idle
            # since, is most likely dead too; reconnect rather than fail once more.
            with contextlib.suppress(Exception):
                conn.close()
            conn = self._local.conn = None
        if conn is None:
            generation = self._generation
            conn = self._connect()
            self._local.conn = conn
            self._local.generation = generation
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _session(self) -> Iterator[Any]:
        """This thread's connection, with driver errors turned into ledger errors."""
        import psycopg
        from psycopg import errors as pg_errors

        conn = self._conn()
        try:
            yield conn
        except LedgerError:
            raise
        except (pg_errors.LockNotAvailable, pg_errors.SerializationFailure) as exc:
            raise LedgerLockedError(
                f"run ledger {self.display_path} is busy: {self._reason(exc)}; nothing was written"
            ) from None
        except pg_errors.DeadlockDetected as exc:
            raise LedgerLockedError(
                f"run ledger {self.display_path}: {self._reason(exc)}; nothing was written"
            ) from None
        except pg_errors.ReadOnlySqlTransaction:
            raise LedgerError(
                f"run ledger {self.display_path} was opened read-only; it can't be written"
            ) from None
        except pg_errors.UndefinedTable as exc:
            raise LedgerCorruptError(
                f"run ledger {self.display_path} lacks its tables ({self._reason(exc)}):"
                " run `eil-run ledger init`"
            ) from None
        except pg_errors.InsufficientPrivilege as exc:
            raise LedgerError(
                f"run ledger {self.display_path}: permission denied ({self._reason(exc)}); "
                "see the least privileges in docs/several-machines.md"
            ) from None
        except psycopg.OperationalError as exc:
            with contextlib.suppress(Exception):
                conn.close()
            self._local.conn = None
            with self._lock:
                self._generation += 1
            raise LedgerUnavailableError(
                f"run ledger {self.display_path} cannot be reached: {self._reason(exc)}"
            ) from None
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                self._local.conn = None
                with self._lock:
                    self._generation += 1
                raise LedgerUnavailableError(
                    f"run ledger {self.display_path} cannot be reached: {self._reason(exc)}"
                ) from None
            raise LedgerError(f"run ledger {self.display_path}: {self._reason(exc)}") from None

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction on this thread's connection."""
        with self._session() as conn, conn.transaction():
            yield conn

    def _one(self, sql: str, params: Any = None) -> Any:
        with self._session() as conn:
            return conn.execute(sql, params).fetchone()

    def _all_rows(self, sql: str, params: Any = None) -> list[Any]:
        with self._session() as conn:
            return conn.execute(sql, params).fetchall()

    @property
    def _lease_s(self) -> float:
        return self.lease.total_seconds()

    def _who(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": self._host,
            "token": process_token(),
            "node": self.node,
            "lease": self._lease_s,
        }

    # -- the clock --

    def now(self) -> datetime:
        """The database server's ``now()`` (aware UTC)."""
        return _utc(self._one("SELECT now()")[0])  # type: ignore[return-value]

    # -- runs: claims and outcomes --

    def claim(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        run_id: str,
        attempt: int = 1,
        now: datetime | None = None,
    ) -> RunRecord | None:
        """Claim ``pipeline`` at ``scheduled_at`` (``INSERT … ON CONFLICT DO NOTHING``),
        with a lease on the database's clock; ``None`` when the key has a row."""
        params = {
            "pipeline": pipeline,
            "at": _aware(scheduled_at, "scheduled_at"),
            "run_id": run_id,
            "attempt": attempt,
            "now": _maybe(now, "now"),
            **self._who(),
        }
        row = self._one(
            "INSERT INTO eil_runs (pipeline, scheduled_at, run_id, status, attempt, started_at,"
            " files, pid, host, owner_token, node, lease_until)"
            f" VALUES (%(pipeline)s, %(at)s, %(run_id)s, 'running', %(attempt)s, {_NOW}, '[]',"
            " %(pid)s, %(host)s, %(token)s, %(node)s,"
            " now() + make_interval(secs => %(lease)s))"
            f" ON CONFLICT (pipeline, scheduled_at) DO NOTHING RETURNING {_RUN_COLUMNS}",
            params,
        )
        return _run(row) if row else None

    def wait(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        run_id: str,
        note: str,
        now: datetime | None = None,
    ) -> RunRecord | None:
        """Hold ``pipeline`` at ``scheduled_at`` as ``waiting`` (the same ``INSERT … ON
        CONFLICT DO NOTHING`` as :meth:`claim`, with a lease the heartbeat renews);
        ``None`` when the key has a row."""
        params = {
            "pipeline": pipeline,
            "at": _aware(scheduled_at, "scheduled_at"),
            "run_id": run_id,
            "note": note,
            "now": _maybe(now, "now"),
            **self._who(),
        }
        row = self._one(
            "INSERT INTO eil_runs (pipeline, scheduled_at, run_id, status, attempt, started_at,"
            " error, files, pid, host, owner_token, node, lease_until, summary)"
            f" VALUES (%(pipeline)s, %(at)s, %(run_id)s, 'waiting', 1, {_NOW}, %(note)s, '[]',"
            " %(pid)s, %(host)s, %(token)s, %(node)s,"
            " now() + make_interval(secs => %(lease)s), '{\"checks\": 0}')"
            f" ON CONFLICT (pipeline, scheduled_at) DO NOTHING RETURNING {_RUN_COLUMNS}",
            params,
        )
        if row is None:
            # An abandoned row (its runner died, waiting or running) is taken back
            # as its next attempt, waiting again for what it waits for.
            row = self._one(
                "UPDATE eil_runs SET status = 'waiting', attempt = attempt + 1,"
                f" run_id = %(run_id)s, started_at = {_NOW}, finished_at = NULL,"
                " duration_s = NULL, error = %(note)s, files = '[]', pid = %(pid)s,"
                " host = %(host)s, owner_token = %(token)s, node = %(node)s,"
                " lease_until = now() + make_interval(secs => %(lease)s),"
                " summary = '{\"checks\": 0}'"
                " WHERE pipeline = %(pipeline)s AND scheduled_at = %(at)s"
                f" AND status = 'abandoned' RETURNING {_RUN_COLUMNS}",
                params,
            )
        return _run(row) if row else None

    def note_waiting(
        self, pipeline: str, scheduled_at: datetime, *, note: str, checks: int
    ) -> bool:
        """Update what a ``waiting`` row waits for and how often it was checked;
        False when it is no longer waiting."""
        row = self._one(
            "UPDATE eil_runs SET error = %(note)s, summary = %(summary)s::jsonb"
            " WHERE pipeline = %(pipeline)s AND scheduled_at = %(at)s AND status = 'waiting'"
            " RETURNING id",
            {
                "note": note,
                "summary": json.dumps({"checks": checks}),
                "pipeline": pipeline,
                "at": _aware(scheduled_at, "scheduled_at"),
            },
        )
        return row is not None

    def reclaim(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        run_id: str,
        attempt: int,
        now: datetime | None = None,
        allowed_from: Sequence[str] = DEFAULT_RECLAIMABLE,
    ) -> RunRecord | None:
        """Turn a row in one of ``allowed_from`` back to ``running`` (a compare-and-set)."""
        for status in allowed_from:
            check_status(status, "allowed_from")
        if "running" in allowed_from:
            raise ValueError("allowed_from can't include 'running': a running row has an owner")
        at = _aware(scheduled_at, "scheduled_at")
        stamp = _maybe(now, "now")
        if not allowed_from:
            return None
        row = self._one(
            "UPDATE eil_runs SET status = 'running', run_id = %(run_id)s, attempt = %(attempt)s,"
            f" started_at = {_NOW}, finished_at = NULL, duration_s = NULL, error = NULL,"
            " files = '[]', pid = %(pid)s, host = %(host)s, owner_token = %(token)s,"
            " node = %(node)s, lease_until = now() + make_interval(secs => %(lease)s)"
            " WHERE pipeline = %(pipeline)s AND scheduled_at = %(at)s"
            f" AND status = ANY(%(allowed)s) RETURNING {_RUN_COLUMNS}",
            {
                "run_id": run_id,
                "attempt": attempt,
                "now": stamp,
                "pipeline": pipeline,
                "at": at,
                "allowed": list(allowed_from),
                **self._who(),
            },
        )
        return _run(row) if row else None

    def finish(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        status: str,
        now: datetime | None = None,
        error: str | None = None,
        files: Iterable[str | os.PathLike[str]] = (),
        run_id: str | None = None,
        summary: Mapping[str, Any] | None = None,
        attempt: int | None = None,
    ) -> RunRecord:
        """Record the outcome of a ``running`` row, fenced by ``run_id`` and ``attempt``:
        one ``UPDATE … WHERE status = 'running' AND run_id = … AND attempt = …``."""
        check_status(status)
        if status in ("running", "waiting"):
            raise ValueError(f"finish() needs a final status, not {status!r}")
        at = _aware(scheduled_at, "scheduled_at")
        stamp = _maybe(now, "now")
        paths = json.dumps([os.fspath(f) for f in files])
        with self._tx() as conn:
            row = conn.execute(
                "UPDATE eil_runs SET status = %(status)s, finished_at = " + _NOW + ","
                " duration_s = GREATEST(0, EXTRACT(EPOCH FROM (" + _NOW + " - started_at))),"
                " error = %(error)s, files = %(files)s::jsonb, summary = %(summary)s::jsonb,"
                " lease_until = NULL"
                " WHERE pipeline = %(pipeline)s AND scheduled_at = %(at)s"
                " AND status = 'running'"
                " AND (%(run_id)s::text IS NULL OR run_id = %(run_id)s)"
                " AND (%(attempt)s::integer IS NULL OR attempt = %(attempt)s)"
                f" RETURNING {_RUN_COLUMNS}",
                {
                    "status": status,
                    "now": stamp,
                    "error": error,
                    "files": paths,
                    "summary": json.dumps(summary, sort_keys=True) if summary is not None else None,
                    "pipeline": pipeline,
                    "at": at,
                    "run_id": run_id,
                    "attempt": attempt,
                },
            ).fetchone()
            if row is not None:
                return _run(row)
            current = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM eil_runs WHERE pipeline = %s AND scheduled_at = %s",
                (pipeline, at),
            ).fetchone()
        what = (
            f'cannot finish the run of pipeline "{pipeline}" scheduled at '
            f"{to_text(scheduled_at, 'scheduled_at')}"
        )
        if current is None:
            raise LedgerStateError(f"{what}: it was never claimed")
        record = _run(current)
        if record.status != "running":
            raise LedgerStateError(f"{what}: it is {record.status}, not running")
        mine = run_id if attempt is None else f"{run_id or record.run_id} (attempt {attempt})"
        raise LedgerStateError(
            f"{what}: it now belongs to run {record.run_id} (attempt {record.attempt}), not {mine}"
        )

    def holds(self, pipeline: str, scheduled_at: datetime, *, run_id: str, attempt: int) -> bool:
        """Whether ``run_id`` at ``attempt`` still holds its ``running`` row (fencing)."""
        row = self._one(
            "SELECT 1 FROM eil_runs WHERE pipeline = %s AND scheduled_at = %s"
            " AND status = 'running' AND run_id = %s AND attempt = %s",
            (pipeline, _aware(scheduled_at, "scheduled_at"), run_id, attempt),
        )
        return row is not None

    # -- skips --

    _INSERT_SKIP = (
        "INSERT INTO eil_runs (pipeline, scheduled_at, run_id, status, attempt, finished_at,"
        " error, files, pid, host, node)"
        f" VALUES (%(pipeline)s, %(at)s, %(run_id)s, 'skipped', 0, {_NOW}, %(reason)s, '[]',"
        " %(pid)s, %(host)s, %(node)s)"
        f" ON CONFLICT (pipeline, scheduled_at) DO NOTHING RETURNING {_RUN_COLUMNS}"
    )

    def record_skipped(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        reason: str,
        now: datetime | None = None,
        run_id: str | None = None,
    ) -> RunRecord | None:
        """Insert a ``skipped`` row; ``None`` when the key already has a row."""
        row = self._one(
            self._INSERT_SKIP,
            {
                "pipeline": pipeline,
                "at": _aware(scheduled_at, "scheduled_at"),
                "run_id": run_id,
                "now": _maybe(now, "now"),
                "reason": reason,
                **self._who(),
            },
        )
        return _run(row) if row else None

    def record_skipped_many(
        self,
        skips: Iterable[NewSkip],
        *,
        now: datetime | None = None,
        batch_size: int = SKIP_BATCH_SIZE,
    ) -> list[RunRecord]:
        """:meth:`record_skipped` for many times, one transaction per ``batch_size`` rows."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        stamp = _maybe(now, "now")
        rows = [(skip, _aware(skip.scheduled_at, "scheduled_at")) for skip in skips]
        who = self._who()
        inserted: list[RunRecord] = []
        for start in range(0, len(rows), batch_size):
            with self._tx() as conn:
                for skip, at in rows[start : start + batch_size]:
                    row = conn.execute(
                        self._INSERT_SKIP,
                        {
                            "pipeline": skip.pipeline,
                            "at": at,
                            "run_id": skip.run_id,
                            "now": stamp,
                            "reason": skip.reason,
                            **who,
                        },
                    ).fetchone()
                    if row is not None:
                        inserted.append(_run(row))
        return inserted

    # -- abandoned runs --

    def mark_abandoned(
        self,
        *,
        now: datetime | None = None,
        pids_alive: Callable[[int], bool] | None = None,
        host: str | None = None,
    ) -> list[RunRecord]:
        """Mark ``running`` rows whose lease expired (database clock) as ``abandoned``.

        With ``host`` or ``pids_alive``, only rows claimed on ``host``
        (default: this machine) are considered, and a row whose process is
        gone (``pids_alive``, or this machine's process table) is dead at
        once, without waiting for its lease.
        """
        stamp = _maybe(now, "now")
        local = host is not None or pids_alive is not None
        where_host = self._host if host is None else host
        candidates = self._all_rows(
            "SELECT id, pid, owner_token, host, node, lease_until < now() FROM eil_runs"
            " WHERE status IN ('running', 'waiting')" + (" AND host = %s" if local else ""),
            (where_host,) if local else None,
        )
        dead: list[tuple[int, int | None, str | None, str]] = []
        for row_id, pid, token, row_host, node, expired in candidates:
            if expired:
                dead.append((row_id, pid, token, f"pid {pid} on {row_host}, node {node}"))
                continue
            if not local or pid is None:
                continue
            if pids_alive is not None:
                alive = pids_alive(pid)
            elif row_host == self._host:
                alive = default_alive(pid, token)
            else:
                alive = False
            if not alive:
                dead.append((row_id, pid, token, f"pid {pid}"))
        abandoned: list[RunRecord] = []
        for row_id, pid, token, who in dead:
            # Match the owner too: the row may have been renewed or reclaimed since.
            row = self._one(
                f"UPDATE eil_runs SET status = 'abandoned', finished_at = {_NOW},"
                " error = %(error)s, lease_until = NULL"
                " WHERE id = %(id)s AND status IN ('running', 'waiting')"
                " AND pid IS NOT DISTINCT FROM %(pid)s"
                " AND owner_token IS NOT DISTINCT FROM %(token)s"
                f" RETURNING {_RUN_COLUMNS}",
                {
                    "now": stamp,
                    "error": f"the process running it stopped ({who})",
                    "id": row_id,
                    "pid": pid,
                    "token": token,
                },
            )
            if row is not None:
                abandoned.append(_run(row))
        return abandoned

    def expired_runs(self) -> list[RunRecord]:
        """``running`` rows whose lease expired on the database's clock (for takeover)."""
        rows = self._all_rows(
            f"SELECT {_RUN_COLUMNS} FROM eil_runs WHERE status = 'running'"
            " AND lease_until < now() ORDER BY scheduled_at"
        )
        return [_run(row) for row in rows]

    def renew_leases(self, runs: Collection[tuple[str, datetime]] | None = None) -> int:
        """Push back the leases of the rows this process holds (only the ``runs`` given,
        when given, among its run rows); return how many."""
        who = self._who()
        keys = None if runs is None else list(runs)
        total = 0
        with self._tx() as conn:
            if keys is None or keys:
                only = (
                    ""
                    if keys is None
                    else " AND (pipeline, scheduled_at) IN"
                    " (SELECT * FROM unnest(%(names)s::text[], %(times)s::timestamptz[]))"
                )
                cursor = conn.execute(
                    "UPDATE eil_runs SET lease_until = now() + make_interval(secs => %(lease)s)"
                    " WHERE status = 'running' AND owner_token = %(token)s AND pid = %(pid)s"
                    f" AND host = %(host)s{only}",
                    {
                        **who,
                        "names": [k[0] for k in keys or []],
                        "times": [_aware(k[1], "scheduled_at") for k in keys or []],
                    },
                )
                total += cursor.rowcount
            # A waiting row is held by this process until it starts or gives up.
            cursor = conn.execute(
                "UPDATE eil_runs SET lease_until = now() + make_interval(secs => %(lease)s)"
                " WHERE status = 'waiting' AND owner_token = %(token)s AND pid = %(pid)s"
                " AND host = %(host)s",
                who,
            )
            total += cursor.rowcount
            for table, status in (("eil_outbox", "status = 'sending' AND "), ("eil_leases", "")):
                cursor = conn.execute(
                    f"UPDATE {table} SET lease_until = now() + make_interval(secs => %(lease)s)"
                    f" WHERE {status}owner_token = %(token)s AND pid = %(pid)s"
                    " AND host = %(host)s",
                    who,
                )
                total += cursor.rowcount
        return total

    # -- runs: queries --

    def history(
        self, *, pipeline: str | None = None, failed_only: bool = False, limit: int | None = 50
    ) -> list[RunRecord]:
        """Rows, newest scheduled time first (ties: newest row first)."""
        where: list[str] = []
        params: list[Any] = []
        if pipeline is not None:
            where.append("pipeline = %s")
            params.append(pipeline)
        if failed_only:
            where.append("status = ANY(%s)")
            params.append(list(FAILED_STATUSES))
        sql = f"SELECT {_RUN_COLUMNS} FROM eil_runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY scheduled_at DESC, id DESC"
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must be zero or more, got {limit}")
            sql += " LIMIT %s"
            params.append(limit)
        return [_run(row) for row in self._all_rows(sql, params)]

    def get(self, pipeline: str, scheduled_at: datetime) -> RunRecord | None:
        """The row of ``pipeline`` at ``scheduled_at``, or ``None``."""
        row = self._one(
            f"SELECT {_RUN_COLUMNS} FROM eil_runs WHERE pipeline = %s AND scheduled_at = %s",
            (pipeline, _aware(scheduled_at, "scheduled_at")),
        )
        return _run(row) if row else None

    def succeeded_times(self, pipeline: str, start: datetime, end: datetime) -> set[datetime]:
        """Scheduled times of ``pipeline`` that succeeded, with ``start <= t < end``."""
        rows = self._all_rows(
            "SELECT scheduled_at FROM eil_runs WHERE pipeline = %s AND status = 'succeeded'"
            " AND scheduled_at >= %s AND scheduled_at < %s",
            (pipeline, _aware(start, "start"), _aware(end, "end")),
        )
        return {_utc(at) for (at,) in rows}  # type: ignore[misc]

    def latest_scheduled(self, pipeline: str) -> datetime | None:
        """The newest scheduled time of ``pipeline`` in any state, or ``None``."""
        row = self._one("SELECT max(scheduled_at) FROM eil_runs WHERE pipeline = %s", (pipeline,))
        return _utc(row[0])

    def schema_version(self) -> int:
        """The schema version stored in ``eil_meta``."""
        with self._session() as conn:
            return stored_version(conn)

    # -- the delivery outbox --

    @contextmanager
    def delivery_batch(self, *, now: datetime | None = None) -> Iterator[DeliveryBatch]:
        """One transaction for queueing messages and moving delivery state."""
        stamp = _maybe(now, "now")
        with self._tx() as conn:
            when = stamp or _utc(conn.execute("SELECT now()").fetchone()[0])
            yield _PgDeliveryBatch(conn, when)  # type: ignore[arg-type]

    def claim_delivery(
        self, *, now: datetime | None = None, pipelines: Collection[str] | None = None
    ) -> tuple[DeliveryRecord, bytes] | None:
        """Take the next due message (``FOR UPDATE SKIP LOCKED``) and mark it ``sending``."""
        stamp = _maybe(now, "now")
        names = None if pipelines is None else list(pipelines)
        if names is not None and not names:
            return None
        row = self._one(
            "UPDATE eil_outbox SET status = 'sending', attempts = attempts + 1,"
            f" updated_at = {_NOW}, pid = %(pid)s, host = %(host)s, owner_token = %(token)s,"
            " node = %(node)s, lease_until = now() + make_interval(secs => %(lease)s)"
            " WHERE id = (SELECT id FROM eil_outbox WHERE status IN ('pending', 'failed')"
            f" AND next_attempt_at <= {_NOW}"
            " AND (%(names)s::text[] IS NULL OR pipeline = ANY(%(names)s))"
            " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_DELIVERY_COLUMNS}, payload",
            {"now": stamp, "names": names, **self._who()},
        )
        if row is None:
            return None
        return _delivery(row[:-1]), bytes(row[-1] or b"")

    def finish_delivery(
        self,
        delivery_id: int,
        *,
        status: str,
        now: datetime | None = None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> DeliveryRecord | None:
        """Record the outcome of a send this process claimed; ``None`` when no longer ours."""
        if status not in ("sent", "failed", "gave_up"):
            raise ValueError(f"status must be sent, failed or gave_up; got {status!r}")
        if status == "failed" and next_attempt_at is None:
            raise ValueError("a failed send needs next_attempt_at")
        stamp = _maybe(now, "now")
        retry = _maybe(next_attempt_at, "next_attempt_at") if status == "failed" else None
        row = self._one(
            f"UPDATE eil_outbox SET status = %(status)s, updated_at = {_NOW},"
            " next_attempt_at = %(retry)s,"
            f" sent_at = CASE WHEN %(status)s = 'sent' THEN {_NOW} ELSE sent_at END,"
            " last_error = CASE WHEN %(status)s = 'sent' THEN last_error ELSE %(error)s END,"
            " payload = CASE WHEN %(status)s = 'failed' THEN payload ELSE NULL END,"
            " pid = NULL, host = NULL, owner_token = NULL, node = NULL, lease_until = NULL"
            " WHERE id = %(id)s AND status = 'sending' AND owner_token = %(token)s"
            f" AND pid = %(pid)s RETURNING {_DELIVERY_COLUMNS}",
            {
                "status": status,
                "now": stamp,
                "retry": retry,
                "error": error,
                "id": delivery_id,
                **self._who(),
            },
        )
        return _delivery(row) if row else None

    def recover_deliveries(
        self, *, now: datetime | None = None, pids_alive: Callable[[int], bool] | None = None
    ) -> list[DeliveryRecord]:
        """Rows left ``sending`` whose owner's lease expired (or, on this machine, whose
        process is gone) become ``failed``, due ``now``."""
        stamp = _maybe(now, "now")
        candidates = self._all_rows(
            "SELECT id, pid, owner_token, host, lease_until < now() FROM eil_outbox"
            " WHERE status = 'sending'"
        )
        recovered: list[DeliveryRecord] = []
        for row_id, pid, token, row_host, expired in candidates:
            if not expired:
                if row_host != self._host or pid is None:
                    continue
                alive = pids_alive(pid) if pids_alive is not None else default_alive(pid, token)
                if alive:
                    continue
            row = self._one(
                f"UPDATE eil_outbox SET status = 'failed', next_attempt_at = {_NOW},"
                f" updated_at = {_NOW}, last_error = %(error)s, pid = NULL, host = NULL,"
                " owner_token = NULL, node = NULL, lease_until = NULL"
                " WHERE id = %(id)s AND status = 'sending'"
                " AND pid IS NOT DISTINCT FROM %(pid)s"
                " AND owner_token IS NOT DISTINCT FROM %(token)s"
                f" RETURNING {_DELIVERY_COLUMNS}",
                {
                    "now": stamp,
                    "error": f"interrupted while sending (the process stopped, pid {pid}); "
                    "sending again",
                    "id": row_id,
                    "pid": pid,
                    "token": token,
                },
            )
            if row is not None:
                recovered.append(_delivery(row))
        return recovered

    def next_delivery_due(self, pipelines: Collection[str] | None = None) -> datetime | None:
        """When the next queued message is due (UTC), or ``None``."""
        names = None if pipelines is None else list(pipelines)
        if names is not None and not names:
            return None
        row = self._one(
            "SELECT min(next_attempt_at) FROM eil_outbox WHERE status IN ('pending', 'failed')"
            " AND (%(names)s::text[] IS NULL OR pipeline = ANY(%(names)s))",
            {"names": names},
        )
        return _utc(row[0])

    def deliveries(
        self,
        *,
        pipeline: str | None = None,
        scheduled_at: datetime | None = None,
        statuses: Collection[str] | None = None,
    ) -> list[DeliveryRecord]:
        """Outbox rows, oldest scheduled time first (then by insertion)."""
        where: list[str] = []
        params: list[Any] = []
        if pipeline is not None:
            where.append("pipeline = %s")
            params.append(pipeline)
        if scheduled_at is not None:
            where.append("scheduled_at = %s")
            params.append(_aware(scheduled_at, "scheduled_at"))
        if statuses is not None:
            for status in statuses:
                if status not in DELIVERY_STATUSES:
                    raise ValueError(f"unknown delivery status {status!r}")
            where.append("status = ANY(%s)")
            params.append(list(statuses))
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM eil_outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY scheduled_at, id"
        return [_delivery(row) for row in self._all_rows(sql, params)]

    # -- named leases --

    def acquire_lease(self, name: str, *, holder: str, now: datetime | None = None) -> str | None:
        """Take the lease ``name``; an expired one (database clock) or one whose local
        process is gone is taken over.  Returns the live holder's description otherwise."""
        stamp = _maybe(now, "now")
        who = self._who()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT holder, pid, host, owner_token, lease_until < now() FROM eil_leases"
                " WHERE name = %s FOR UPDATE",
                (name,),
            ).fetchone()
            if row is not None:
                other, pid, row_host, token, expired = row
                alive = not expired and (
                    row_host != self._host or pid is None or default_alive(pid, token)
                )
                if alive:
                    return f"{other} (pid {pid} on {row_host})"
                conn.execute("DELETE FROM eil_leases WHERE name = %s", (name,))
            inserted = conn.execute(
                "INSERT INTO eil_leases (name, holder, pid, host, owner_token, node,"
                f" acquired_at, lease_until) VALUES (%(name)s, %(holder)s, %(pid)s, %(host)s,"
                f" %(token)s, %(node)s, {_NOW}, now() + make_interval(secs => %(lease)s))"
                " ON CONFLICT (name) DO NOTHING",
                {"name": name, "holder": holder, "now": stamp, **who},
            )
            if inserted.rowcount != 1:
                # Another runner inserted it between our look and our insert.
                found = conn.execute(
                    "SELECT holder, pid, host FROM eil_leases WHERE name = %s", (name,)
                ).fetchone()
                if found is not None:
                    return f"{found[0]} (pid {found[1]} on {found[2]})"
        return None

    def release_lease(self, name: str) -> bool:
        """Give back a lease this process holds; ``False`` when it held none."""
        with self._session() as conn:
            cursor = conn.execute(
                "DELETE FROM eil_leases WHERE name = %s AND pid = %s AND host = %s"
                " AND owner_token = %s",
                (name, os.getpid(), self._host, process_token()),
            )
            return cursor.rowcount == 1

    # -- runners --

    def beat(
        self,
        node: str,
        *,
        host: str,
        pid: int,
        version: str,
        started_at: datetime,
        running: int,
        last_error: str | None,
        stopped: bool = False,
    ) -> None:
        """Record ``node``'s heartbeat, stamped with the database's clock."""
        with self._session() as conn:
            conn.execute(
                "INSERT INTO eil_nodes (node, host, pid, version, started_at, last_beat,"
                " running, last_error, stopped) VALUES (%s, %s, %s, %s, %s, now(), %s, %s, %s)"
                " ON CONFLICT (node) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                " version = excluded.version, started_at = excluded.started_at,"
                " last_beat = excluded.last_beat, running = excluded.running,"
                " last_error = excluded.last_error, stopped = excluded.stopped",
                (
                    node,
                    host,
                    pid,
                    version,
                    _aware(started_at, "started_at"),
                    running,
                    last_error,
                    stopped,
                ),
            )

    def nodes(self) -> list[NodeRecord]:
        """Every runner the ledger has heard of, newest beat first."""
        rows = self._all_rows(
            "SELECT node, host, pid, version, started_at, last_beat, running, last_error,"
            " stopped FROM eil_nodes ORDER BY last_beat DESC, node"
        )
        return [
            NodeRecord(
                node=r[0],
                host=r[1],
                pid=r[2],
                version=r[3],
                started_at=_utc(r[4]),  # type: ignore[arg-type]
                last_beat=_utc(r[5]),  # type: ignore[arg-type]
                running=r[6],
                last_error=r[7],
                stopped=r[8],
            )
            for r in rows
        ]

    def request_run(
        self, pipeline: str, *, requested_by: str, params: Mapping[str, str] | None = None
    ) -> int:
        """Ask for a run of ``pipeline`` now; returns the request's id."""
        row = self._one(
            "INSERT INTO eil_run_requests (pipeline, requested_by, params)"
            " VALUES (%s, %s, %s) RETURNING id",
            (pipeline, requested_by, json.dumps(dict(params), sort_keys=True) if params else None),
        )
        return int(row[0])

    def take_run_requests(self, node: str, pipelines: Collection[str]) -> list[RunRequest]:
        """Take the open requests for ``pipelines`` (``FOR UPDATE SKIP LOCKED``), oldest first."""
        names = list(pipelines)
        if not names:
            return []
        rows = self._all_rows(
            "UPDATE eil_run_requests SET taken_by = %s, taken_at = now()"
            " WHERE id IN (SELECT id FROM eil_run_requests WHERE taken_by IS NULL"
            " AND pipeline = ANY(%s) ORDER BY id FOR UPDATE SKIP LOCKED)"
            " RETURNING id, pipeline, requested_at, requested_by, params",
            (node, names),
        )
        return sorted(
            (
                RunRequest(r[0], r[1], _utc(r[2]), r[3], json.loads(r[4]) if r[4] else {})  # type: ignore[arg-type]
                for r in rows
            ),
            key=lambda request: request.id,
        )

    def open_run_requests(self) -> list[RunRequest]:
        """The requests no runner has taken yet, oldest first."""
        rows = self._all_rows(
            "SELECT id, pipeline, requested_at, requested_by, params FROM eil_run_requests"
            " WHERE taken_by IS NULL ORDER BY id"
        )
        return [
            RunRequest(r[0], r[1], _utc(r[2]), r[3], json.loads(r[4]) if r[4] else {})  # type: ignore[arg-type]
            for r in rows
        ]

    def overview(self, pipelines: Collection[str] | None = None) -> dict[str, PipelineOverview]:
        """Each pipeline's newest finished run, running rows and failure streak: three
        queries whatever the number of pipelines, each a backward scan per pipeline
        of the (pipeline, scheduled_at) key."""
        if pipelines is None:
            names = [r[0] for r in self._all_rows("SELECT DISTINCT pipeline FROM eil_runs")]
        else:
            names = sorted(set(pipelines))
        if not names:
            return {}
        last_rows = self._all_rows(
            "SELECT r.* FROM unnest(%s::text[]) AS p(name) CROSS JOIN LATERAL"
            f" (SELECT {_RUN_COLUMNS} FROM eil_runs WHERE pipeline = p.name"
            "  AND status NOT IN ('running', 'waiting', 'skipped')"
            "  ORDER BY scheduled_at DESC LIMIT 1) AS r",
            (names,),
        )
        # Failures after the newest success; skipped times neither count nor break it.
        streaks = self._all_rows(
            "SELECT p.name, (SELECT count(*) FROM eil_runs f WHERE f.pipeline = p.name"
            "  AND f.status = ANY(%s) AND f.scheduled_at > coalesce((SELECT max(s.scheduled_at)"
            "   FROM eil_runs s WHERE s.pipeline = p.name AND s.status = 'succeeded'),"
            "   '-infinity'::timestamptz))"
            " FROM unnest(%s::text[]) AS p(name)",
            (list(FAILED_STATUSES), names),
        )
        held_rows = self._all_rows(
            f"SELECT {_RUN_COLUMNS} FROM eil_runs WHERE status IN ('running', 'waiting')"
            " ORDER BY started_at NULLS FIRST, id"
        )
        last = {record.pipeline: record for record in map(_run, last_rows)}
        streak = {name: int(count) for name, count in streaks}
        return assemble_overviews(names, last, map(_run, held_rows), streak)

    # -- the site --

    @contextmanager
    def site_lock(self) -> Iterator[None]:
        """Hold the Postgres advisory lock of the site rebuild (one runner at a time)."""
        with self._session() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SITE_LOCK,))
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (SITE_LOCK,))

    # -- lifetime --

    def close(self) -> None:
        """Close every connection, in all threads; further use raises :class:`LedgerError`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            connections, self._all = self._all, []
        for conn in connections:
            with contextlib.suppress(Exception):
                conn.close()
