"""Tests of the run ledger's rows: claims across threads and processes, outcomes,
reclaims, skips (one by one and in batches), abandoned runs, history, times."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_helpers import NOW, T0, raw, set_columns

from eil_pipelines.errors import EilError
from eil_pipelines.ledger import (
    STATUSES,
    Ledger,
    LedgerLockedError,
    LedgerStateError,
    NewSkip,
)
from eil_pipelines.ledger import connection as connection_module

# --- claims -------------------------------------------------------------------


def test_claim_inserts_a_running_row_and_a_second_claim_gets_none(ledger: Ledger):
    first = ledger.claim("sales", T0, run_id="r1", now=NOW)
    assert first is not None
    assert (first.pipeline, first.scheduled_at, first.run_id) == ("sales", T0, "r1")
    assert (first.status, first.attempt, first.started_at, first.files) == ("running", 1, NOW, [])
    assert (first.pid, first.host) == (os.getpid(), socket.gethostname())
    assert first.finished_at is None and first.duration_s is None and first.error is None

    assert ledger.claim("sales", T0, run_id="r2", now=NOW) is None
    assert ledger.get("sales", T0).run_id == "r1"
    # Another pipeline, or another time, is a different key.
    assert ledger.claim("ops", T0, run_id="r3", now=NOW) is not None
    assert ledger.claim("sales", T0 + timedelta(days=1), run_id="r4", now=NOW) is not None


def test_claim_of_a_finished_row_gets_none(ledger: Ledger):
    ledger.claim("sales", T0, run_id="r1", now=NOW)
    ledger.finish("sales", T0, status="failed", now=NOW, error="boom")
    assert ledger.claim("sales", T0, run_id="r2", now=NOW) is None


def test_claim_from_eight_threads_at_once_has_exactly_one_winner(ledger: Ledger):
    barrier = threading.Barrier(8)
    results: list[object] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        got = ledger.claim("sales", T0, run_id=f"r{n}", now=NOW)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r is not None]
    assert len(results) == 8
    assert len(winners) == 1
    assert ledger.history() == winners


def test_each_thread_gets_its_own_connection(ledger: Ledger):
    seen = []
    thread = threading.Thread(target=lambda: seen.append(ledger._conn()))
    thread.start()
    thread.join()
    assert seen[0] is not ledger._conn()


RACE = """
import sys
from datetime import datetime, timedelta, timezone
from eil_pipelines.ledger import Ledger

ledger = Ledger(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
t0 = datetime(2026, 11, 27, 6, tzinfo=timezone.utc)
won = []
for i in range(20):
    at = t0 + timedelta(hours=i)
    if ledger.claim("sales", at, run_id=sys.argv[2] + str(i), now=t0):
        won.append(str(i))
print(" ".join(won), flush=True)
"""


def test_claims_racing_from_two_processes_on_a_new_file_win_each_time_once(db: Path):
    # The file doesn't exist yet, so the processes also race to create and migrate it.
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(db), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    for proc in procs:  # release both as close together as we can
        proc.stdin.write("go\n")
        proc.stdin.flush()
    wins = []
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        wins.append(set(out.split()))
    assert wins[0].isdisjoint(wins[1])
    assert wins[0] | wins[1] == {str(i) for i in range(20)}
    with Ledger(db) as ledger:
        rows = ledger.history(limit=None)
    assert len(rows) == 20
    assert {r.run_id for r in rows} == {f"a{i}" for i in wins[0]} | {f"b{i}" for i in wins[1]}


# --- finish ---------------------------------------------------------------------


def test_finish_sets_outcome_and_duration_from_the_injected_clock(ledger: Ledger):
    ledger.claim("sales", T0, run_id="r1", now=NOW)
    done = ledger.finish(
        "sales",
        T0,
        status="succeeded",
        now=NOW + timedelta(seconds=12.5),
        files=["sales/2026-11-27.md", Path("sales/2026-11-27.html")],
    )
    assert done.status == "succeeded"
    assert done.finished_at == NOW + timedelta(seconds=12.5)
    assert done.duration_s == 12.5
    assert done.files == ["sales/2026-11-27.md", "sales/2026-11-27.html"]
    assert done.error is None
    assert ledger.get("sales", T0) == done


def test_finish_records_the_error_text(ledger: Ledger):
    ledger.claim("sales", T0, run_id="r1", now=NOW)
    done = ledger.finish("sales", T0, status="timed_out", now=NOW, error="ran past 15m")
    assert (done.status, done.error, done.duration_s) == ("timed_out", "ran past 15m", 0.0)


def test_finish_of_a_row_that_is_not_running_raises(ledger: Ledger):
    ledger.claim("sales", T0, run_id="r1", now=NOW)
    ledger.finish("sales", T0, status="succeeded", now=NOW)
    with pytest.raises(LedgerStateError) as caught:
        ledger.finish("sales", T0, status="failed", now=NOW, error="late")
    assert str(caught.value) == (
        'cannot finish the run of pipeline "sales" scheduled at 2026-11-27T06:00:00+00:00: '
        "it is succeeded, not running"
    )
    assert isinstance(caught.value, EilError)
    assert ledger.get("sales", T0).status == "succeeded"


def test_finish_of_a_row_never_claimed_raises(ledger: Ledger):
    with pytest.raises(LedgerStateError) as caught:
        ledger.finish("sales", T0, status="succeeded", now=NOW)
    assert str(caught.value) == (
        'cannot finish the run of pipeline "sales" scheduled at 2026-11-27T06:00:00+00:00: '
        "it was never claimed"
    )


def test_finish_with_a_stale_run_id_raises(ledger: Ledger):
    ledger.claim("sales", T0, run_id="r1", now=NOW)
    ledger.finish("sales", T0, status="failed", now=NOW)
    ledger.reclaim("sales", T0, run_id="r2", attempt=2, now=NOW)
    with pytest.raises(LedgerStateError, match="belongs to run r2 \\(attempt 2\\), not r1"):
        ledger.finish("sales", T0, status="succeeded", now=NOW, run_id="r1")
    assert ledger.finish("sales", T0, status="succeeded", now=NOW, run_id="r2").attempt == 2


def test_finish_with_a_stale_attempt_raises_even_with_the_same_run_id(ledger: Ledger):
    # run_id is stable per (pipeline, scheduled time), so it can't tell a late
    # first attempt from the retry that replaced it: the attempt does.
    ledger.claim("sales", T0, run_id="r", now=NOW)
    ledger.mark_abandoned(now=NOW, pids_alive=lambda pid: False)
    ledger.reclaim("sales", T0, run_id="r", attempt=2, now=NOW, allowed_from=("abandoned",))
    with pytest.raises(LedgerStateError) as caught:
        ledger.finish("sales", T0, status="succeeded", now=NOW, run_id="r", attempt=1)
    assert str(caught.value) == (
        'cannot finish the run of pipeline "sales" scheduled at 2026-11-27T06:00:00+00:00: '
        "it now belongs to run r (attempt 2), not r (attempt 1)"
    )
    assert ledger.get("sales", T0).status == "running"
    done = ledger.finish("sales", T0, status="succeeded", now=NOW, run_id="r", attempt=2)
    assert (done.status, done.attempt) == ("succeeded", 2)


def test_without_now_the_ledger_reads_its_own_clock(db: Path):
    times = iter([NOW, NOW + timedelta(seconds=3), NOW + timedelta(seconds=4)])
    with Ledger(db, clock=lambda: next(times)) as ledger:
        assert ledger.claim("sales", T0, run_id="r").started_at == NOW
        done = ledger.finish("sales", T0, status="succeeded")
        assert (done.finished_at, done.duration_s) == (NOW + timedelta(seconds=3), 3.0)
        assert ledger.now() == NOW + timedelta(seconds=4)


def test_finish_rejects_running_waiting_and_unknown_statuses(ledger: Ledger):
    ledger.claim("sales", T0, run_id="r1", now=NOW)
    with pytest.raises(ValueError, match="final status"):
        ledger.finish("sales", T0, status="running", now=NOW)
    with pytest.raises(ValueError, match="final status, not 'waiting'"):
        ledger.finish("sales", T0, status="waiting", now=NOW)
    with pytest.raises(ValueError, match="status must be one of"):
        ledger.finish("sales", T0, status="done", now=NOW)


# --- reclaim ---------------------------------------------------------------------


def test_reclaim_turns_a_failed_row_back_to_running_once(ledger: Ledger):
    ledger.claim("sales", T0, run_id="r1", now=NOW)
    ledger.finish("sales", T0, status="failed", now=NOW, error="boom", files=["x.md"])
    later = NOW + timedelta(minutes=5)
    again = ledger.reclaim("sales", T0, run_id="r2", attempt=2, now=later)
    assert again is not None
    assert (again.status, again.run_id, again.attempt, again.started_at) == (
        "running",
        "r2",
        2,
        later,
    )
    assert (again.finished_at, again.duration_s, again.error, again.files) == (None, None, None, [])
    assert ledger.get("sales", T0) == again
    assert ledger.reclaim("sales", T0, run_id="r3", attempt=2, now=later) is None


def test_reclaim_from_eight_threads_has_exactly_one_winner(ledger: Ledger):
    ledger.claim("sales", T0, run_id="r0", now=NOW)
    ledger.finish("sales", T0, status="timed_out", now=NOW)
    barrier = threading.Barrier(8)
    results = []

    def worker(n: int) -> None:
        barrier.wait()
        results.append(ledger.reclaim("sales", T0, run_id=f"r{n}", attempt=2, now=NOW))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_reclaim_respects_allowed_from(ledger: Ledger):
    assert ledger.reclaim("sales", T0, run_id="r", attempt=2, now=NOW) is None  # no row
    ledger.claim("sales", T0, run_id="r1", now=NOW)
    assert ledger.reclaim("sales", T0, run_id="r2", attempt=2, now=NOW) is None  # running
    ledger.finish("sales", T0, status="succeeded", now=NOW)
    assert ledger.reclaim("sales", T0, run_id="r2", attempt=2, now=NOW) is None  # succeeded
    # backfill --reprocess
    redo = ledger.reclaim("sales", T0, run_id="r2", attempt=1, now=NOW, allowed_from=("succeeded",))
    assert redo.status == "running"
    with pytest.raises(ValueError, match="running"):
        ledger.reclaim("sales", T0, run_id="r3", attempt=3, now=NOW, allowed_from=("running",))
    with pytest.raises(ValueError, match="allowed_from must be one of"):
        ledger.reclaim("sales", T0, run_id="r3", attempt=3, now=NOW, allowed_from=("done",))


# --- skips ---------------------------------------------------------------------


def test_record_skipped_inserts_once_and_blocks_claims(ledger: Ledger):
    skipped = ledger.record_skipped("sales", T0, reason="previous run still running", now=NOW)
    assert (skipped.status, skipped.error, skipped.attempt) == (
        "skipped",
        "previous run still running",
        0,
    )
    assert skipped.finished_at == NOW
    assert ledger.record_skipped("sales", T0, reason="again", now=NOW) is None
    assert ledger.claim("sales", T0, run_id="r1", now=NOW) is None
    # A skip never overwrites a real run.
    ledger.claim("sales", T0 + timedelta(days=1), run_id="r2", now=NOW)
    assert ledger.record_skipped("sales", T0 + timedelta(days=1), reason="x", now=NOW) is None
    assert ledger.get("sales", T0 + timedelta(days=1)).status == "running"


def test_record_skipped_many_inserts_in_order_and_never_replaces_a_row(ledger: Ledger):
    ledger.claim("sales", T0 + timedelta(hours=1), run_id="real", now=NOW)
    skips = [
        NewSkip("sales", T0, "missed"),
        NewSkip("sales", T0 + timedelta(hours=1), "missed"),  # has a running row
        NewSkip("ops", T0, "overlap", run_id="o1"),
        NewSkip("sales", T0, "given twice: the first wins"),
    ]
    inserted = ledger.record_skipped_many(skips, now=NOW)
    assert [(r.pipeline, r.scheduled_at, r.error, r.run_id) for r in inserted] == [
        ("sales", T0, "missed", None),
        ("ops", T0, "overlap", "o1"),
    ]
    assert all((r.status, r.attempt, r.finished_at) == ("skipped", 0, NOW) for r in inserted)
    assert inserted == [ledger.get("sales", T0), ledger.get("ops", T0)]
    assert ledger.get("sales", T0 + timedelta(hours=1)).status == "running"
    # Again: every key has a row now, so nothing is written.
    assert ledger.record_skipped_many(skips, now=NOW) == []
    assert ledger.record_skipped_many([], now=NOW) == []


def test_record_skipped_many_writes_one_transaction_per_batch(ledger: Ledger):
    statements: list[str] = []
    ledger._conn().set_trace_callback(statements.append)
    times = [T0 + timedelta(seconds=5 * n) for n in range(1431)]  # an hour's jump, every 5 s
    inserted = ledger.record_skipped_many(
        (NewSkip("tick", t, "missed while the clock jumped") for t in times),
        now=NOW,
        batch_size=500,
    )
    ledger._conn().set_trace_callback(None)
    assert [r.scheduled_at for r in inserted] == times
    assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ] * 3
    assert len(ledger.history(pipeline="tick", limit=None)) == 1431


def test_record_skipped_many_refuses_a_naive_time_before_writing(ledger: Ledger):
    skips = [NewSkip("sales", T0, "x"), NewSkip("sales", datetime(2026, 11, 27, 7), "x")]
    with pytest.raises(ValueError, match="scheduled_at must be an aware datetime"):
        ledger.record_skipped_many(skips, now=NOW)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        ledger.record_skipped_many(skips[:1], now=NOW, batch_size=0)
    assert ledger.history() == []


def test_a_locked_batch_keeps_the_batches_before_it_and_a_retry_completes(
    db: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_S", 0.05)
    ledger = Ledger(db)
    blocker = sqlite3.connect(db, isolation_level=None)
    begins = []

    def trace(statement: str) -> None:
        # Just before the second batch starts, another process takes the write lock.
        if statement == "BEGIN IMMEDIATE":
            begins.append(statement)
            if len(begins) == 2:
                blocker.execute("BEGIN IMMEDIATE")

    skips = [NewSkip("tick", T0 + timedelta(minutes=n), "missed") for n in range(5)]
    ledger._conn().set_trace_callback(trace)
    with pytest.raises(LedgerLockedError):
        ledger.record_skipped_many(skips, now=NOW, batch_size=2)
    ledger._conn().set_trace_callback(None)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert [r.scheduled_at for r in ledger.history(limit=None)][::-1] == [
        s.scheduled_at for s in skips[:2]
    ]
    rest = ledger.record_skipped_many(skips, now=NOW, batch_size=2)
    assert [r.scheduled_at for r in rest] == [s.scheduled_at for s in skips[2:]]
    assert len(ledger.history(limit=None)) == 5
    ledger.close()


# --- abandoned runs ---------------------------------------------------------------


def test_mark_abandoned_uses_the_injected_liveness_check(ledger: Ledger, db: Path):
    for n, pid in enumerate((101, 202, 303)):
        at = T0 + timedelta(hours=n)
        ledger.claim("sales", at, run_id=f"r{n}", now=NOW)
        set_columns(db, "sales", at, pid=pid)
    ledger.claim("ops", T0, run_id="done", now=NOW)
    ledger.finish("ops", T0, status="succeeded", now=NOW)

    asked = []

    def alive(pid: int) -> bool:
        asked.append(pid)
        return pid == 202

    later = NOW + timedelta(hours=1)
    gone = ledger.mark_abandoned(now=later, pids_alive=alive)
    assert sorted(asked) == [101, 202, 303]  # only running rows are checked
    assert sorted((r.pid, r.status) for r in gone) == [(101, "abandoned"), (303, "abandoned")]
    assert {r.error for r in gone} == {
        "the process running it stopped (pid 101)",
        "the process running it stopped (pid 303)",
    }
    assert all(r.finished_at == later and r.duration_s is None for r in gone)
    assert ledger.get("sales", T0 + timedelta(hours=1)).status == "running"
    assert ledger.mark_abandoned(now=later, pids_alive=alive) == []
    # An abandoned run can be retried.
    assert ledger.reclaim("sales", T0, run_id="retry", attempt=2, now=later) is not None


def test_mark_abandoned_finds_a_process_that_really_died(ledger: Ledger, db: Path):
    # A real process claims a time and exits without finishing it.
    snippet = (
        "import sys; from datetime import datetime, timezone;"
        "from eil_pipelines.ledger import Ledger;"
        "Ledger(sys.argv[1]).claim('sales', datetime(2026, 11, 27, 6, tzinfo=timezone.utc),"
        " run_id='crashed', now=datetime(2026, 11, 27, 6, tzinfo=timezone.utc))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", snippet, str(db)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    dead_pid = ledger.get("sales", T0).pid
    assert dead_pid != os.getpid()
    ledger.claim("sales", T0 + timedelta(days=1), run_id="mine", now=NOW)  # we're alive

    gone = ledger.mark_abandoned(now=NOW)
    assert [(r.run_id, r.status, r.error) for r in gone] == [
        ("crashed", "abandoned", f"the process running it stopped (pid {dead_pid})")
    ]
    assert ledger.get("sales", T0 + timedelta(days=1)).status == "running"


def test_mark_abandoned_default_with_a_dead_pid(ledger: Ledger, db: Path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    ledger.claim("sales", T0, run_id="r1", now=NOW)
    set_columns(db, "sales", T0, pid=child.pid)
    assert [r.pid for r in ledger.mark_abandoned(now=NOW)] == [child.pid]


def test_mark_abandoned_sees_an_earlier_process_with_our_pid(ledger: Ledger, db: Path):
    # In a restarted container the scheduler gets the same pid (often 1) as before.
    ledger.claim("sales", T0, run_id="before-restart", now=NOW)
    set_columns(db, "sales", T0, owner_token="token-of-the-previous-process")
    ledger.claim("sales", T0 + timedelta(days=1), run_id="now", now=NOW)
    gone = ledger.mark_abandoned(now=NOW)
    assert [(r.run_id, r.pid) for r in gone] == [("before-restart", os.getpid())]


def test_mark_abandoned_leaves_other_hosts_alone_unless_told(ledger: Ledger, db: Path):
    ledger.claim("sales", T0, run_id="r1", now=NOW)
    set_columns(db, "sales", T0, host="old-box", pid=999_999_999)
    assert ledger.mark_abandoned(now=NOW) == []
    assert ledger.mark_abandoned(now=NOW, pids_alive=lambda pid: False) == []
    assert ledger.mark_abandoned(now=NOW, host="old-box", pids_alive=lambda pid: True) == []
    gone = ledger.mark_abandoned(now=NOW, host="old-box")
    assert [(r.host, r.status) for r in gone] == [("old-box", "abandoned")]


# --- queries ---------------------------------------------------------------------


def _fill(ledger: Ledger) -> None:
    outcomes = ["succeeded", "failed", "succeeded", "timed_out", "abandoned", "succeeded"]
    for day, status in enumerate(outcomes):
        at = T0 + timedelta(days=day)
        ledger.claim("sales", at, run_id=f"s{day}", now=at)
        ledger.finish("sales", at, status=status, now=at + timedelta(seconds=1))
    ledger.claim("ops", T0 + timedelta(days=2, hours=1), run_id="o1", now=NOW)
    ledger.record_skipped("ops", T0 + timedelta(days=10), reason="catch_up = latest", now=NOW)


def test_history_is_newest_scheduled_first_with_filters_and_limit(ledger: Ledger):
    _fill(ledger)
    everything = ledger.history()
    assert [(r.pipeline, r.scheduled_at) for r in everything] == sorted(
        ((r.pipeline, r.scheduled_at) for r in everything), key=lambda k: k[1], reverse=True
    )
    assert len(everything) == 8
    assert everything[0].status == "skipped"
    assert [r.run_id for r in ledger.history(pipeline="sales")] == [
        "s5",
        "s4",
        "s3",
        "s2",
        "s1",
        "s0",
    ]
    assert [r.status for r in ledger.history(failed_only=True)] == [
        "abandoned",
        "timed_out",
        "failed",
    ]
    assert [r.run_id for r in ledger.history(pipeline="sales", limit=2)] == ["s5", "s4"]
    assert ledger.history(pipeline="ops", failed_only=True) == []
    assert ledger.history(limit=0) == []
    assert len(ledger.history(limit=None)) == 8
    with pytest.raises(ValueError, match="limit"):
        ledger.history(limit=-1)


def test_last_run_get_latest_scheduled_and_succeeded_times(ledger: Ledger):
    assert ledger.last_run("sales") is None
    assert ledger.latest_scheduled("sales") is None
    assert ledger.get("sales", T0) is None
    _fill(ledger)
    assert ledger.last_run("sales").run_id == "s5"
    assert ledger.last_run("ops").status == "skipped"
    assert ledger.latest_scheduled("sales") == T0 + timedelta(days=5)
    assert ledger.latest_scheduled("ops") == T0 + timedelta(days=10)
    # Half-open range: start included, end excluded.
    assert ledger.succeeded_times("sales", T0, T0 + timedelta(days=5)) == {
        T0,
        T0 + timedelta(days=2),
    }
    assert ledger.succeeded_times("sales", T0 + timedelta(seconds=1), T0 + timedelta(days=9)) == {
        T0 + timedelta(days=2),
        T0 + timedelta(days=5),
    }
    assert ledger.succeeded_times("ops", T0, T0 + timedelta(days=30)) == set()


# --- times ---------------------------------------------------------------------


def test_aware_times_round_trip_as_utc(ledger: Ledger, db: Path):
    berlin = ZoneInfo("Europe/Berlin")
    winter = datetime(2026, 11, 27, 7, 0, tzinfo=berlin)  # CET, UTC+1
    summer = datetime(2026, 7, 1, 8, 0, tzinfo=berlin)  # CEST, UTC+2
    ledger.claim("sales", winter, run_id="w", now=winter)
    ledger.claim("sales", summer, run_id="s", now=summer)

    with raw(db) as conn:
        stored = [r[0] for r in conn.execute("SELECT scheduled_at FROM runs ORDER BY id")]
    assert stored == ["2026-11-27T06:00:00+00:00", "2026-07-01T06:00:00+00:00"]

    got = ledger.get("sales", T0)  # the same instant, asked in UTC
    assert got.run_id == "w"
    assert got.scheduled_at == winter
    assert got.scheduled_at.utcoffset() == timedelta(0)
    assert ledger.get("sales", winter).started_at == winter
    # And a claim for the same instant in another zone is the same key.
    assert ledger.claim("sales", T0, run_id="again", now=NOW) is None


def test_fractional_seconds_round_trip_and_sort(ledger: Ledger):
    at = T0 + timedelta(microseconds=500)
    ledger.claim("sales", T0, run_id="whole", now=NOW)
    ledger.claim("sales", at, run_id="fraction", now=NOW)
    assert ledger.get("sales", at).scheduled_at == at
    assert [r.run_id for r in ledger.history()] == ["fraction", "whole"]
    assert ledger.latest_scheduled("sales") == at


def test_naive_datetimes_are_refused(ledger: Ledger):
    with pytest.raises(ValueError, match="scheduled_at must be an aware datetime"):
        ledger.claim("sales", datetime(2026, 11, 27, 6), run_id="r", now=NOW)
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        ledger.claim("sales", T0, run_id="r", now=datetime(2026, 11, 27, 6))
    assert ledger.history() == []


# --- a model of the rules ---------------------------------------------------------

KEYS = [("sales", T0), ("sales", T0 + timedelta(days=1)), ("ops", T0)]
FINAL = [s for s in STATUSES if s not in ("running", "waiting")]

operation = st.one_of(
    st.tuples(st.just("claim"), st.sampled_from(KEYS)),
    st.tuples(st.just("finish"), st.sampled_from(KEYS), st.sampled_from(FINAL)),
    st.tuples(
        st.just("reclaim"),
        st.sampled_from(KEYS),
        st.lists(st.sampled_from(FINAL), unique=True, max_size=3),
    ),
    st.tuples(st.just("skip"), st.sampled_from(KEYS)),
    st.tuples(st.just("abandon"), st.booleans()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, max_size=25))
def test_any_sequence_of_operations_keeps_one_valid_row_per_key(ops):
    model: dict[tuple[str, datetime], str] = {}
    with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "l.sqlite3") as ledger:
        for n, op in enumerate(ops):
            now = NOW + timedelta(seconds=n)
            kind, *args = op
            if kind == "claim":
                key = args[0]
                got = ledger.claim(*key, run_id=f"r{n}", now=now)
                assert (got is not None) == (key not in model)
                model.setdefault(key, "running")
            elif kind == "finish":
                key, status = args
                if model.get(key) == "running":
                    assert ledger.finish(*key, status=status, now=now).status == status
                    model[key] = status
                else:
                    with pytest.raises(LedgerStateError):
                        ledger.finish(*key, status=status, now=now)
            elif kind == "reclaim":
                key, allowed = args
                got = ledger.reclaim(
                    *key, run_id=f"r{n}", attempt=n + 2, now=now, allowed_from=tuple(allowed)
                )
                assert (got is not None) == (model.get(key) in allowed)
                if got is not None:
                    model[key] = "running"
            elif kind == "skip":
                key = args[0]
                got = ledger.record_skipped(*key, reason="overlap", now=now)
                assert (got is not None) == (key not in model)
                model.setdefault(key, "skipped")
            else:
                dead = args[0]
                running = {k for k, s in model.items() if s == "running"}
                gone = ledger.mark_abandoned(now=now, pids_alive=lambda pid, d=dead: not d)
                assert {(r.pipeline, r.scheduled_at) for r in gone} == (running if dead else set())
                for r in gone:
                    model[(r.pipeline, r.scheduled_at)] = "abandoned"

            rows = ledger.history(limit=None)
            assert len({(r.pipeline, r.scheduled_at) for r in rows}) == len(rows)
            assert {(r.pipeline, r.scheduled_at): r.status for r in rows} == model
            assert all(r.status in STATUSES for r in rows)


def test_wait_takes_an_abandoned_row_back_as_its_next_attempt(ledger: Ledger):
    # A process died while its run waited: the next one to fire that time waits
    # again, as attempt 2, instead of finding the key taken and dropping it.
    assert ledger.wait("report", T0, run_id="w1", note="waiting for sales", now=NOW)
    gone = ledger.mark_abandoned(now=NOW, pids_alive=lambda pid: False)
    assert [(r.pipeline, r.status) for r in gone] == [("report", "abandoned")]
    again = ledger.wait("report", T0, run_id="w2", note="waiting for sales", now=NOW)
    assert again is not None
    assert (again.status, again.attempt, again.run_id) == ("waiting", 2, "w2")
    assert (again.error, again.finished_at) == ("waiting for sales", None)
    assert ledger.wait("report", T0, run_id="w3", note="again", now=NOW) is None  # held
    ledger.claim("sales", T0, run_id="s1", now=NOW)
    ledger.finish("sales", T0, status="failed", now=NOW, error="boom")
    # A failed row is its retry's to take, never a wait's.
    assert ledger.wait("sales", T0, run_id="w4", note="x", now=NOW) is None
    assert ledger.get("sales", T0).status == "failed"
