"""The query guard: a run's queries stop through a token passed to the source, on real engines."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from eil_pipelines.errors import SourceError
from eil_pipelines.sources import DuckDBSource, SQLiteSource
from eil_pipelines.sources.guard import QueryGuard

SLOW_DUCKDB = "SELECT count(*) AS n FROM range(100000000000)"  # minutes, unless interrupted
SLOW_SQLITE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
)


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


@pytest.fixture(params=["duckdb", "sqlite"])
def slow(request, tmp_path):
    if request.param == "duckdb":
        source = DuckDBSource("p", tmp_path, None)
        yield source, SLOW_DUCKDB
    else:
        db = tmp_path / "x.sqlite"
        sqlite3.connect(db).close()
        source = SQLiteSource("p", db)
        yield source, SLOW_SQLITE
    source.close()


def test_a_stopped_guard_starts_no_query(slow):
    source, _ = slow
    guard = QueryGuard("p")
    assert guard.stop("timeout") is True
    assert guard.stop("shutdown") is False  # the first reason stands
    with pytest.raises(SourceError) as caught:
        source.run("q", "SELECT 1 AS x", {}, guard=guard)
    assert (
        str(caught.value) == 'pipeline "p", query "q": not started: the run was stopped (timeout)'
    )
    guard.finish()


def test_stop_interrupts_the_query_that_is_executing(slow):
    source, sql = slow
    guard = QueryGuard("p")
    failure: list[BaseException] = []

    def run() -> None:
        try:
            source.run("q", sql, {}, guard=guard)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert wait_for(lambda: guard.active)
    assert guard.stop("timeout")
    thread.join(60)  # minutes without the interrupt
    guard.finish()
    assert not thread.is_alive()
    assert not guard.active
    assert [str(e) for e in failure] == ['pipeline "p", query "q": the query was interrupted']


def test_without_a_guard_a_query_runs_as_before(slow):
    source, _ = slow
    assert source.run("q", "SELECT 1 AS x", {})["x"].tolist() == [1]
    guard = QueryGuard("p")
    assert source.run("q", "SELECT 2 AS x", {}, guard=guard)["x"].tolist() == [2]
    assert not guard.active
