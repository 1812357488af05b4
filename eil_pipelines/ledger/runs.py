"""The SQLite backend's run rows: claims, reclaims, outcomes, skips, abandonment, history.

The contracts are :class:`~eil_pipelines.ledger.base.LedgerBackend`'s; this
module says how SQLite keeps them: every check-then-write runs in one
``BEGIN IMMEDIATE`` transaction, so the file's single write lock makes it
atomic across threads and processes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .base import DEFAULT_RECLAIMABLE, SKIP_BATCH_SIZE
from .connection import FOREVER, SqliteConnections
from .process import default_alive, process_token
from .records import FAILED_STATUSES, LedgerStateError, NewSkip, RunRecord, check_status
from .schema import from_text, to_text

__all__ = ["SqliteRuns"]

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
        scheduled_at=from_text(scheduled_at),  # type: ignore[arg-type]
        run_id=run_id,
        status=status,
        attempt=attempt,
        started_at=from_text(started_at),
        finished_at=from_text(finished_at),
        duration_s=duration_s,
        error=error,
        files=list(json.loads(files)) if files else [],
        pid=pid,
        host=host,
        owner_token=owner_token,
        summary=json.loads(summary) if summary else None,
    )


def _fetch(conn: sqlite3.Connection, pipeline: str, key: str) -> RunRecord | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE pipeline = ? AND scheduled_at = ?",
        (pipeline, key),
    ).fetchone()
    return _record(row) if row else None


_INSERT_SKIP = (
    "INSERT INTO runs (pipeline, scheduled_at, run_id, status, attempt, finished_at,"
    " error, files, pid, host)"
    " VALUES (?, ?, ?, 'skipped', 0, ?, ?, '[]', ?, ?)"
    " ON CONFLICT (pipeline, scheduled_at) DO NOTHING"
)


class SqliteRuns(SqliteConnections):
    """Run rows in the SQLite ledger (see :class:`~eil_pipelines.ledger.base.LedgerBackend`)."""

    # -- claims --

    def claim(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        run_id: str,
        attempt: int = 1,
        now: datetime | None = None,
    ) -> RunRecord | None:
        """Claim ``pipeline`` at ``scheduled_at``: insert a ``running`` row and return it.

        Returns ``None`` when a row for that key already exists in any state,
        so a scheduled time is never run twice, whichever thread or process
        asks, and however often the scheduler restarts.
        """
        key = to_text(scheduled_at, "scheduled_at")
        started = self._stamp(now)
        with self._write(self.lock_patience) as conn:
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
                    process_token(),
                ),
            )
            if cursor.rowcount != 1:
                return None
            return _fetch(conn, pipeline, key)

    def wait(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        run_id: str,
        note: str,
        now: datetime | None = None,
    ) -> RunRecord | None:
        """Hold ``pipeline`` at ``scheduled_at`` as ``waiting``; ``None`` when the key has a row.

        The same exactly-once insert as :meth:`claim`, with ``error`` holding
        what the run waits for.  A waiting row is taken to ``running`` with
        ``reclaim(..., allowed_from=("waiting",))``, or finished as ``failed``.
        """
        key = to_text(scheduled_at, "scheduled_at")
        started = self._stamp(now)
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (pipeline, scheduled_at, run_id, status, attempt, started_at,"
                " error, files, pid, host, owner_token, summary)"
                " VALUES (?, ?, ?, 'waiting', 1, ?, ?, '[]', ?, ?, ?, ?)"
                " ON CONFLICT (pipeline, scheduled_at) DO NOTHING",
                (
                    pipeline,
                    key,
                    run_id,
                    started,
                    note,
                    os.getpid(),
                    self._host,
                    process_token(),
                    json.dumps({"checks": 0}),
                ),
            )
            if cursor.rowcount != 1:
                # An abandoned row (its process died, waiting or running) is taken
                # back as its next attempt, waiting again for what it waits for.
                cursor = conn.execute(
                    "UPDATE runs SET status = 'waiting', attempt = attempt + 1, run_id = ?,"
                    " started_at = ?, finished_at = NULL, duration_s = NULL, error = ?,"
                    " files = '[]', pid = ?, host = ?, owner_token = ?, summary = ?"
                    " WHERE pipeline = ? AND scheduled_at = ? AND status = 'abandoned'",
                    (
                        run_id,
                        started,
                        note,
                        os.getpid(),
                        self._host,
                        process_token(),
                        json.dumps({"checks": 0}),
                        pipeline,
                        key,
                    ),
                )
                if cursor.rowcount != 1:
                    return None
            return _fetch(conn, pipeline, key)

    def note_waiting(
        self, pipeline: str, scheduled_at: datetime, *, note: str, checks: int
    ) -> bool:
        """Update what a ``waiting`` row waits for and how often it was checked.

        False when the row is no longer waiting (it started or was given up).
        """
        key = to_text(scheduled_at, "scheduled_at")
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET error = ?, summary = ?"
                " WHERE pipeline = ? AND scheduled_at = ? AND status = 'waiting'",
                (note, json.dumps({"checks": checks}), pipeline, key),
            )
            return cursor.rowcount == 1

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
            check_status(status, "allowed_from")
        if "running" in allowed_from:
            raise ValueError("allowed_from can't include 'running': a running row has an owner")
        if not allowed_from:
            return None
        key = to_text(scheduled_at, "scheduled_at")
        started = self._stamp(now)
        marks = ", ".join("?" * len(allowed_from))
        with self._write(self.lock_patience) as conn:
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
                    process_token(),
                    pipeline,
                    key,
                    *allowed_from,
                ),
            )
            if cursor.rowcount != 1:
                return None
            return _fetch(conn, pipeline, key)

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
        """Record the outcome of a running row and return it.

        ``summary`` is a small JSON-able mapping kept with the row (the run's
        headline metrics, for digests).

        Sets ``status`` (anything but ``running``), ``finished_at = now``,
        ``duration_s`` (from ``started_at``), ``error`` (pass redacted text)
        and ``files``.  When ``run_id`` (and ``attempt``) are given, the row
        must still belong to that run, so a run that was abandoned and
        reclaimed by someone else can't overwrite the new attempt.  Raises
        :class:`LedgerStateError` when there is no such row or it isn't
        running.
        """
        check_status(status)
        if status in ("running", "waiting"):
            raise ValueError(f"finish() needs a final status, not {status!r}")
        key = to_text(scheduled_at, "scheduled_at")
        end = self.now() if now is None else now
        finished = to_text(end, "now")
        paths = json.dumps([os.fspath(f) for f in files])
        with self._write(FOREVER) as conn:
            row = _fetch(conn, pipeline, key)
            what = f'cannot finish the run of pipeline "{pipeline}" scheduled at {key}'
            if row is None:
                raise LedgerStateError(f"{what}: it was never claimed")
            if row.status != "running":
                raise LedgerStateError(f"{what}: it is {row.status}, not running")
            if (run_id is not None and row.run_id != run_id) or (
                attempt is not None and row.attempt != attempt
            ):
                mine = run_id if attempt is None else f"{run_id or row.run_id} (attempt {attempt})"
                raise LedgerStateError(
                    f"{what}: it now belongs to run {row.run_id} (attempt {row.attempt}), "
                    f"not {mine}"
                )
            duration = None
            if row.started_at is not None:
                # Clamp: a clock stepped backwards shouldn't produce a negative duration.
                duration = max(0.0, (end - row.started_at).total_seconds())
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
            return _fetch(conn, pipeline, key)  # type: ignore[return-value]

    # -- skips --

    def record_skipped(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        reason: str,
        now: datetime | None = None,
        run_id: str | None = None,
    ) -> RunRecord | None:
        """Record that ``pipeline`` at ``scheduled_at`` was deliberately not run.

        Used for ``overlap = "skip"`` and ``catch_up`` skips.  The reason goes
        in ``error``; ``finished_at`` is ``now``; ``attempt`` is 0 (no attempt
        was made).  Does nothing and returns ``None`` if a row already exists,
        so a skip never hides a real run.
        """
        key = to_text(scheduled_at, "scheduled_at")
        finished = self._stamp(now)
        with self._write(self.lock_patience) as conn:
            cursor = conn.execute(
                _INSERT_SKIP,
                (pipeline, key, run_id, finished, reason, os.getpid(), self._host),
            )
            if cursor.rowcount != 1:
                return None
            return _fetch(conn, pipeline, key)

    def record_skipped_many(
        self,
        skips: Iterable[NewSkip],
        *,
        now: datetime | None = None,
        batch_size: int = SKIP_BATCH_SIZE,
    ) -> list[RunRecord]:
        """Skipped rows for many times, ``batch_size`` rows per ``BEGIN IMMEDIATE`` transaction.

        Returns the rows inserted, in the order given; keys that had a row
        (or came earlier in ``skips``) are left out.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        finished = self._stamp(now)
        # Convert every time first: a bad one fails the call before anything is written.
        rows = [(skip.pipeline, to_text(skip.scheduled_at, "scheduled_at"), skip) for skip in skips]
        pid = os.getpid()
        inserted: list[RunRecord] = []
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            ids: list[int] = []
            with self._write(self.lock_patience) as conn:
                for pipeline, key, skip in batch:
                    cursor = conn.execute(
                        _INSERT_SKIP,
                        (pipeline, key, skip.run_id, finished, skip.reason, pid, self._host),
                    )
                    if cursor.rowcount == 1 and cursor.lastrowid is not None:
                        ids.append(cursor.lastrowid)
                if ids:
                    # At most batch_size ids: one read, inside the batch's transaction.
                    marks = ", ".join("?" * len(ids))
                    found = {
                        record.id: record
                        for record in map(
                            _record,
                            conn.execute(
                                f"SELECT {_COLUMNS} FROM runs WHERE id IN ({marks})", ids
                            ).fetchall(),
                        )
                    }
                    inserted.extend(found[row_id] for row_id in ids)
        return inserted

    # -- abandoned runs --

    def mark_abandoned(
        self,
        *,
        now: datetime | None = None,
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
        stamp = self._stamp(now)
        host = self._host if host is None else host
        local = host == self._host
        candidates = self._read(
            "SELECT id, pid, owner_token FROM runs"
            " WHERE status IN ('running', 'waiting') AND host IS ?",
            (host,),
        )
        dead = []
        for row_id, pid, token in candidates:
            if pid is None:
                continue
            if pids_alive is not None:
                alive = pids_alive(pid)
            elif local:
                alive = default_alive(pid, token)
            else:
                alive = False
            if not alive:
                dead.append((row_id, pid, token))
        abandoned: list[RunRecord] = []
        if not dead:
            return abandoned
        with self._write() as conn:
            for row_id, pid, token in dead:
                # Match pid and token too: the row may have been reclaimed by a
                # live process since we looked.
                cursor = conn.execute(
                    "UPDATE runs SET status = 'abandoned', finished_at = ?, error = ?"
                    " WHERE id = ? AND status IN ('running', 'waiting')"
                    " AND pid IS ? AND owner_token IS ?",
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
        where: list[str] = []
        params: list[Any] = []
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

    def get(self, pipeline: str, scheduled_at: datetime) -> RunRecord | None:
        """The row of ``pipeline`` at ``scheduled_at``, or ``None``."""
        key = to_text(scheduled_at, "scheduled_at")
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
            (pipeline, to_text(start, "start"), to_text(end, "end")),
        )
        return {from_text(text) for (text,) in rows}  # type: ignore[misc]

    def latest_scheduled(self, pipeline: str) -> datetime | None:
        """The newest scheduled time of ``pipeline`` in any state, or ``None``.

        The scheduler starts from here to find the runs missed while it was down.
        """
        rows = self._read("SELECT max(scheduled_at) FROM runs WHERE pipeline = ?", (pipeline,))
        return from_text(rows[0][0])

    def schema_version(self) -> int:
        """The schema version of the open file (``PRAGMA user_version``)."""
        return self._read("PRAGMA user_version")[0][0]
