"""Tests of the ledger's named leases: exclusive, released, taken over from a dead holder."""

from __future__ import annotations


def test_leases_are_exclusive_and_released(tmp_path):
    from datetime import UTC, datetime

    from eil_pipelines.ledger import Ledger

    now = datetime(2026, 11, 28, tzinfo=UTC)
    ledger = Ledger(tmp_path / "l.sqlite3")
    assert ledger.acquire_lease("backfill:daily", holder="backfill 1", now=now) is None
    refused = ledger.acquire_lease("backfill:daily", holder="backfill 2", now=now)
    assert refused is not None and refused.startswith("backfill 1 (pid ")
    assert ledger.acquire_lease("backfill:other", holder="backfill 3", now=now) is None
    assert ledger.release_lease("backfill:daily") is True
    assert ledger.release_lease("backfill:daily") is False
    assert ledger.acquire_lease("backfill:daily", holder="backfill 4", now=now) is None


def test_a_dead_holders_lease_is_taken_over(tmp_path):
    import sqlite3
    import subprocess
    import sys
    from datetime import UTC, datetime

    from eil_pipelines.ledger import Ledger

    now = datetime(2026, 11, 28, tzinfo=UTC)
    path = tmp_path / "l.sqlite3"
    ledger = Ledger(path)
    assert ledger.acquire_lease("backfill:daily", holder="old", now=now) is None
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    con = sqlite3.connect(path)
    con.execute("UPDATE leases SET pid = ?", (int(dead.stdout),))
    con.commit()
    con.close()
    assert ledger.acquire_lease("backfill:daily", holder="new", now=now) is None
