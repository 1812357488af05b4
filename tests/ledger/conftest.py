"""Fixtures of the ledger tests: a ledger file under a temporary reports folder, and
the same contract tests against a real Postgres ledger.

A test that takes ``ledger`` (and not the SQLite file ``db``, nor SQLite's
internals) runs once per backend: ``[sqlite]`` and ``[postgres]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eil_pipelines.ledger import Ledger

#: Tests that look at SQLite's own machinery (its connections, its transactions).
SQLITE_ONLY = {
    "test_each_thread_gets_its_own_connection",
    "test_record_skipped_many_writes_one_transaction_per_batch",
    "test_a_locked_batch_keeps_the_batches_before_it_and_a_retry_completes",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the contract tests that take ``ledger`` on both backends."""
    args = metafunc.definition.function.__code__.co_varnames[
        : metafunc.definition.function.__code__.co_argcount
    ]
    if "ledger" not in args:
        return
    backends = ["sqlite"]
    if "db" not in args and metafunc.definition.originalname not in SQLITE_ONLY:
        backends.append("postgres")
    metafunc.parametrize("ledger", backends, indirect=True)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where the ledger file goes; the folders don't exist yet."""
    return tmp_path / "reports" / ".eil" / "ledger.sqlite3"


@pytest.fixture(scope="session")
def pg_ledger_server() -> Iterator[object]:
    """A real Postgres with the ledger tables and a least-privilege runner role."""
    pytest.importorskip("psycopg", reason="pip install -e '.[postgres]' installs psycopg")
    from pg_ledger import start_ledger_server

    server = start_ledger_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_ledger(pg_ledger_server):
    """An open, empty Postgres ledger (as the runner role), closed after the test."""
    from eil_pipelines.ledger.postgres import PostgresLedger

    pg_ledger_server.wipe()
    with PostgresLedger(pg_ledger_server.url, create=False) as opened:
        yield opened


@pytest.fixture
def ledger(request: pytest.FixtureRequest, tmp_path: Path):
    """An open ledger of the backend the test is parametrized with, closed after the test."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgres":
        yield request.getfixturevalue("pg_ledger")
        return
    with Ledger(request.getfixturevalue("db")) as opened:
        yield opened
