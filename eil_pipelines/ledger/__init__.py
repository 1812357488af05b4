"""The run ledger: one row per (pipeline, scheduled time), plus the delivery outbox and leases.

The ledger is what makes a scheduled time run at most once, across threads,
processes and restarts: a worker first *claims* the time (an atomic insert of a
``running`` row), runs the pipeline, then *finishes* the row with its outcome.
Retries and ``--reprocess`` backfills *reclaim* a finished row; runs whose
process died are found by ``mark_abandoned`` and can be reclaimed.

The package, along its seams:

``records``
    What every backend stores and returns: :class:`RunRecord`,
    :class:`DeliveryRecord`, :class:`NewDelivery`, :class:`NewSkip`,
    :class:`DeliveryState`, the :class:`DeliveryBatch` interface, the statuses
    and the errors (:class:`LedgerError` and its kinds).
``base``
    :class:`LedgerBackend`, the one storage interface, with the contract of
    every operation (exactly-once claims, reclaims, fencing, "now").
``sqlite``
    :class:`SqliteLedger` (``Ledger``), the SQLite backend, assembled from
    ``connection`` (the file, WAL, the write lock, read-only opening, error
    translation), ``runs``, ``outbox``, ``leases`` and ``nodes`` (heartbeats,
    run requests, the status overview); ``schema`` holds its
    tables and migrations, ``process`` the process identity and liveness.
``postgres``
    :class:`~eil_pipelines.ledger.postgres.PostgresLedger`, the ledger shared
    by several runners (leases on the database's clock, fencing by attempt);
    ``postgres_schema`` holds its tables and the least privileges.
``factory``
    :func:`open_ledger`: a path or a URL to a backend.
"""

from .base import DEFAULT_RECLAIMABLE, SKIP_BATCH_SIZE, LedgerBackend
from .connection import BUSY_TIMEOUT_S
from .factory import open_ledger
from .overview import PipelineOverview
from .records import (
    DELIVERY_STATUSES,
    FAILED_STATUSES,
    OPEN_DELIVERY_STATUSES,
    STATUSES,
    DeliveryBatch,
    DeliveryRecord,
    DeliveryState,
    LedgerCorruptError,
    LedgerError,
    LedgerFullError,
    LedgerLockedError,
    LedgerStateError,
    LedgerUnavailableError,
    NewDelivery,
    NewSkip,
    NodeRecord,
    RunRecord,
    RunRequest,
)
from .schema import MIGRATIONS, SCHEMA_VERSION, migrate
from .sqlite import Ledger, SqliteLedger

__all__ = [
    "BUSY_TIMEOUT_S",
    "DEFAULT_RECLAIMABLE",
    "DELIVERY_STATUSES",
    "FAILED_STATUSES",
    "MIGRATIONS",
    "OPEN_DELIVERY_STATUSES",
    "SCHEMA_VERSION",
    "SKIP_BATCH_SIZE",
    "STATUSES",
    "DeliveryBatch",
    "DeliveryRecord",
    "DeliveryState",
    "Ledger",
    "LedgerBackend",
    "LedgerCorruptError",
    "LedgerError",
    "LedgerFullError",
    "LedgerLockedError",
    "LedgerStateError",
    "LedgerUnavailableError",
    "NewDelivery",
    "NewSkip",
    "NodeRecord",
    "PipelineOverview",
    "RunRecord",
    "RunRequest",
    "SqliteLedger",
    "migrate",
    "open_ledger",
]
