"""The SQLite backend of the run ledger: :class:`SqliteLedger` (also known as ``Ledger``).

One file, ``reports/.eil/ledger.sqlite3`` by default, shared safely by the
threads and processes of one machine.  The class is assembled from its
parts: the file and its connections (:mod:`.connection`), run rows
(:mod:`.runs`), the delivery outbox (:mod:`.outbox`), named leases
(:mod:`.leases`), and runners' heartbeats and run requests (:mod:`.nodes`);
the schema is in :mod:`.schema`, the contracts in
:class:`~eil_pipelines.ledger.base.LedgerBackend`.
"""

from __future__ import annotations

from .base import LedgerBackend
from .leases import SqliteLeases
from .nodes import SqliteNodes
from .outbox import SqliteOutbox
from .runs import SqliteRuns

__all__ = ["Ledger", "SqliteLedger"]


class SqliteLedger(SqliteRuns, SqliteOutbox, SqliteLeases, SqliteNodes, LedgerBackend):
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


#: The name the rest of eil-pipelines knows the SQLite ledger by.
Ledger = SqliteLedger
