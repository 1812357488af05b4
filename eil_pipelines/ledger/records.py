"""What the ledger stores and returns, whatever the backend: rows, statuses, errors.

Nothing here knows about SQLite or Postgres.  A backend turns its rows into
these frozen records, and raises these errors, so the code above the ledger
never sees a driver's types or exceptions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eil_pipelines.errors import CouldNotRun, EilError

__all__ = [
    "DELIVERY_STATUSES",
    "FAILED_STATUSES",
    "OPEN_DELIVERY_STATUSES",
    "STATUSES",
    "DeliveryBatch",
    "DeliveryRecord",
    "DeliveryState",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerFullError",
    "LedgerLockedError",
    "LedgerStateError",
    "LedgerUnavailableError",
    "NewDelivery",
    "NewSkip",
    "NodeRecord",
    "RunRecord",
    "RunRequest",
    "check_status",
]

#: Every status a run row can have.
STATUSES = (
    "running",
    "succeeded",
    "failed",
    "skipped",
    "timed_out",
    "abandoned",
    "waiting",
)
#: What ``history(failed_only=True)`` shows: every way a run can go wrong.
FAILED_STATUSES = ("failed", "timed_out", "abandoned")
#: Every status of an outbox row.
DELIVERY_STATUSES = ("pending", "sending", "sent", "failed", "gave_up", "skipped")
#: Outbox rows still to be sent (or being sent): what ``history`` calls undelivered.
OPEN_DELIVERY_STATUSES = ("pending", "sending", "failed")


class LedgerError(EilError):
    """The run ledger could not be read or written."""


class LedgerCorruptError(LedgerError):
    """The ledger file is not a run ledger: not SQLite, damaged, empty, or another program's."""


class LedgerLockedError(LedgerError):
    """Another connection held the ledger's write lock beyond the busy timeout."""


class LedgerFullError(LedgerError, CouldNotRun):
    """The ledger could not be written because the disk is full for this process.

    SQLite says "database or disk is full" (ENOSPC) or "disk I/O error" (a
    write refused by a file-size limit or a quota: EFBIG, EDQUOT).  Nothing
    was written; the same write succeeds once there is room.  A
    :class:`~eil_pipelines.errors.CouldNotRun`: the CLI exits 3.
    """


class LedgerStateError(LedgerError):
    """A run is not in the state the operation needs (finishing a run that isn't running)."""


class LedgerUnavailableError(LedgerError):
    """A shared ledger's database could not be reached (down, network cut, refused login).

    Nothing is known to have been written; the caller keeps what it holds and retries later.
    """


def check_status(status: str, name: str = "status") -> None:
    """Raise ``ValueError`` unless ``status`` is one of :data:`STATUSES`; ``name`` is the argument's."""
    if status not in STATUSES:
        raise ValueError(f"{name} must be one of {', '.join(STATUSES)}; got {status!r}")


@dataclass(frozen=True)
class RunRecord:
    """One row of the ledger: one pipeline at one scheduled time.

    Datetimes are aware (UTC).  ``error`` holds the failure message, or the
    reason for a ``skipped`` row.  ``duration_s`` is ``None`` while running,
    for skipped rows and for abandoned rows (their real end is unknown).
    """

    id: int
    """The backend's row id; stable for the life of the row, meaningless across ledgers."""
    pipeline: str
    """The pipeline's name."""
    scheduled_at: datetime
    """The fire time this row is for; with ``pipeline``, the row's unique key."""
    run_id: str | None
    """The id of the run that claimed the row (stable per pipeline and scheduled time)."""
    status: str
    """One of :data:`STATUSES`."""
    attempt: int
    """1 for the first try, 2, 3 … for retries and reclaims; 0 for a skipped row."""
    started_at: datetime | None
    """When the current attempt was claimed."""
    finished_at: datetime | None
    """When the outcome was recorded (for a skip: when the skip was decided)."""
    duration_s: float | None
    """``finished_at - started_at`` in seconds, never negative."""
    error: str | None
    """Redacted failure text, or why the time was skipped or abandoned."""
    files: list[str]
    """The files the run wrote, as given to ``finish``."""
    pid: int | None
    """The process that claimed the row."""
    host: str | None
    """The machine that claimed the row."""
    owner_token: str | None
    """A random token naming the claiming process incarnation (pids are reused)."""
    summary: dict[str, Any] | None = None
    """Headline figures of a finished run (``{"metrics": [{"label", "text", "change_text"}]}``)."""


@dataclass(frozen=True)
class NodeRecord:
    """One runner's heartbeat, as the ledger last heard it."""

    node: str
    """The runner's name (``--node``; default ``host-pid``)."""
    host: str
    """The machine's host name."""
    pid: int
    """The runner's process id on that host."""
    version: str
    """The eil-pipelines version the runner runs."""
    started_at: datetime
    """When the runner started (UTC)."""
    last_beat: datetime
    """When it last beat (UTC, the ledger's clock)."""
    running: int
    """How many runs it held at its last beat."""
    last_error: str | None
    """Its last ledger or scheduler error, redacted; None when all is well."""
    stopped: bool
    """True when it said goodbye (clean shutdown)."""


@dataclass(frozen=True)
class RunRequest:
    """A "run now" asked for by the status page, waiting for a scheduler to take it."""

    id: int
    pipeline: str
    requested_at: datetime
    requested_by: str
    """Who asked: "serve 127.0.0.1" or the token's label; never a secret."""
    params: Mapping[str, str] = field(default_factory=dict)
    """``[params]`` values for this run only (name → the text as typed, like
    ``--param``), checked against the pipeline file when the run starts."""


@dataclass(frozen=True)
class NewSkip:
    """A scheduled time deliberately not run, for :meth:`LedgerBackend.record_skipped_many`."""

    pipeline: str
    """The pipeline's name."""
    scheduled_at: datetime
    """The fire time that is not run (aware)."""
    reason: str
    """Why, in words, for ``history`` (``missed while the scheduler was not running``)."""
    run_id: str | None = None
    """The run id the time would have had, when the caller knows it."""


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


class DeliveryBatch(ABC):
    """Queueing a run's messages and moving its pipeline's delivery state, in one
    write transaction (from :meth:`LedgerBackend.delivery_batch`): the decision
    "the alert starts, tell ops" and the message that says so are stored
    together or not at all.

    A batch is valid only inside its ``with`` block, and only in the thread
    that opened it.  A backend with row locks (Postgres) must lock the
    pipeline's ``delivery_state`` row on the first :meth:`state` read
    (``SELECT … FOR UPDATE``, creating the row when missing), so two runners
    deciding about the same pipeline serialise, as they do on SQLite's single
    write lock.
    """

    @abstractmethod
    def state(self, pipeline: str) -> DeliveryState:
        """The pipeline's delivery state (all clear when it has none yet)."""

    @abstractmethod
    def set_state(self, state: DeliveryState) -> None:
        """Store ``state`` as the pipeline's delivery state (insert or replace)."""

    @abstractmethod
    def last_content_hash(self, pipeline: str, kind: str, target: str) -> str | None:
        """The report hash of the newest message to ``target`` that was sent or is
        still on its way (for ``when = "changed"``); ``None`` when there is none.

        "Newest" is by scheduled time, then by insertion order; ``gave_up``
        and ``skipped`` rows don't count.
        """

    @abstractmethod
    def add(self, pipeline: str, scheduled_at: datetime, message: NewDelivery) -> bool:
        """Queue ``message`` for the run of ``pipeline`` at ``scheduled_at``.

        Returns False when a message with the same idempotency key (pipeline,
        scheduled time, kind, target) is already in the outbox: it is never
        queued, so never sent, twice.  A ``pending`` message is due at once
        (the batch's ``now``); a ``skipped`` or ``gave_up`` one is stored
        without its payload, to be seen in ``history``.  Raises
        ``ValueError`` for any other status.
        """
