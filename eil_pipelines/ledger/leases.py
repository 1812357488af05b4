"""The SQLite backend's named leases: "one backfill of pipeline X at a time".

A lease is held by a process and released by it, or found dead (its
process is gone) and taken over.  The contracts are
:class:`~eil_pipelines.ledger.base.LedgerBackend`'s.
"""

from __future__ import annotations

import os
from datetime import datetime

from .connection import SqliteConnections
from .process import default_alive, process_token

__all__ = ["SqliteLeases"]


class SqliteLeases(SqliteConnections):
    """Named leases in the SQLite ledger (see :class:`~eil_pipelines.ledger.base.LedgerBackend`)."""

    def acquire_lease(self, name: str, *, holder: str, now: datetime | None = None) -> str | None:
        """Take the exclusive lease ``name`` for this process.

        Returns None when it was taken, else a description of the live holder
        (``"backfill … (pid 123 on host)"``) for the refusal message.  A lease
        whose process is gone is taken over; one held on another machine is
        taken as alive, since its process can't be checked from here.
        """
        stamp = self._stamp(now)
        with self._write() as conn:
            row = conn.execute(
                "SELECT holder, pid, host, owner_token FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is not None:
                other, pid, host, token = row
                alive = host != self._host or pid is None or default_alive(pid, token)
                if alive:
                    return f"{other} (pid {pid} on {host})"
                conn.execute("DELETE FROM leases WHERE name = ?", (name,))
            conn.execute(
                "INSERT INTO leases (name, holder, pid, host, owner_token, acquired_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (name, holder, os.getpid(), self._host, process_token(), stamp),
            )
        return None

    def release_lease(self, name: str) -> bool:
        """Give back a lease this process holds; False when it held none."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM leases WHERE name = ? AND pid = ? AND host = ? AND owner_token = ?",
                (name, os.getpid(), self._host, process_token()),
            )
            return cursor.rowcount == 1
