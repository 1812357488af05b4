"""Shared by the ledger tests: fixed times and a raw connection behind the ledger's back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

T0 = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 6, 0, 2, tzinfo=UTC)


@contextmanager
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection for looking behind the ledger's back."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def set_columns(db: Path, pipeline: str, at: datetime, **values: object) -> None:
    """Overwrite columns of one run row, as another process (or a crash) would have left it."""
    sets = ", ".join(f"{k} = ?" for k in values)
    with raw(db) as conn:
        conn.execute(
            f"UPDATE runs SET {sets} WHERE pipeline = ? AND scheduled_at = ?",
            (*values.values(), pipeline, at.isoformat()),
        )
