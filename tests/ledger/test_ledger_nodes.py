"""Tests of the ledger's heartbeats, "run now" requests and status overview (schema 5)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eil_pipelines.ledger import Ledger, LedgerBackend, PipelineOverview

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self, now: datetime = T0):
        self.moment = now

    def __call__(self) -> datetime:
        return self.moment


def _beat(ledger: Ledger, node: str, **extra) -> None:
    fields = {
        "host": "h1",
        "pid": 42,
        "version": "1.2.3",
        "started_at": T0,
        "running": 0,
        "last_error": None,
    }
    fields.update(extra)
    ledger.beat(node, **fields)


def test_beats_replace_the_runners_row_and_take_the_ledgers_clock(tmp_path: Path) -> None:
    clock = Clock()
    with Ledger(tmp_path / "l.sqlite3", clock=clock) as ledger:
        assert ledger.nodes() == []
        _beat(ledger, "a", running=2)
        clock.moment = T0 + timedelta(seconds=5)
        _beat(ledger, "b")
        clock.moment = T0 + timedelta(seconds=9)
        _beat(ledger, "a", running=1, last_error="boom")
        nodes = ledger.nodes()
    assert [n.node for n in nodes] == ["a", "b"]  # newest beat first
    a = nodes[0]
    assert (a.last_beat, a.running, a.last_error, a.stopped) == (
        T0 + timedelta(seconds=9),
        1,
        "boom",
        False,
    )
    assert (a.host, a.pid, a.version, a.started_at) == ("h1", 42, "1.2.3", T0)


def test_a_goodbye_is_kept_and_read_by_a_read_only_ledger(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with Ledger(path, clock=Clock()) as ledger:
        _beat(ledger, "a", stopped=True)
    with Ledger(path, read_only=True) as reader:
        (node,) = reader.nodes()
    assert node.stopped is True


def test_run_requests_are_taken_once_and_only_for_the_runners_pipelines(tmp_path: Path) -> None:
    clock = Clock()
    with Ledger(tmp_path / "l.sqlite3", clock=clock) as ledger:
        first = ledger.request_run("daily", requested_by="serve 127.0.0.1")
        second = ledger.request_run("weekly", requested_by="serve 127.0.0.1")
        assert second > first
        assert [r.pipeline for r in ledger.open_run_requests()] == ["daily", "weekly"]
        assert ledger.take_run_requests("n1", []) == []
        taken = ledger.take_run_requests("n1", ["daily", "other"])
        assert [(r.id, r.pipeline, r.requested_at, r.requested_by) for r in taken] == [
            (first, "daily", T0, "serve 127.0.0.1")
        ]
        assert ledger.take_run_requests("n2", ["daily"]) == []
        assert [r.pipeline for r in ledger.open_run_requests()] == ["weekly"]


def test_concurrent_takers_never_share_a_request(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as ledger:
        for _ in range(40):
            ledger.request_run("daily", requested_by="test")
    taken: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def take(node: str) -> None:
        with Ledger(path) as mine:
            start.wait()
            ids: list[int] = []
            for _ in range(20):
                ids.extend(r.id for r in mine.take_run_requests(node, ["daily"]))
            taken[node] = ids

    threads = [threading.Thread(target=take, args=(f"n{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for ids in taken.values() for i in ids]
    assert sorted(every) == sorted(set(every))
    assert len(every) == 40


def _finish(ledger: Ledger, name: str, at: datetime, status: str) -> None:
    ledger.claim(name, at, run_id=f"{name}-{at.isoformat()}", now=at)
    ledger.finish(name, at, status=status, now=at + timedelta(seconds=3), error=status)


def _fill(ledger: Ledger) -> None:
    hour = timedelta(hours=1)
    _finish(ledger, "a", T0, "failed")
    _finish(ledger, "a", T0 + hour, "succeeded")
    _finish(ledger, "a", T0 + 2 * hour, "failed")
    ledger.record_skipped("a", T0 + 3 * hour, reason="overlap", now=T0)
    _finish(ledger, "a", T0 + 4 * hour, "timed_out")
    ledger.claim("a", T0 + 5 * hour, run_id="a-run", now=T0 + 5 * hour)
    _finish(ledger, "b", T0, "succeeded")
    ledger.record_skipped("c", T0, reason="missed", now=T0)


def test_the_overview_gives_the_last_finished_run_the_running_ones_and_the_streak(
    tmp_path: Path,
) -> None:
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        _fill(ledger)
        seen = ledger.overview(["a", "b", "c", "never"])
        everyone = ledger.overview()
    a = seen["a"]
    assert a.last is not None and a.last.status == "timed_out"
    assert a.last.scheduled_at == T0 + timedelta(hours=4)
    assert [r.scheduled_at for r in a.running] == [T0 + timedelta(hours=5)]
    assert a.failures_in_a_row == 2  # skipped times neither count nor break the streak
    assert seen["b"].last is not None and seen["b"].failures_in_a_row == 0
    assert seen["c"] == PipelineOverview("c")
    assert seen["never"] == PipelineOverview("never")
    assert sorted(everyone) == ["a", "b", "c"]


def test_the_sqlite_overview_agrees_with_the_interfaces_default(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        _fill(ledger)
        fast = ledger.overview(["a", "b", "c", "never"])
        slow = LedgerBackend.overview(ledger, ["a", "b", "c", "never"])
    assert fast == slow


def test_every_backends_overview_agrees_with_the_interfaces_default(ledger) -> None:
    _fill(ledger)
    ledger.record_skipped("b", T0 + timedelta(hours=1), reason="overlap", now=T0)
    ledger.request_run("b", requested_by="test")
    names = ["a", "b", "c", "never"]
    fast = ledger.overview(names)
    assert fast == LedgerBackend.overview(ledger, names)
    assert fast["a"].failures_in_a_row == 2 and len(fast["a"].running) == 1
    assert sorted(ledger.overview()) == ["a", "b", "c"]
    assert [r.pipeline for r in ledger.open_run_requests()] == ["b"]


def test_a_read_only_overview_follows_every_write_and_keeps_unchanged_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as writer:
        _fill(writer)
        with Ledger(path, read_only=True) as reader:
            first = reader.overview(["a", "b"])
            _finish(writer, "a", T0 + 5 * timedelta(hours=1), "succeeded")
            _beat(writer, "n1")  # a write elsewhere in the file changes nothing shown
            second = reader.overview(["a", "b"])
            third = reader.overview(["a", "b"])
    assert first["a"].last is not None and first["a"].last.status == "timed_out"
    assert second["a"].last is not None and second["a"].last.status == "succeeded"
    assert second["a"].running == () and second["a"].failures_in_a_row == 0
    # b's newest finished row did not change: its record is the one read before.
    assert second["b"].last is first["b"].last
    assert third == second


def test_a_read_only_overview_sees_a_retry_that_started_and_ended_between_two_reads(
    tmp_path: Path,
) -> None:
    # The row is neither new nor running at either read: only its version says it moved.
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as writer:
        _fill(writer)
        at = T0 + 4 * timedelta(hours=1)
        with Ledger(path, read_only=True) as reader:
            first = reader.overview(["a", "b"])
            writer.reclaim("a", at, run_id="a-retry", attempt=2, now=at)
            writer.finish("a", at, status="succeeded", now=at + timedelta(minutes=1))
            second = reader.overview(["a", "b"])
    assert first["a"].last is not None and first["a"].last.status == "timed_out"
    assert second["a"].last is not None
    assert (second["a"].last.status, second["a"].last.attempt) == ("succeeded", 2)
    assert second["a"].failures_in_a_row == 0
    assert second["b"].last is first["b"].last  # b was not read again


def test_schema_7_counts_each_pipelines_writes_and_a_version_6_file_gains_it(
    tmp_path: Path,
) -> None:
    import sqlite3

    from eil_pipelines.ledger.schema import MIGRATIONS

    path = tmp_path / "l.sqlite3"
    with sqlite3.connect(path) as conn:
        for step in MIGRATIONS[:6]:
            step(conn)
        conn.execute("PRAGMA user_version = 6")
        conn.execute(
            "INSERT INTO runs (pipeline, scheduled_at, status, attempt)"
            " VALUES ('old', '2026-12-01T06:00:00+00:00', 'succeeded', 1)"
        )
    conn.close()

    def versions() -> dict[str, int]:
        with sqlite3.connect(path) as conn:
            return dict(conn.execute("SELECT pipeline, version FROM runs_versions"))

    with Ledger(path) as ledger:
        assert ledger.schema_version() == 7
        assert versions() == {"old": 1}
        ledger.claim("new", T0, run_id="n", now=T0)
        assert versions() == {"old": 1, "new": 1}
        ledger.finish("new", T0, status="failed", now=T0, error="x")
        _beat(ledger, "n1")  # not a runs write
        assert versions() == {"old": 1, "new": 2}
        assert ledger.overview(["old"])["old"].last is not None


def test_a_run_request_carries_its_params(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite3", clock=Clock()) as ledger:
        ledger.request_run("daily", requested_by="serve token", params={"top_n": "5"})
        ledger.request_run("daily", requested_by="serve token")
        assert [r.params for r in ledger.open_run_requests()] == [{"top_n": "5"}, {}]
        taken = ledger.take_run_requests("n1", ["daily"])
        assert [r.params for r in taken] == [{"top_n": "5"}, {}]


def test_a_version_5_ledger_gains_request_params_and_keeps_its_requests(tmp_path: Path) -> None:
    import sqlite3

    from eil_pipelines.ledger.schema import MIGRATIONS

    path = tmp_path / "l.sqlite3"
    with sqlite3.connect(path) as conn:
        for step in MIGRATIONS[:5]:
            step(conn)
        conn.execute("PRAGMA user_version = 5")
        conn.execute(
            "INSERT INTO run_requests (pipeline, requested_at, requested_by)"
            " VALUES ('daily', '2026-12-07T06:00:00+00:00', 'serve 127.0.0.1')"
        )
    conn.close()
    with Ledger(path, clock=Clock()) as ledger:
        assert ledger.schema_version() == 7
        (old,) = ledger.take_run_requests("n1", ["daily"])
        assert (old.pipeline, old.requested_by, old.params) == ("daily", "serve 127.0.0.1", {})
