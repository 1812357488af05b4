"""Several ``eil-run`` runners (real processes) on one Postgres ledger: each
(pipeline, scheduled time) exactly once, fail-over after ``kill -9``, fencing of a
runner that comes back late, a Postgres outage, and clock skew.

Skipped without PostgreSQL (and failed under ``CI``), like the source tests.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from multi_helpers import LEASE_S, Cluster, pipeline_text, run_three_until_each_ran, wait_for

pytestmark = pytest.mark.slow

EVERIES = [2, 3, 4, 5]


def _check_exactly_once(cluster: Cluster, every_of: dict[str, int]) -> dict[str, list]:
    """0 duplicate keys, 0 missing keys, every report file present once; returns rows
    by pipeline."""
    rows = cluster.rows()
    keys = Counter((r.pipeline, r.scheduled_at) for r in rows)
    assert [k for k, n in keys.items() if n > 1] == []
    by_pipeline: dict[str, list] = defaultdict(list)
    for row in rows:
        by_pipeline[row.pipeline].append(row)
    for name, every in every_of.items():
        mine = sorted(by_pipeline[name], key=lambda r: r.scheduled_at)
        assert mine, f"{name} never ran"
        times = [r.scheduled_at for r in mine]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # No fire time between the first and the last is missing.
        assert set(gaps) <= {timedelta(seconds=every)}, (name, gaps)
        assert {r.status for r in mine} <= {"succeeded", "skipped"}, [
            (r.status, r.error) for r in mine
        ]
        succeeded = [r for r in mine if r.status == "succeeded"]
        folder = cluster.reports / name
        documents = sorted(
            p.name for p in folder.glob("*.md") if not p.name.startswith(("latest", "."))
        )
        # One document per succeeded run: none twice, none missing.
        assert len(documents) == len(succeeded), (name, documents, len(succeeded))
        for row in succeeded:
            assert all(Path(f).exists() for f in row.files), row
        assert not [p for p in folder.rglob("*.tmp")], "a staging file was left behind"
    return by_pipeline


def test_three_runners_run_every_time_exactly_once(cluster: Cluster):
    every_of = {f"p{n:02d}": EVERIES[n % len(EVERIES)] for n in range(30)}
    for name, every in every_of.items():
        cluster.pipeline(name, pipeline_text(f"{every}s"))
    runners = run_three_until_each_ran(cluster, 30, timeout=240)
    rows = _check_exactly_once(cluster, every_of)
    # The work spread: every runner ran some of it.
    hosts = Counter(r.pid for pipeline_rows in rows.values() for r in pipeline_rows)
    pids = {runner.process.pid for runner in runners}
    assert pids <= set(hosts), (pids, hosts)


SLOW = "SELECT 1 AS x FROM (SELECT pg_sleep(6)) AS s"


def _slow_row(cluster: Cluster, *, attempt: int = 1, status: str = "running"):
    for row in cluster.rows():
        if row.pipeline == "slow" and row.attempt == attempt and row.status == status:
            return row
    return None


def test_kill_9_of_the_runner_holding_a_slow_report_fails_over_as_attempt_2(cluster: Cluster):
    cluster.pipeline(
        "slow", pipeline_text("1h", sql=SLOW, source="pg").replace('every = "1h"', 'every = "30s"')
    )
    # Both run before the slow report is claimed: the kill comes while it is in flight.
    runners = [cluster.start("a"), cluster.start("b")]
    held = wait_for(lambda: _slow_row(cluster), "the slow report claimed", timeout=120)
    first = next(r for r in runners if r.process.pid == held.pid)
    second = next(r for r in runners if r is not first)
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait(30)
    killed = time.monotonic()
    taken = wait_for(
        lambda: next(
            (
                r
                for r in cluster.rows()
                if r.pipeline == "slow" and r.scheduled_at == held.scheduled_at and r.attempt == 2
            ),
            None,
        ),
        "the other runner taking the run over",
    )
    took = time.monotonic() - killed
    assert taken.pid == second.process.pid
    # Within the lease and one heartbeat, plus the time this loaded machine takes to notice.
    assert took <= LEASE_S + LEASE_S / 3 + 15, took
    done = wait_for(
        lambda: (
            (r := cluster.ledger_get("slow", held.scheduled_at)) and r.status != "running" and r
        ),
        "the rerun finishing",
    )
    assert (done.status, done.attempt) == ("succeeded", 2)
    manifest = json.loads(next((cluster.reports / "slow").glob("*.json")).read_text())
    assert manifest["attempt"] == 2
    assert "taking over: slow" in second.text()
    assert cluster.stop(second) == 0
    assert not list((cluster.reports / "slow").rglob("*.tmp"))


def test_a_runner_paused_past_its_lease_cannot_finish_or_publish_late(cluster: Cluster):
    cluster.pipeline("slow", pipeline_text("30s", sql=SLOW, source="pg"))
    late = cluster.start("late")
    held = wait_for(lambda: _slow_row(cluster), "the slow report claimed", timeout=120)
    os.killpg(late.process.pid, signal.SIGSTOP)
    try:
        other = cluster.start("other")
        done = wait_for(
            lambda: (
                (r := cluster.ledger_get("slow", held.scheduled_at))
                and r.attempt == 2
                and r.status == "succeeded"
                and r
            ),
            "the other runner rerunning and finishing the run",
        )
        assert done.pid == other.process.pid
        # The newer run's own files (by its stamp; the index and latest.* move on with
        # later fire times).
        newer = {f: Path(f).read_bytes() for f in done.files if "latest" not in f}
    finally:
        os.killpg(late.process.pid, signal.SIGCONT)
    wait_for(
        lambda: "not published" in late.text() or "not recorded: slow" in late.text(),
        "the late runner being refused",
    )
    row = cluster.ledger_get("slow", held.scheduled_at)
    assert (row.status, row.attempt, row.pid) == ("succeeded", 2, other.process.pid)
    assert newer and {f: Path(f).read_bytes() for f in newer} == newer  # the newer report stays
    # Refused by the fence before its files went into place, or (when its query broke
    # while it was paused) failed before it had files: either way its finish is refused.
    text = late.text()
    assert "its files were not published" in text or (
        "not recorded: slow" in text and "it is succeeded, not running" in text
    ), text[-3000:]
    assert cluster.stop(late) == 0 and cluster.stop(other) == 0


def test_postgres_down_then_back_no_duplicates_and_catch_up(cluster: Cluster):
    every_of = {f"q{n}": 2 for n in range(4)}
    for name, every in every_of.items():
        cluster.pipeline(name, pipeline_text(f"{every}s"))
    runners = [cluster.start(f"r{n}") for n in range(2)]
    wait_for(
        lambda: len({r.pipeline for r in cluster.rows() if r.status == "succeeded"}) == 4,
        "every pipeline ran",
    )
    server = cluster.server.pg.server
    server.stop()
    down = time.monotonic()
    try:
        for runner in runners:
            wait_for(lambda r=runner: "ledger unreachable" in r.text(), "the outage noticed")
        # The outage lasts ~15 s (the scenario), during which fire times are missed.
        wait_for(lambda: time.monotonic() - down >= 15, "15 s of outage", timeout=60)
    finally:
        server.start()
    back = time.monotonic()
    with cluster.ledger() as ledger:
        restarted = ledger.now()
    wait_for(
        lambda: all(
            any(r.pipeline == name and r.scheduled_at > restarted for r in cluster.rows())
            for name in every_of
        ),
        "every pipeline running again",
    )
    # One runner may run everything again before the other's next try at the
    # ledger (its retry pause): wait for each to say it is back, then stop them.
    for runner in runners:
        wait_for(lambda r=runner: "ledger reachable again" in r.text(), "each runner back")
    assert time.monotonic() - back < 120
    for runner in runners:
        assert cluster.stop(runner) == 0
    rows = _check_exactly_once(cluster, every_of)
    for runner in runners:
        # One line per outage, not one per second.
        assert runner.text().count("ledger unreachable") == 1, runner.text()[-3000:]
        assert runner.text().count("ledger reachable again") == 1
    missed = [r for rs in rows.values() for r in rs if r.error and "unreachable" in r.error]
    assert missed, "the outage's fire times were skipped by the catch-up policy"


def test_a_runner_with_its_clock_two_minutes_off_runs_nothing_twice(cluster: Cluster):
    every_of = {f"s{n}": 2 for n in range(4)}
    for name, every in every_of.items():
        cluster.pipeline(name, pipeline_text(f"{every}s"))
    runners = [cluster.start("on-time"), cluster.start("ahead", EIL_CLOCK_SKEW="120")]

    def enough() -> bool:
        counts = Counter(r.pipeline for r in cluster.rows() if r.status == "succeeded")
        return len(counts) == 4 and min(counts.values()) >= 4

    wait_for(enough, "every pipeline ran 4 times")
    for runner in runners:
        assert cluster.stop(runner) == 0
    rows = cluster.rows()
    keys = Counter((r.pipeline, r.scheduled_at) for r in rows)
    assert max(keys.values()) == 1
    # Leases count on the database's clock: nobody's run was taken over as abandoned.
    assert all(r.attempt <= 1 for r in rows), [(r.pipeline, r.attempt) for r in rows]
    assert "taking over" not in runners[0].text() + runners[1].text()
    for name in every_of:
        documents = [p for p in (cluster.reports / name).glob("*.md") if p.name != "latest.md"]
        succeeded = [r for r in rows if r.pipeline == name and r.status == "succeeded"]
        assert len(documents) == len(succeeded)
