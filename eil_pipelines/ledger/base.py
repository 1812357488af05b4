"""The one storage interface of the run ledger: :class:`LedgerBackend`.

Every part of eil-pipelines that records runs, skips, leases or messages
goes through these methods and nothing else.  Today's backend is SQLite
(:class:`~eil_pipelines.ledger.sqlite.SqliteLedger`, one machine); a
Postgres backend shared by several machines (issue 13) implements the same
methods.  Each docstring states the contract a backend must keep, then,
where they differ, how SQLite keeps it and how Postgres is meant to.

Rules for every method
    Keys
        A run row's key is (pipeline name, scheduled time).  There is at
        most one row per key, for ever: nothing deletes a row, and every
        fire time of a pipeline gets exactly one.
    Times
        Every datetime passed in must be aware (``ValueError`` if naive,
        ``TypeError`` if not a datetime); times compare as instants, so a
        Europe/Berlin time and its UTC equivalent are the same key.
        Returned datetimes are aware UTC, with microseconds kept.
    "Now"
        Methods that write take ``now``: the time to record (a claim's start,
        a finish, a skip, when a message is due).  The scheduler passes its
        injected clock, which keeps the tests deterministic.  ``now=None``
        asks the backend for its own clock (:meth:`LedgerBackend.now`):
        SQLite reads the clock it was given (by default the machine's); a
        backend shared by machines uses the database's clock (Postgres:
        ``now()`` of the transaction), and must use it for lease expiry
        whatever ``now`` says, so that clock skew between runners can never
        let two of them hold one run.
    Errors
        Only :class:`~eil_pipelines.ledger.records.LedgerError` and its kinds
        reach the caller for a storage problem (never a driver's
        exception): :class:`LedgerLockedError` when a write waited longer
        than the backend's busy timeout (the caller may retry; nothing was
        written), :class:`LedgerCorruptError` when the store is not a run
        ledger, :class:`LedgerStateError` when a row is not in the state an
        operation needs.  ``ValueError`` means a caller bug (a status that
        doesn't exist).  Messages name the store (``display_path``) and
        never carry a secret (a database URL's password).
    Atomicity
        Each method is one transaction, all or nothing, except where its
        docstring says otherwise (:meth:`record_skipped_many`).
    Threads and processes
        An instance is safe to use from many threads; any number of
        instances, in any number of processes (and, for a shared backend,
        machines), may use one store at once, and the guarantees below
        hold across all of them.
    Identity
        A row that a process owns records its pid, host and a random owner
        token (:mod:`eil_pipelines.ledger.process`), set by the backend, not
        the caller.
    Secrets
        The ledger stores the text it is given.  Callers pass *redacted*
        error text; the ledger cannot tell a secret from a message.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Self

from .overview import PipelineOverview
from .records import (
    FAILED_STATUSES,
    DeliveryBatch,
    DeliveryRecord,
    NewSkip,
    NodeRecord,
    RunRecord,
    RunRequest,
)

__all__ = ["DEFAULT_RECLAIMABLE", "SKIP_BATCH_SIZE", "LedgerBackend"]

#: What :meth:`LedgerBackend.reclaim` may take back by default: the outcomes a retry repeats.
DEFAULT_RECLAIMABLE = ("failed", "abandoned", "timed_out")
#: Default rows per transaction in :meth:`LedgerBackend.record_skipped_many`.
SKIP_BATCH_SIZE = 500


class LedgerBackend(ABC):
    """The run ledger's storage: one row per (pipeline, scheduled time), the
    delivery outbox, and named leases.

    Use as a context manager, or call :meth:`close`.
    """

    display_path: str
    """How messages name this store: a file path as the user gave it, or a
    database URL with its password removed."""

    # -- the clock --

    @abstractmethod
    def now(self) -> datetime:
        """The backend's current time (aware UTC): what ``now=None`` means.

        SQLite: the clock the ledger was opened with (default: this
        machine's).  Postgres: the database server's ``now()``.
        """

    # -- runs: claims and outcomes --

    @abstractmethod
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

        Exactly once: returns ``None`` when a row for that key already exists,
        in any state (running, finished, skipped, abandoned), so a scheduled
        time is never run twice, whichever thread, process or machine asks,
        and however often the scheduler restarts.  Of several concurrent
        callers for one new key, exactly one gets the row; the others get
        ``None`` and the row is unchanged.  The row gets ``run_id``,
        ``attempt``, ``started_at = now``, this process's identity, and
        ``files = []``.

        SQLite: ``INSERT … ON CONFLICT DO NOTHING`` under the file's write
        lock.  Postgres: the same statement on the unique key; the row also
        takes a lease (``lease_until = now() + lease``) that the runner's
        heartbeat renews.
        """

    @abstractmethod
    def wait(
        self,
        pipeline: str,
        scheduled_at: datetime,
        *,
        run_id: str,
        note: str,
        now: datetime | None = None,
    ) -> RunRecord | None:
        """Hold ``pipeline`` at ``scheduled_at`` as ``waiting`` (for upstream runs or a gate).

        Exactly once, as :meth:`claim`: ``None`` when the key has a row, except
        an ``abandoned`` one (its process died while it waited or ran), which is
        taken back as ``waiting`` with its attempt + 1.  ``error`` holds
        ``note`` (what it waits for, redacted by the caller) and ``summary``
        ``{"checks": 0}``.  The row is taken to
        ``running`` by ``reclaim(..., allowed_from=("waiting",))``; a waiting
        row of a process that died is abandoned like a running one.
        """

    @abstractmethod
    def note_waiting(
        self, pipeline: str, scheduled_at: datetime, *, note: str, checks: int
    ) -> bool:
        """Update a ``waiting`` row's note and check count; False when it is no longer waiting."""

    @abstractmethod
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
        """Turn an existing row whose status is in ``allowed_from`` back to ``running``.

        ``allowed_from`` is the set of *finished* states the caller is
        prepared to run again: by default the outcomes a retry repeats
        (``failed``, ``abandoned``, ``timed_out``); ``backfill --reprocess``
        adds ``succeeded`` and ``skipped``.  The check and the update are one
        atomic step (a compare-and-set on the status): of several concurrent
        callers exactly one gets the row, the others ``None``.  Returns
        ``None`` too when there is no row, or its status is not in
        ``allowed_from`` (an empty ``allowed_from`` always gives ``None``).

        The row gets the new ``run_id``, ``attempt`` (callers pass the row's
        attempt + 1, so the attempt grows with every claim of a key and
        serves as its generation), ``started_at = now`` and this process's
        identity; ``finished_at``, ``duration_s``, ``error`` and ``files`` are
        cleared.  ``summary`` is kept until the next finish replaces it.

        Raises ``ValueError`` when ``allowed_from`` names an unknown status or
        ``running``: taking over a live run would run the time twice (a dead
        one is first marked ``abandoned``, see :meth:`mark_abandoned`).
        """

    @abstractmethod
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
        """Record the outcome of a ``running`` row and return the finished row.

        Sets ``status`` (any status but ``running``; ``ValueError``
        otherwise), ``finished_at = now``, ``duration_s = now - started_at``
        (clamped at 0 when a clock stepped back), ``error`` (redacted text),
        ``files`` (as strings) and ``summary`` (a small JSON-able mapping: the
        run's headline metrics, for digests; ``None`` clears it).

        Fencing: ``run_id`` and ``attempt``, when given, must match the row,
        so a run that was abandoned and reclaimed by someone else (a retry,
        another process, another machine after a lease expired) can't
        overwrite the new attempt.  A caller should pass both, from the
        record its claim returned: ``run_id`` is stable for a key, so on its
        own it tells apart only different keys' runs, while ``attempt`` grows
        with every reclaim.  (A Postgres backend may add a generation counter
        set by each claim; passing the claim's ``attempt`` stays correct.)

        Raises :class:`LedgerStateError` (and changes nothing) when the row
        no longer belongs to the caller: it was never claimed, it is not
        ``running`` (finished, abandoned, or finished twice), or its
        ``run_id``/``attempt`` differ.  The message names the pipeline, the
        scheduled time and the row's state.  Finishing is not idempotent: a
        second finish of the same attempt raises.  A :class:`LedgerLockedError`
        means nothing was written and the finish may be retried.

        Postgres: the check and the update are one ``UPDATE … WHERE status =
        'running' AND run_id = … AND attempt = …``; a finish after the row's
        lease expired but before anyone reclaimed it still succeeds.
        """

    @abstractmethod
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

        Used for ``overlap = "skip"`` and ``catch_up`` skips.  Inserts a
        ``skipped`` row: the reason goes in ``error``, ``finished_at`` is
        ``now``, ``attempt`` is 0 (no attempt was made), ``started_at`` and
        ``duration_s`` are ``None``.  Does nothing and returns ``None`` when a
        row for the key already exists, in any state, so a skip never hides
        or replaces a real run.  A skipped row blocks :meth:`claim`; only
        :meth:`reclaim` with ``"skipped"`` in ``allowed_from`` runs it later.
        """

    @abstractmethod
    def record_skipped_many(
        self,
        skips: Iterable[NewSkip],
        *,
        now: datetime | None = None,
        batch_size: int = SKIP_BATCH_SIZE,
    ) -> list[RunRecord]:
        """:meth:`record_skipped` for many times, in one transaction per ``batch_size`` rows.

        For a clock jump or a long outage that leaves thousands of missed
        times: each batch is one short write transaction, so another
        writer (a run's :meth:`finish`) gets the write lock between batches
        instead of waiting behind thousands of single-row transactions.

        Each skip follows :meth:`record_skipped`: a key that already has a row
        keeps it, and a key given twice is recorded once (the first wins).
        Returns the rows inserted, in the order of ``skips``.  A batch is all
        or nothing; when one fails (a :class:`LedgerLockedError`), the
        earlier batches stay written and the error propagates, and calling
        again with the same skips is safe: the written keys are left alone.
        ``batch_size`` must be at least 1 (``ValueError``).
        """

    @abstractmethod
    def mark_abandoned(
        self,
        *,
        now: datetime | None = None,
        pids_alive: Callable[[int], bool] | None = None,
        host: str | None = None,
    ) -> list[RunRecord]:
        """Mark ``running`` rows whose owner is gone as ``abandoned``; return them.

        An abandoned row gets ``finished_at = now``, ``duration_s`` stays
        unknown (``None``), and ``error`` reads ``the process running it
        stopped (pid N)``.  Each row is checked and changed atomically: a row
        that was finished or reclaimed meanwhile is left alone, and a row is
        abandoned by at most one caller.  An abandoned row can then be
        reclaimed (with ``"abandoned"`` in ``allowed_from``).

        Who is gone depends on the backend.  SQLite, one machine: only rows
        claimed on ``host`` (default: this machine) are considered; liveness
        comes from ``pids_alive(pid)`` when given, else for this machine a row
        is dead when its pid no longer exists or is this process's pid with
        an earlier process's owner token (a restarted container); for another
        ``host`` with no ``pids_alive``, the caller is stating that machine's
        runs are gone and all its running rows are abandoned.  Postgres:
        rows whose lease expired on the database's clock are dead, whoever
        holds them; ``pids_alive`` and ``host`` narrow the choice to local
        rows, as on SQLite.
        """

    # -- runs: queries --

    @abstractmethod
    def history(
        self, *, pipeline: str | None = None, failed_only: bool = False, limit: int | None = 50
    ) -> list[RunRecord]:
        """Rows, newest scheduled time first (ties: newest row first).

        ``pipeline`` restricts to one pipeline; ``failed_only`` keeps the
        :data:`~eil_pipelines.ledger.records.FAILED_STATUSES` (``failed``,
        ``timed_out``, ``abandoned``); ``limit`` caps the count (``None``: no
        cap; ``ValueError`` when negative).  Works on a read-only ledger.
        """

    def last_run(self, pipeline: str) -> RunRecord | None:
        """The row of ``pipeline`` with the newest scheduled time, in any state, or ``None``."""
        rows = self.history(pipeline=pipeline, limit=1)
        return rows[0] if rows else None

    @abstractmethod
    def get(self, pipeline: str, scheduled_at: datetime) -> RunRecord | None:
        """The row of ``pipeline`` at ``scheduled_at`` (the same instant in any zone), or ``None``."""

    @abstractmethod
    def succeeded_times(self, pipeline: str, start: datetime, end: datetime) -> set[datetime]:
        """Scheduled times of ``pipeline`` that succeeded, with ``start <= t < end`` (UTC)."""

    @abstractmethod
    def latest_scheduled(self, pipeline: str) -> datetime | None:
        """The newest scheduled time of ``pipeline`` in any state, or ``None``.

        The scheduler starts from here to find the runs missed while it was down.
        """

    @abstractmethod
    def schema_version(self) -> int:
        """The version of the stored schema (this code's newest once opened read-write)."""

    # -- the delivery outbox --

    @abstractmethod
    def delivery_batch(
        self, *, now: datetime | None = None
    ) -> AbstractContextManager[DeliveryBatch]:
        """A write transaction for queueing messages and moving delivery state.

        Everything done through the batch commits together when the ``with``
        block ends, or not at all when it raises.  Keep the block short: on
        SQLite it holds the ledger's write lock (render messages before
        entering it).  ``now`` is when the batch's rows are created and due.
        """

    @abstractmethod
    def claim_delivery(
        self, *, now: datetime | None = None, pipelines: Collection[str] | None = None
    ) -> tuple[DeliveryRecord, bytes] | None:
        """Take the next message due at ``now``: mark it ``sending`` for this process.

        Due means ``pending``, or ``failed`` with ``next_attempt_at <= now``;
        the earliest due first (then the oldest row).  The attempt is counted
        here, before anything goes on the wire.  Returns the row and its
        payload, or ``None`` when nothing is due.  Of several threads,
        processes or machines asking, exactly one gets each row.
        ``pipelines`` restricts the choice to those pipelines (an empty
        collection: nothing is due).

        Postgres: ``SELECT … FOR UPDATE SKIP LOCKED LIMIT 1`` then the update,
        in one transaction, so runners never wait on each other's messages.
        """

    @abstractmethod
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

        ``status`` is ``sent``, ``failed`` (with ``next_attempt_at``: then it
        is due again at that time) or ``gave_up``; anything else, or
        ``failed`` without ``next_attempt_at``, is a ``ValueError``.
        ``error`` must be redacted text; it is kept as ``last_error`` unless
        the message was sent.  The payload is dropped once the row is sent
        or given up.  Fencing: returns ``None`` and changes nothing when the
        row is no longer this process's ``sending`` row (another process
        recovered it meanwhile).
        """

    @abstractmethod
    def recover_deliveries(
        self, *, now: datetime | None = None, pids_alive: Callable[[int], bool] | None = None
    ) -> list[DeliveryRecord]:
        """Rows left ``sending`` by a process that is gone become ``failed``, due ``now``.

        The message may or may not have reached the server before the process
        died; it is sent again (at-least-once), with the same Message-ID or
        ``Idempotency-Key`` so the receiver can drop a duplicate.  Rows of a
        live owner are left alone.  Liveness as in :meth:`mark_abandoned`:
        SQLite considers rows claimed on this machine only; Postgres, rows
        whose owner's lease expired.  Returns the recovered rows.
        """

    @abstractmethod
    def next_delivery_due(self, pipelines: Collection[str] | None = None) -> datetime | None:
        """When the next queued message is due (UTC), or ``None`` when none waits.

        ``pipelines`` restricts to those pipelines (an empty collection: ``None``).
        """

    @abstractmethod
    def deliveries(
        self,
        *,
        pipeline: str | None = None,
        scheduled_at: datetime | None = None,
        statuses: Collection[str] | None = None,
    ) -> list[DeliveryRecord]:
        """Outbox rows, oldest scheduled time first (then by insertion), optionally of
        one pipeline, one run, some statuses (``ValueError`` for an unknown one)."""

    def deliveries_by_run(
        self, records: Iterable[RunRecord]
    ) -> dict[tuple[str, datetime], list[DeliveryRecord]]:
        """The outbox rows of each run in ``records``, keyed by (pipeline, scheduled time).

        Runs without messages are left out.
        """
        out: dict[tuple[str, datetime], list[DeliveryRecord]] = {}
        for record in records:
            rows = self.deliveries(pipeline=record.pipeline, scheduled_at=record.scheduled_at)
            if rows:
                out[(record.pipeline, record.scheduled_at)] = rows
        return out

    # -- named leases --

    @abstractmethod
    def acquire_lease(self, name: str, *, holder: str, now: datetime | None = None) -> str | None:
        """Take the exclusive lease ``name`` (``"backfill:daily"``) for this process.

        Returns ``None`` when it was taken, else a description of the live
        holder (``"backfill … (pid 123 on host)"``) for the refusal message.
        Of several concurrent callers at most one takes it.  A lease whose
        holder is gone is taken over.  ``holder`` says, for people, what
        holds it.  SQLite: gone means a dead process on this machine (a
        holder on another machine is always taken as alive).  Postgres: a
        lease also has an expiry on the database's clock, renewed by its
        holder's heartbeat; an expired lease is gone.
        """

    @abstractmethod
    def release_lease(self, name: str) -> bool:
        """Give back a lease this process holds; ``False`` (and no change) when it held none."""

    # -- runners: heartbeats and run requests --

    @abstractmethod
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
        """Record that runner ``node`` is alive (insert or replace its one row).

        ``last_beat`` is the backend's clock (:meth:`now`), never the caller's,
        so runners on machines with skewed clocks compare fairly.
        ``stopped=True`` is the runner's goodbye at a clean shutdown.
        ``last_error`` must be redacted text.
        """

    @abstractmethod
    def nodes(self) -> list[NodeRecord]:
        """Every runner that ever beat, newest beat first.  Works on a read-only ledger."""

    @abstractmethod
    def request_run(
        self, pipeline: str, *, requested_by: str, params: Mapping[str, str] | None = None
    ) -> int:
        """Ask the running scheduler to run ``pipeline`` now; return the request's id.

        ``requested_at`` is the backend's clock.  ``requested_by`` says who
        asked, for people (never a secret).  ``params`` are ``[params]`` values
        for that run only, as typed (``{"top_n": "5"}``), like ``--param``.
        Nothing runs here: a scheduler takes the request with
        :meth:`take_run_requests` at its next beat.
        """

    @abstractmethod
    def take_run_requests(self, node: str, pipelines: Collection[str]) -> list[RunRequest]:
        """Take the open requests for ``pipelines``, oldest first, for runner ``node``.

        Atomic: of several runners asking at once, each request goes to
        exactly one (SQLite: under the write lock; Postgres: ``FOR UPDATE
        SKIP LOCKED``).  A taken request is never returned again.  Requests
        for other pipelines stay open for a runner that has them.
        """

    def open_run_requests(self) -> list[RunRequest]:
        """The requests no runner has taken yet, oldest first (for the status page).

        The default says none; a backend that keeps requests overrides it.
        """
        return []

    def overview(self, pipelines: Collection[str] | None = None) -> dict[str, PipelineOverview]:
        """Each pipeline's newest finished run, running rows and failure streak.

        Keyed by pipeline name; ``pipelines`` restricts (and a pipeline there
        with no rows gets an empty overview); ``None`` covers every pipeline in
        the ledger.  This default reads :meth:`history` per pipeline; a
        backend overrides it with set-wide queries.  Works on a read-only ledger.
        """
        names = (
            list(pipelines)
            if pipelines is not None
            else sorted({r.pipeline for r in self.history(limit=None)})
        )
        out: dict[str, PipelineOverview] = {}
        for name in names:
            rows = self.history(pipeline=name, limit=None)
            running = tuple(sorted((r for r in rows if r.status == "running"), key=_started))
            waiting = tuple(sorted((r for r in rows if r.status == "waiting"), key=_started))
            finished = [r for r in rows if r.status not in ("running", "waiting", "skipped")]
            streak = 0
            for row in finished:
                if row.status not in FAILED_STATUSES:
                    break
                streak += 1
            out[name] = PipelineOverview(
                name, finished[0] if finished else None, running, waiting, streak
            )
        return out

    # -- shared ledgers: leases of held rows, fencing --

    def renew_leases(self, runs: Collection[tuple[str, datetime]] | None = None) -> int:
        """Push back the lease of the rows this process holds (running runs, messages
        being sent, named leases); return how many rows were renewed.

        ``runs`` limits the run rows renewed to these (pipeline, scheduled time)
        keys: the runs really in flight, so a row whose run ended without
        recording its outcome (the ledger was down too long) expires and is
        taken over instead of being held for ever.  A runner's heartbeat calls
        this.  SQLite has no expiry (a row's owner is alive while its pid is):
        nothing to renew, 0.
        """
        return 0

    def holds(self, pipeline: str, scheduled_at: datetime, *, run_id: str, attempt: int) -> bool:
        """Whether the run ``run_id`` at ``attempt`` still holds its ``running`` row.

        The fencing check before a run publishes its files: ``False`` once the
        row was abandoned or reclaimed by someone else.  Advisory (the finish
        is the authoritative check), but it keeps a late runner's files from
        replacing a newer run's.
        """
        row = self.get(pipeline, scheduled_at)
        return (
            row is not None
            and row.status == "running"
            and row.run_id == run_id
            and row.attempt == attempt
        )

    # -- lifetime --

    @abstractmethod
    def close(self) -> None:
        """Release every connection, in all threads; further use raises :class:`LedgerError`.

        Closing twice is harmless.
        """

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _started(record: RunRecord) -> datetime:
    assert record.started_at is not None  # a running row always has its start
    return record.started_at
