"""The SQLite backend of the run ledger: :class:`SqliteLedger` (also known as ``Ledger``).

One file, ``reports/.eil/ledger.sqlite3`` by default, shared safely by the
threads and processes of one machine.  The class is assembled from its
parts: the file and its connections (:mod:`.connection`), run rows
(:mod:`.runs`), the delivery outbox (:mod:`.outbox`) and named leases
(:mod:`.leases`); the schema is in :mod:`.schema`, the contracts in
:class:`~eil_pipelines.ledger.base.LedgerBackend`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from .base import LedgerBackend
from .leases import SqliteLeases
from .outbox import SqliteOutbox
from .records import LedgerError, NodeRecord, RunRequest
from .runs import SqliteRuns

__all__ = ["Ledger", "SqliteLedger"]


class SqliteLedger(SqliteRuns, SqliteOutbox, SqliteLeases, LedgerBackend):
    """The run ledger stored in the SQLite file at ``path``.

    Parent folders are created.  The file is opened (and created or migrated)
    at once, so a corrupt, empty, foreign or unreadable ledger is reported at
    start-up rather than at the first run.  ``display_path`` is how messages
    name the file (default: ``path`` as given).  ``read_only=True`` opens an
    existing file without ever writing it (for ``history`` on a folder this
    process may not write); writes then raise :class:`LedgerError`.
    ``clock`` is what ``now=None`` reads (default: this machine's clock).
    Safe to use from many threads: each thread lazily gets its own
    connection.  Use as a context manager, or call :meth:`close`.
    """

    # Heartbeats and run requests are stored by the status page's branch (its
    # schema step); until it is merged the SQLite ledger refuses them clearly.

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
        """Heartbeats are not stored in the SQLite ledger yet (a no-op)."""

    def nodes(self) -> list[NodeRecord]:
        """Heartbeats are not stored in the SQLite ledger yet: no runner is known."""
        return []

    def request_run(self, pipeline: str, *, requested_by: str) -> int:
        """Run requests are not stored in the SQLite ledger yet: :class:`LedgerError`."""
        raise LedgerError(f"run ledger {self.display_path} does not take run requests yet")

    def take_run_requests(self, node: str, pipelines: Collection[str]) -> list[RunRequest]:
        """Run requests are not stored in the SQLite ledger yet: none to take."""
        return []


#: The name the rest of eil-pipelines knows the SQLite ledger by.
Ledger = SqliteLedger
