"""Fixtures of the several-runners tests: a real Postgres holding the ledger, and a
project whose runners are real ``eil-run`` processes (see ``multi_helpers``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledger"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sources"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deliver"))


@pytest.fixture(scope="session")
def ledger_server() -> Iterator[object]:
    """Postgres with the ledger tables and a least-privilege runner role."""
    pytest.importorskip("psycopg", reason="pip install -e '.[postgres]' installs psycopg")
    from pg_ledger import start_ledger_server

    server = start_ledger_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster(ledger_server, tmp_path: Path):
    """A project on the shared ledger (wiped); its runners are killed after the test."""
    from multi_helpers import Cluster

    ledger_server.wipe()
    made = Cluster(tmp_path, ledger_server)
    try:
        yield made
    finally:
        made.kill_all()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[object]:
    """A real S3-compatible server (moto_server) on 127.0.0.1, stopped after the session."""
    from s3_server import start_s3_server

    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The S3 server, its credentials in this process's environment (boto3 reads them there)."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server
