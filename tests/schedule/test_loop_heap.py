"""The scheduler's heap at scale: wake-ups on add/remove, stale entries, per-job state.

Registering 10,000 jobs must not wake the loop 10,000 times, reloading every
job must not leave the heap twice (then three times …) its size, and a job
costs no more memory than it needs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.loop import Firing, JobOptions, Scheduler
from eil_pipelines.schedule.testing import ManualClock
from eil_pipelines.schedule.triggers import DailyTrigger, EveryTrigger

ZONE_UTC = ZoneInfo("UTC")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def at(hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def hourly(offset_seconds: int = 0) -> EveryTrigger:
    """Every hour, ``offset_seconds`` past the hour."""
    return EveryTrigger(timedelta(hours=1), ZONE_UTC, T0 + timedelta(seconds=offset_seconds))


def noop(_firing: Firing) -> None:
    """A job that does nothing."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def scheduler(clock: ManualClock) -> Iterator[Scheduler]:
    sched = Scheduler(clock=clock, workers=4)
    sched.start(loop=False)
    yield sched
    sched.shutdown(1)


class Wakes:
    """Counts the scheduler's notifications of its loop."""

    def __init__(self, scheduler: Scheduler):
        self.count = 0
        condition = scheduler._lock
        notify_all = condition.notify_all

        def counting() -> None:
            self.count += 1
            notify_all()

        condition.notify_all = counting  # type: ignore[method-assign]

    def taken(self) -> int:
        """Notifications since the last call."""
        count, self.count = self.count, 0
        return count


def test_add_and_remove_wake_the_loop_only_when_its_next_entry_changes(
    scheduler: Scheduler,
) -> None:
    wakes = Wakes(scheduler)
    scheduler.add("first", hourly(), noop)  # 13:00, the earliest
    assert wakes.taken() == 1
    evening = DailyTrigger([at(6).time()], None, ZONE_UTC)
    for index in range(100):  # 18:00: the loop still waits for 13:00
        scheduler.add(f"evening-{index}", evening, noop)
    assert wakes.taken() == 0
    scheduler.add("soon", hourly(-1800), noop)  # 12:30, earlier than 13:00
    assert wakes.taken() == 1
    assert scheduler.next_wakeup() == at(0, 30)
    scheduler.add("soon", hourly(), noop)  # the job the loop waits for moves to 13:00
    assert wakes.taken() == 1
    scheduler.add("evening-0", evening, noop)  # replacing a job it does not wait for
    assert scheduler.remove("evening-1")
    assert wakes.taken() == 0
    assert scheduler.remove("first")  # 13:00, the earliest: "soon" is next
    assert wakes.taken() == 1
    assert scheduler.next_wakeup() == at(1)


def test_a_job_added_later_than_the_next_entry_still_fires(clock: ManualClock) -> None:
    scheduler = Scheduler(clock=clock)
    ran: dict[str, threading.Event] = {"first": threading.Event(), "later": threading.Event()}
    scheduler.add("first", hourly(), lambda firing: ran[firing.key].set())
    scheduler.start()
    try:
        scheduler.add("later", hourly(60), lambda firing: ran[firing.key].set())  # 13:01
        clock.set(at(1, 1))
        assert ran["first"].wait(30)
        assert ran["later"].wait(30)
    finally:
        assert scheduler.shutdown(1)


def test_stale_entries_are_dropped_once_they_outnumber_live_ones(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    jobs = 2_000
    fired: list[Firing] = []
    lock = threading.Lock()

    def record(firing: Firing) -> None:
        with lock:
            fired.append(firing)

    for _reload in range(5):  # like reloading every pipeline file five times
        for index in range(jobs):
            scheduler.add(f"job-{index}", hourly(index), record)
            assert len(scheduler._heap) <= 2 * jobs + 1
    assert len(scheduler) == jobs
    # Nothing lost, nothing stale revived: each job fires once an hour.
    for hour in (1, 2):
        clock.set(at(hour, 59))
        scheduler.run_due(at(hour, 59))
        assert scheduler.wait_idle(60)
    assert len(fired) == 2 * jobs
    assert sorted((f.key, f.scheduled_at) for f in fired) == sorted(
        (f"job-{index}", at(hour, seconds=index)) for index in range(jobs) for hour in (1, 2)
    )


def test_a_job_has_no_queue_until_a_run_waits(scheduler: Scheduler, clock: ManualClock) -> None:
    gate, started = threading.Event(), threading.Event()

    def slow(_firing: Firing) -> None:
        started.set()
        assert gate.wait(30)

    job = scheduler.add("job", hourly(), slow, options=JobOptions(overlap="queue"))
    assert job.queue is None
    clock.set(at(1))
    scheduler.run_due(at(1))
    assert started.wait(30)
    clock.set(at(2))
    scheduler.run_due(at(2))  # 14:00 waits behind the 13:00 run
    assert job.queue is not None and [f.scheduled_at for f in job.queue] == [at(2)]
    gate.set()
    assert scheduler.wait_idle(60)
    assert scheduler.jobs()[0].run_count == 2


class CountingHeap(list):
    """A heap list that counts full scans (iterations over it)."""

    scans = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        CountingHeap.scans += 1
        return super().__iter__()


def test_replacing_a_job_does_not_scan_the_heap(scheduler: Scheduler, clock: ManualClock) -> None:
    """Re-registering n jobs must cost O(n log n), not O(n²): no scan of the heap per add."""

    def failing(_firing: Firing) -> bool:
        return False

    options = JobOptions(retries=1, retry_delay=timedelta(minutes=5))
    for index in range(300):
        scheduler.add(f"job-{index}", hourly(index), failing, options=options)
    clock.set(at(1, 59))
    scheduler.run_due(at(1, 59))
    assert scheduler.wait_idle(60)  # 300 retries now wait in the heap
    scheduler._heap = CountingHeap(scheduler._heap)
    CountingHeap.scans = 0
    for index in range(300):
        scheduler.add(f"job-{index}", hourly(index), failing, options=options)
    assert CountingHeap.scans <= 1  # at most one compaction, never one scan per add
    # The retries were taken over all the same: each fires once, for the new version.
    fired: list[Firing] = []
    for index in range(300):
        scheduler.add(f"job-{index}", hourly(index), fired.append, options=options)
    clock.set(at(2, 4, 59))
    scheduler.run_due(at(2, 4, 59))
    assert scheduler.wait_idle(60)
    assert sorted(f.key for f in fired if f.attempt == 2) == sorted(f"job-{i}" for i in range(300))
