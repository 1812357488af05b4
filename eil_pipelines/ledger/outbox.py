"""The SQLite backend's delivery outbox: queued messages, their sends, and delivery state.

One row per message (report, alert, notice) and recipient; see the
``outbox`` table in :mod:`.schema`.  The contracts are
:class:`~eil_pipelines.ledger.base.LedgerBackend`'s.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .connection import SqliteConnections
from .process import default_alive, process_token
from .records import (
    DELIVERY_STATUSES,
    DeliveryBatch,
    DeliveryRecord,
    DeliveryState,
    NewDelivery,
)
from .schema import from_text, to_text

__all__ = ["SqliteDeliveryBatch", "SqliteOutbox"]

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
        scheduled_at=from_text(scheduled_at),  # type: ignore[arg-type]
        kind=kind,
        channel=channel,
        target=target,
        recipient=recipient,
        subject=subject,
        status=status,
        attempts=attempts,
        max_attempts=max_attempts,
        next_attempt_at=from_text(next_at),
        created_at=from_text(created),  # type: ignore[arg-type]
        updated_at=from_text(updated),  # type: ignore[arg-type]
        sent_at=from_text(sent),
        last_error=error,
        content_hash=content_hash,
    )


def _pipeline_filter(pipelines: Collection[str] | None) -> tuple[str, list[str]] | None:
    """An ``AND pipeline IN (...)`` clause and its parameters; ``None`` when the set is empty."""
    if pipelines is None:
        return "", []
    names = list(pipelines)
    if not names:
        return None
    return f" AND pipeline IN ({', '.join('?' * len(names))})", names


class SqliteDeliveryBatch(DeliveryBatch):
    """A :class:`DeliveryBatch` on the connection of an open ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, conn: sqlite3.Connection, now: datetime):
        self._conn = conn
        self._now = to_text(now, "now")

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
            failing_since=from_text(row[1]),
            alert_active=bool(row[2]),
            alert_since=from_text(row[3]),
            last_scheduled_at=from_text(row[4]),
        )

    def set_state(self, state: DeliveryState) -> None:
        """Store ``state`` as the pipeline's delivery state."""

        def text(value: datetime | None) -> str | None:
            return to_text(value, "time") if value is not None else None

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
                to_text(scheduled_at, "scheduled_at"),
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


class SqliteOutbox(SqliteConnections):
    """The delivery outbox in the SQLite ledger (see
    :class:`~eil_pipelines.ledger.base.LedgerBackend`)."""

    @contextmanager
    def delivery_batch(self, *, now: datetime | None = None) -> Iterator[DeliveryBatch]:
        """A write transaction for queueing messages and moving delivery state.

        Everything done through the batch commits together when the block ends,
        or not at all when it raises.  Keep the block short: it holds the
        ledger's write lock (render messages before entering it).
        """
        when = self.now() if now is None else now
        to_text(when, "now")  # refuse a naive time before taking the lock
        with self._write() as conn:
            yield SqliteDeliveryBatch(conn, when)

    def claim_delivery(
        self, *, now: datetime | None = None, pipelines: Collection[str] | None = None
    ) -> tuple[DeliveryRecord, bytes] | None:
        """Take the next message due at ``now``: mark it ``sending`` for this process.

        Due means ``pending``, or ``failed`` with ``next_attempt_at <= now``.
        The attempt is counted here, before anything goes on the wire.
        Returns the row and its payload, or ``None`` when nothing is due.  Of
        several threads or processes asking, exactly one gets each row.
        ``pipelines`` restricts the choice to those pipelines.
        """
        stamp = self._stamp(now)
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
                (stamp, os.getpid(), self._host, process_token(), row[0]),
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
        now: datetime | None = None,
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
        stamp = self._stamp(now)
        retry = (
            to_text(next_attempt_at, "next_attempt_at")
            if status == "failed" and next_attempt_at is not None
            else None
        )
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
                    process_token(),
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
        self, *, now: datetime | None = None, pids_alive: Callable[[int], bool] | None = None
    ) -> list[DeliveryRecord]:
        """Rows left ``sending`` by a process that is gone become ``failed``, due now.

        The message may or may not have reached the server before the process
        died; it is sent again (at-least-once), with the same Message-ID or
        ``Idempotency-Key`` so the receiver can drop a duplicate.  Rows of a
        live process (another ``eil-run``) are left alone.  Only rows claimed
        on this machine are considered.
        """
        stamp = self._stamp(now)
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
                    else pid is not None and default_alive(pid, token)
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
        return from_text(rows[0][0])

    def deliveries(
        self,
        *,
        pipeline: str | None = None,
        scheduled_at: datetime | None = None,
        statuses: Collection[str] | None = None,
    ) -> list[DeliveryRecord]:
        """Outbox rows, oldest first, optionally of one pipeline, one run, some statuses."""
        where: list[str] = []
        params: list[Any] = []
        if pipeline is not None:
            where.append("pipeline = ?")
            params.append(pipeline)
        if scheduled_at is not None:
            where.append("scheduled_at = ?")
            params.append(to_text(scheduled_at, "scheduled_at"))
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
