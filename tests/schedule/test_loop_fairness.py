"""Fairness of the worker pool under bursts, and what overlap means for a waiting run.

The rule: runs start oldest first, but at most ``workers - reserved_workers``
runs that may be long go at once, so a reserved worker is always there for runs
expected to be short (``expected_duration``, or learned from the job's runs).
A run handed to the workers that none could take yet is *waiting*, not
*going*: a fire time coming meanwhile is skipped with that reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.loop import Firing, JobOptions, Scheduler
from eil_pipelines.schedule.testing import ManualClock
from eil_pipelines.schedule.triggers import EveryTrigger

ZONE = ZoneInfo("UTC")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)
LONG = JobOptions(expected_duration=HOUR)
SHORT = JobOptions(expected_duration=timedelta(milliseconds=100))
WAITING = "the previous run was still waiting for a free worker (overlap = skip)"
GOING = "the previous run was still going (overlap = skip)"


def at(hours: float = 0, minutes: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes)


def wait_for(predicate: Callable[[], bool], limit: float = 5.0) -> bool:
    """Poll ``predicate`` until true; the limit is reached only when the test fails."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class Gated:
    """A job whose runs log their start, then block until ``release`` is set."""

    def __init__(self, release: threading.Event, log: list[tuple[str, datetime]]):
        self.release = release
        self.log = log
        self.lock = threading.Lock()

    def __call__(self, firing: Firing) -> None:
        with self.lock:
            self.log.append((firing.key, firing.scheduled_at))
        assert self.release.wait(30), "the test never released the run"


class Skips:
    def __init__(self) -> None:
        self.seen: list[tuple[str, datetime, str]] = []

    def __call__(self, firing: Firing, reason: str) -> None:
        self.seen.append((firing.key, firing.scheduled_at, reason))


def test_a_burst_of_long_runs_leaves_a_worker_for_the_short_job(clock: ManualClock) -> None:
    scheduler = Scheduler(clock=clock, workers=4)  # one reserved for short runs
    scheduler.start(loop=False)
    release = threading.Event()
    started: list[tuple[str, datetime]] = []
    short_runs: list[datetime] = []
    skips = Skips()
    try:
        for index in range(6):  # six long reports due at 13:00
            scheduler.add(
                f"report-{index}",
                EveryTrigger(HOUR, ZONE),
                Gated(release, started),
                options=LONG,
                on_skip=skips,
            )
        scheduler.add(
            "short",
            EveryTrigger(MINUTE, ZONE),
            lambda firing: short_runs.append(firing.scheduled_at),
            options=SHORT,
            on_skip=skips,
            first_after=at(0, 59),
        )
        clock.set(at(1))
        assert scheduler.run_due() == 7
        assert wait_for(lambda: short_runs == [at(1)])
        assert wait_for(lambda: len(started) == 3)
        # Three long runs hold three workers; the other three wait for one.
        assert sorted(key for key, _ in started) == ["report-0", "report-1", "report-2"]
        for minute in (1, 2, 3):
            clock.set(at(1, minute))
            scheduler.run_due()
            assert wait_for(lambda minute=minute: short_runs[-1:] == [at(1, minute)])
        assert short_runs == [at(1), at(1, 1), at(1, 2), at(1, 3)]
        assert skips.seen == []
        assert len(started) == 3
        release.set()
        assert scheduler.wait_idle(60)
        assert sorted(key for key, _ in started) == [f"report-{i}" for i in range(6)]
    finally:
        release.set()
        scheduler.shutdown(2)


def test_a_fire_time_while_the_previous_run_waits_for_a_worker_says_so(
    clock: ManualClock,
) -> None:
    scheduler = Scheduler(clock=clock, workers=1)
    scheduler.start(loop=False)
    release = threading.Event()
    started: list[tuple[str, datetime]] = []
    skips = Skips()
    try:
        scheduler.add("busy", EveryTrigger(HOUR, ZONE), Gated(release, started), on_skip=skips)
        scheduler.add("queued", EveryTrigger(HOUR, ZONE), Gated(release, started), on_skip=skips)
        clock.set(at(1))
        assert scheduler.run_due() == 2
        assert wait_for(lambda: started == [("busy", at(1))])
        clock.set(at(2))
        assert scheduler.run_due() == 0
        assert sorted(skips.seen) == [("busy", at(2), GOING), ("queued", at(2), WAITING)]
        release.set()
        assert scheduler.wait_idle(60)
        assert started == [("busy", at(1)), ("queued", at(1))]
    finally:
        release.set()
        scheduler.shutdown(2)


def test_a_job_is_known_to_be_short_after_its_first_run(clock: ManualClock) -> None:
    scheduler = Scheduler(clock=clock, workers=2)  # one worker for long runs, one reserved
    scheduler.start(loop=False)
    releases = [threading.Event(), threading.Event()]
    long_runs: list[datetime] = []
    fresh_runs: list[datetime] = []

    def long_job(firing: Firing) -> None:
        long_runs.append(firing.scheduled_at)
        assert releases[len(long_runs) - 1].wait(30)

    try:
        scheduler.add("long", EveryTrigger(HOUR, ZONE), long_job, options=LONG)
        scheduler.add(
            "fresh", EveryTrigger(HOUR, ZONE), lambda f: fresh_runs.append(f.scheduled_at)
        )
        clock.set(at(1))
        scheduler.run_due()
        assert wait_for(lambda: long_runs == [at(1)])
        # Never run, "fresh" may be long: it waits for the worker the long run holds.
        assert scheduler.get("fresh").average is None  # type: ignore[union-attr]
        assert fresh_runs == []
        releases[0].set()
        assert scheduler.wait_idle(60)
        assert fresh_runs == [at(1)]
        # Its run took no time on the (manual) monotonic clock: it is short now.
        assert scheduler.get("fresh").average == 0.0  # type: ignore[union-attr]
        clock.set(at(2))
        scheduler.run_due()
        assert wait_for(lambda: long_runs == [at(1), at(2)])
        assert wait_for(lambda: fresh_runs == [at(1), at(2)])  # beside the long run
        releases[1].set()
        assert scheduler.wait_idle(60)
    finally:
        for release in releases:
            release.set()
        scheduler.shutdown(2)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def test_a_job_slower_than_short_run_is_short_beside_much_longer_runs(clock: ManualClock) -> None:
    # On a loaded machine a one-second pipeline took 1.5 s a run: above
    # short_run, but a small fraction of the reports holding the long workers
    # (expected to take an hour, or never run yet).  It must take the reserved
    # worker, not wait behind the burst (issue 12, case 7, on the real daemon).
    scheduler = Scheduler(clock=clock, workers=4)
    scheduler.start(loop=False)
    release = threading.Event()
    started: list[tuple[str, datetime]] = []
    ticks: list[datetime] = []
    skips = Skips()
    try:
        for index in range(6):
            options = LONG if index % 2 else JobOptions()  # an hour, or never ran
            scheduler.add(
                f"report-{index}",
                EveryTrigger(HOUR, ZONE),
                Gated(release, started),
                options=options,
                on_skip=skips,
            )
        scheduler.add(
            "ticker",
            EveryTrigger(MINUTE, ZONE),
            lambda firing: ticks.append(firing.scheduled_at),
            options=JobOptions(expected_duration=timedelta(seconds=1.5)),
            on_skip=skips,
            first_after=at(1),
        )
        clock.set(at(1))
        scheduler.run_due()
        assert wait_for(lambda: len(started) == 3)
        for minute in (1, 2, 3):
            clock.set(at(1, minute))
            scheduler.run_due()
            assert wait_for(lambda minute=minute: ticks[-1:] == [at(1, minute)])
        assert skips.seen == []
        assert len(started) == 3  # the reports still hold three workers, no more
    finally:
        release.set()
        scheduler.shutdown(5)


def test_a_job_slower_than_short_run_is_long_when_the_long_workers_are_free(
    clock: ManualClock,
) -> None:
    scheduler = Scheduler(clock=clock, workers=2)  # one long worker, one reserved
    scheduler.start(loop=False)
    release = threading.Event()
    started: list[tuple[str, datetime]] = []
    skips = Skips()
    try:
        for name in ("a", "b"):  # two 1.5 s jobs, nothing long beside them
            scheduler.add(
                name,
                EveryTrigger(HOUR, ZONE),
                Gated(release, started),
                options=JobOptions(expected_duration=timedelta(seconds=1.5)),
                on_skip=skips,
            )
        clock.set(at(1))
        scheduler.run_due()
        assert wait_for(lambda: len(started) == 1)
        # The reserved worker stays free for a short run: the second waits.
        assert not wait_for(lambda: len(started) == 2, limit=0.3)
        release.set()
        assert scheduler.wait_idle(60)
        assert len(started) == 2
    finally:
        release.set()
        scheduler.shutdown(5)
