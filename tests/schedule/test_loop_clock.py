"""Wall-clock jumps, seen by comparing the wall clock with the monotonic one.

The manual clock's ``jump`` moves the wall clock alone (an NTP step, a resumed
laptop, someone setting the date); ``set`` and ``advance`` move both, as time
passing does.  The loop thread runs in these tests: it is the one that looks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.loop import Firing, JobOptions, Scheduler
from eil_pipelines.schedule.testing import ManualClock
from eil_pipelines.schedule.triggers import EveryTrigger

ZONE = ZoneInfo("UTC")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def at(hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def wait_for(predicate: Callable[[], bool], limit: float = 5.0) -> bool:
    """Poll ``predicate`` until true; the limit is reached only when the test fails."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class Runs:
    """A job function recording the scheduled times it ran."""

    def __init__(self) -> None:
        self.times: list[datetime] = []
        self.lock = threading.Lock()

    def __call__(self, firing: Firing) -> None:
        with self.lock:
            self.times.append(firing.scheduled_at)


class Batches:
    """An ``on_skip_many`` hook keeping each batch with its reason."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[datetime], str]] = []

    def __call__(self, firings: list[Firing], reason: str) -> None:
        self.batches.append(([f.scheduled_at for f in firings], reason))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def looping(clock: ManualClock) -> Iterator[Scheduler]:
    """A scheduler with its loop thread, on the manual clock."""
    scheduler = Scheduler(clock=clock, workers=2)
    yield scheduler
    scheduler.shutdown(2)


def clock_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "eil_pipelines.scheduler"]


def test_a_jump_forward_runs_the_latest_and_skips_the_rest_in_one_batch(
    looping: Scheduler, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eil_pipelines.scheduler")
    runs, batches = Runs(), Batches()
    options = JobOptions(catch_up="latest")
    looping.add("job", EveryTrigger(MINUTE, ZONE), runs, options=options, on_skip_many=batches)
    looping.start()
    clock.jump(timedelta(hours=1))  # 12:00 -> 13:00 on the wall; no time passed
    assert wait_for(lambda: runs.times == [at(1)] and len(batches.batches) == 1)
    ((skipped, reason),) = batches.batches
    assert skipped == [at(minutes=m) for m in range(1, 60)]
    assert reason == "missed: the wall clock jumped forward by 1:00:00 (catch_up = latest)"
    lines = clock_lines(caplog)
    assert len(lines) == 1
    assert lines[0].startswith("the wall clock jumped forward by 1:00:00 (from 2026-01-05T12:00")
    assert looping.get("job").next_fire == at(1, 1)  # type: ignore[union-attr]


def test_a_jump_back_recomputes_the_next_fire_from_the_new_time(
    looping: Scheduler, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eil_pipelines.scheduler")
    runs = Runs()
    looping.add("job", EveryTrigger(MINUTE, ZONE), runs)
    looping.start()
    clock.set(at(seconds=30))
    looping.wakeup()  # the loop has looked at 12:00:30 (set moved both clocks: no jump)
    assert clock_lines(caplog) == []
    clock.jump(-timedelta(hours=1))  # the wall clock says 11:00:30 now
    # Not 12:01, an hour of wall time ahead: the next real minute.
    assert wait_for(lambda: looping.get("job").next_fire == at(-1, 1))  # type: ignore[union-attr]
    assert looping.next_wakeup() == at(-1, 1)
    lines = clock_lines(caplog)
    assert lines[0].startswith("the wall clock went back by 1:00:00 (from 2026-01-05T12:00:30")
    assert "next fire time is recomputed" in lines[0]
    clock.set(at(-1, 1))
    assert wait_for(lambda: runs.times == [at(-1, 1)])


def test_a_small_difference_between_the_clocks_is_no_jump(
    looping: Scheduler, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eil_pipelines.scheduler")
    runs = Runs()
    looping.add("job", EveryTrigger(MINUTE, ZONE), runs)
    looping.start()
    clock.jump(timedelta(seconds=1.5))  # under the 2 s threshold (an NTP slew, say)
    clock.set(at(minutes=1))
    assert wait_for(lambda: runs.times == [at(minutes=1)])
    assert clock_lines(caplog) == []


def test_a_retry_keeps_its_real_delay_across_a_jump(clock: ManualClock) -> None:
    scheduler = Scheduler(clock=clock, workers=2)
    scheduler.start(loop=False)
    try:
        failing = Runs()

        def job(firing: Firing) -> bool:
            failing(firing)
            return False

        options = JobOptions(retries=1, retry_delay=timedelta(minutes=5))
        scheduler.add("job", EveryTrigger(timedelta(hours=1), ZONE), job, options=options)
        clock.set(at(1))
        scheduler.run_due()
        assert scheduler.wait_idle(60)
        assert scheduler.next_wakeup() == at(1, 5)  # the retry
        clock.jump(timedelta(minutes=10))  # wall 13:10, but no real time passed
        scheduler.run_due()  # run_due looks at the clocks too
        assert scheduler.wait_idle(60)
        assert failing.times == [at(1)]  # the retry did not come early
        assert scheduler.next_wakeup() == at(1, 15)
    finally:
        scheduler.shutdown(1)
