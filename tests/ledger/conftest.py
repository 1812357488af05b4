"""Fixtures of the ledger tests: a ledger file under a temporary reports folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from eil_pipelines.ledger import Ledger


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where the ledger file goes; the folders don't exist yet."""
    return tmp_path / "reports" / ".eil" / "ledger.sqlite3"


@pytest.fixture
def ledger(db: Path):
    """An open SQLite ledger at ``db``, closed after the test."""
    with Ledger(db) as opened:
        yield opened
