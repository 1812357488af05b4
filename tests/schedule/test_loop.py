"""The scheduler loop, driven by a manual clock: fire times, catch-up, overlap,
retries, timeouts, jitter, replacing and removing jobs, threads, shutdown.

Most tests step the scheduler by hand (``start(loop=False)``, then ``run_due``
and ``wait_idle``) so that nothing depends on real time; the tests of the loop
thread itself wait on events with short timeouts.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.loop import Firing, JobInfo, JobOptions, Scheduler
from eil_pipelines.schedule.testing import ManualClock
from eil_pipelines.schedule.triggers import DailyTrigger, EveryTrigger

ZONE_UTC = ZoneInfo("UTC")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday, noon
MISSED = "missed while the scheduler was not running (catch_up = {})"
OVERLAP_SKIP = "the previous run was still going (overlap = skip)"


def at(hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    """``T0`` plus an offset: ``at(1)`` is 13:00 on the test day."""
    return T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def every(**interval: float) -> EveryTrigger:
    """An interval trigger in UTC on the default grid (whole hours, minutes …)."""
    return EveryTrigger(timedelta(**interval), ZONE_UTC)


class Recorder:
    """A job function that records each Firing and returns ``results`` in turn.

    ``results`` items may be True/False/None, or an exception to raise; the
    last one repeats.  ``gate``, when given, holds the first run until set.
    """

    def __init__(self, *results: object, gate: threading.Event | None = None):
        self.results = list(results) or [True]
        self.firings: list[Firing] = []
        self.gate = gate
        self.started = threading.Event()
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def __call__(self, firing: Firing) -> object:
        with self._lock:
            index = len(self.firings)
            self.firings.append(firing)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        self.started.set()
        try:
            if self.gate is not None and index == 0:
                assert self.gate.wait(30), "the test never released the gated run"
            result = self.results[min(index, len(self.results) - 1)]
            if isinstance(result, BaseException):
                raise result
            return result
        finally:
            with self._lock:
                self.running -= 1

    @property
    def times(self) -> list[datetime]:
        """The scheduled times of the runs, in the order they ran."""
        return [f.scheduled_at for f in self.firings]


class Skips:
    """An ``on_skip`` hook that records (scheduled time, reason) pairs."""

    def __init__(self) -> None:
        self.seen: list[tuple[datetime, str]] = []

    def __call__(self, firing: Firing, reason: str) -> None:
        self.seen.append((firing.scheduled_at, reason))


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock at ``T0``."""
    return ManualClock(T0)


@pytest.fixture
def scheduler(clock: ManualClock) -> Iterator[Scheduler]:
    """A scheduler on the manual clock, its pool started, no loop thread."""
    sched = Scheduler(clock=clock, workers=4)
    sched.start(loop=False)
    yield sched
    sched.shutdown(1)


def step(scheduler: Scheduler, clock: ManualClock, moment: datetime) -> int:
    """Move the clock to ``moment``, dispatch what is due, wait for the runs to end."""
    clock.set(moment)
    started = scheduler.run_due(moment)
    assert scheduler.wait_idle(60), "runs still going a second after they started"
    return started


def info(scheduler: Scheduler, key: str = "job") -> JobInfo:
    """The JobInfo snapshot of ``key``."""
    (found,) = [j for j in scheduler.jobs() if j.key == key]
    return found


# --------------------------------------------------------------------------- basics


def test_fires_once_at_each_fire_time(scheduler: Scheduler, clock: ManualClock) -> None:
    job = Recorder()
    scheduler.add("job", every(minutes=15), job)
    started = [step(scheduler, clock, at(minutes=m)) for m in range(5, 125, 5)]
    assert job.times == [at(minutes=m) for m in range(15, 121, 15)]
    # A fire lands on every third 5-minute step and nowhere else.
    assert started == [1 if m % 15 == 0 else 0 for m in range(5, 125, 5)]
    # Looking again at a moment already handled starts nothing.
    assert scheduler.run_due(at(minutes=120)) == 0
    assert [f.attempt for f in job.firings] == [1] * 8
    assert [f.due_at for f in job.firings] == job.times


def test_scheduled_at_is_the_fire_time_even_when_dispatched_late(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    job = Recorder()
    scheduler.add("job", every(hours=1), job)
    # The loop got round to 13:00 forty seconds late; the run still stands for 13:00.
    step(scheduler, clock, at(1, seconds=40))
    assert job.times == [at(1)]


def test_no_drift_over_1000_fires_of_slow_runs(scheduler: Scheduler, clock: ManualClock) -> None:
    finished: list[datetime] = []

    def slow(firing: Firing) -> None:
        # Each run "takes" 40 minutes: if the next fire time were counted from
        # the end of a run, the grid would slip by 40 minutes each hour.
        finished.append(clock.advance(timedelta(minutes=40)))

    scheduler.add("job", every(hours=1), slow)
    seen: list[Firing] = []
    scheduler.add("spy", every(hours=1), seen.append)
    for _ in range(1000):
        due = scheduler.next_wakeup()
        assert due is not None
        step(scheduler, clock, due)
    assert [f.scheduled_at for f in seen] == [at(k) for k in range(1, 1001)]
    assert info(scheduler).run_count == 1000
    assert info(scheduler).next_fire == at(1001)
    assert finished[-1] > at(1000)  # the slow runs really ran past their fire times


# --------------------------------------------------------------------------- catch-up


def add_after_downtime(
    scheduler: Scheduler, options: JobOptions, job: Recorder, skips: Skips
) -> None:
    """An hourly job whose last run was 07:00: 08:00 … 12:00 are due at once."""
    scheduler.add("job", every(hours=1), job, options=options, first_after=at(-5), on_skip=skips)


def test_catch_up_latest_runs_the_newest_and_reports_the_rest(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    job, skips = Recorder(), Skips()
    add_after_downtime(scheduler, JobOptions(catch_up="latest"), job, skips)
    assert step(scheduler, clock, at(minutes=10)) == 1
    assert job.times == [at(0)]
    assert skips.seen == [(at(h), MISSED.format("latest")) for h in (-4, -3, -2, -1)]
    assert info(scheduler).next_fire == at(1)


def test_catch_up_all_runs_each_oldest_first_up_to_max(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    job, skips = Recorder(), Skips()
    add_after_downtime(scheduler, JobOptions(catch_up="all", max_catch_up=3), job, skips)
    step(scheduler, clock, at(minutes=10))
    assert job.times == [at(-2), at(-1), at(0)]
    assert skips.seen == [(at(h), MISSED.format("all")) for h in (-4, -3)]
    # The backlog runs one after another, never two of the job at once.
    assert job.max_running == 1
    assert info(scheduler).run_count == 3


def test_catch_up_all_with_room_for_everything(scheduler: Scheduler, clock: ManualClock) -> None:
    job, skips = Recorder(), Skips()
    add_after_downtime(scheduler, JobOptions(catch_up="all", max_catch_up=10), job, skips)
    step(scheduler, clock, at(minutes=10))
    assert job.times == [at(h) for h in (-4, -3, -2, -1, 0)]
    assert skips.seen == []


def test_catch_up_none_runs_nothing_missed(scheduler: Scheduler, clock: ManualClock) -> None:
    job, skips = Recorder(), Skips()
    add_after_downtime(scheduler, JobOptions(catch_up="none"), job, skips)
    assert step(scheduler, clock, at(minutes=10)) == 0
    assert job.times == []
    assert skips.seen == [(at(h), MISSED.format("none")) for h in (-4, -3, -2, -1, 0)]
    assert info(scheduler).next_fire == at(1)


def test_catch_up_none_still_runs_a_fire_time_within_grace(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    job, skips = Recorder(), Skips()
    options = JobOptions(catch_up="none", misfire_grace=timedelta(seconds=60))
    add_after_downtime(scheduler, options, job, skips)
    assert step(scheduler, clock, at(seconds=60)) == 1
    assert job.times == [at(0)]
    assert skips.seen == [(at(h), MISSED.format("none")) for h in (-4, -3, -2, -1)]


# --------------------------------------------------------------------------- clock jumps


def test_a_jump_forward_is_handled_like_downtime(scheduler: Scheduler, clock: ManualClock) -> None:
    job, skips = Recorder(), Skips()
    scheduler.add("job", every(hours=1), job, on_skip=skips)
    step(scheduler, clock, at(1))
    # The wall clock leaps a day ahead (a suspended laptop, an NTP fix): the
    # monotonic clock did not move, so the scheduler knows it was no downtime.
    clock.jump(at(25, minutes=5) - at(1))
    scheduler.run_due()
    assert scheduler.wait_idle(60)
    assert job.times == [at(1), at(25)]
    assert [when for when, _ in skips.seen] == [at(h) for h in range(2, 25)]
    jumped = "missed: the wall clock jumped forward by 1 day, 0:05:00 (catch_up = latest)"
    assert {reason for _, reason in skips.seen} == {jumped}


def test_a_jump_backwards_never_reruns_a_fire_time(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    job, skips = Recorder(), Skips()
    scheduler.add("job", every(hours=1), job, on_skip=skips)
    step(scheduler, clock, at(1))
    step(scheduler, clock, at(2))
    # Back to 12:30, then forward again over 13:00 and 14:00, which already ran.
    for moment in (at(minutes=30), at(1), at(1, 30), at(2), at(2, 30), at(3)):
        step(scheduler, clock, moment)
    assert job.times == [at(1), at(2), at(3)]
    assert skips.seen == []


# --------------------------------------------------------------------------- overlap


def test_overlap_skip_reports_the_fire_time(scheduler: Scheduler, clock: ManualClock) -> None:
    gate = threading.Event()
    job, skips = Recorder(gate=gate), Skips()
    scheduler.add("job", every(hours=1), job, on_skip=skips)
    clock.set(at(1))
    assert scheduler.run_due(at(1)) == 1
    assert job.started.wait(30)
    clock.set(at(2))
    assert scheduler.run_due(at(2)) == 0
    assert skips.seen == [(at(2), OVERLAP_SKIP)]
    gate.set()
    assert scheduler.wait_idle(60)
    assert job.times == [at(1)]
    # The skip did not cost the schedule: 15:00 runs as usual.
    step(scheduler, clock, at(3))
    assert job.times == [at(1), at(3)]


def test_overlap_queue_runs_the_queued_firing_afterwards(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    gate = threading.Event()
    job, skips = Recorder(gate=gate), Skips()
    options = JobOptions(overlap="queue")
    scheduler.add("job", every(hours=1), job, options=options, on_skip=skips)
    clock.set(at(1))
    scheduler.run_due(at(1))
    assert job.started.wait(30)
    clock.set(at(2))
    assert scheduler.run_due(at(2)) == 0
    assert len(job.firings) == 1  # still waiting behind the first run
    gate.set()
    assert scheduler.wait_idle(60)
    assert job.times == [at(1), at(2)]
    assert job.max_running == 1
    assert skips.seen == []


# --------------------------------------------------------------------------- retries


def test_a_failing_run_is_retried_with_doubling_delays(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    job = Recorder(False)
    options = JobOptions(retries=3, retry_delay=timedelta(minutes=1))
    scheduler.add("job", every(hours=1), job, options=options)
    step(scheduler, clock, at(1))
    retry_times = []
    for _ in range(3):
        due = scheduler.next_wakeup()
        assert due is not None
        retry_times.append(due)
        # A moment before the retry is due, nothing happens.
        assert step(scheduler, clock, due - timedelta(microseconds=1)) == 0
        assert step(scheduler, clock, due) == 1
    assert retry_times == [at(1, 1), at(1, 3), at(1, 7)]
    assert [f.attempt for f in job.firings] == [1, 2, 3, 4]
    assert job.times == [at(1)] * 4
    assert [f.due_at for f in job.firings] == [at(1), at(1, 1), at(1, 3), at(1, 7)]
    # Retries used up: next is the ordinary 14:00 fire.
    assert scheduler.next_wakeup() == at(2)
    snapshot = info(scheduler)
    assert (snapshot.run_count, snapshot.error_count) == (4, 4)
    assert snapshot.last_error == "the run failed"


def test_fail_then_succeed_stops_retrying(scheduler: Scheduler, clock: ManualClock) -> None:
    job = Recorder(False, True)
    options = JobOptions(retries=3, retry_delay=timedelta(minutes=1))
    scheduler.add("job", every(hours=1), job, options=options)
    step(scheduler, clock, at(1))
    step(scheduler, clock, at(1, 1))
    assert [f.attempt for f in job.firings] == [1, 2]
    assert scheduler.next_wakeup() == at(2)
    snapshot = info(scheduler)
    assert (snapshot.run_count, snapshot.error_count) == (2, 1)


def test_retries_zero_never_retries(scheduler: Scheduler, clock: ManualClock) -> None:
    job = Recorder(False)
    scheduler.add("job", every(hours=1), job, options=JobOptions(retries=0))
    step(scheduler, clock, at(1))
    assert scheduler.next_wakeup() == at(2)
    for minutes in (1, 2, 4, 30):
        step(scheduler, clock, at(1, minutes))
    assert len(job.firings) == 1


def test_a_raising_job_is_logged_retried_and_keeps_its_schedule(
    scheduler: Scheduler, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    job = Recorder(RuntimeError("boom"))
    options = JobOptions(retries=1, retry_delay=timedelta(minutes=5))
    scheduler.add("job", every(hours=1), job, options=options)
    with caplog.at_level(logging.ERROR, logger="eil_pipelines.schedule"):
        step(scheduler, clock, at(1))
    assert "job job raised RuntimeError: boom" in caplog.messages
    assert scheduler.next_wakeup() == at(1, 5)
    step(scheduler, clock, at(1, 5))
    step(scheduler, clock, at(2))
    assert [(f.scheduled_at, f.attempt) for f in job.firings] == [
        (at(1), 1),
        (at(1), 2),
        (at(2), 1),
    ]
    snapshot = info(scheduler)
    assert (snapshot.run_count, snapshot.error_count) == (3, 3)
    assert snapshot.last_error == "RuntimeError: boom"
    assert snapshot.running == 0


def test_a_job_raising_base_exception_still_finishes_its_run(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    job = Recorder(SystemExit(3), True)
    scheduler.add("job", every(hours=1), job)
    step(scheduler, clock, at(1))  # wait_idle inside fails if the run never "ended"
    snapshot = info(scheduler)
    assert (snapshot.running, snapshot.error_count) == (0, 1)
    step(scheduler, clock, at(2))
    assert job.times == [at(1), at(2)]


def test_a_retry_waits_behind_a_run_still_going(scheduler: Scheduler, clock: ManualClock) -> None:
    gate, blocked = threading.Event(), threading.Event()
    calls: list[tuple[datetime, int]] = []

    def job(firing: Firing) -> bool:
        calls.append((firing.scheduled_at, firing.attempt))
        if firing.scheduled_at == at(minutes=1):
            blocked.set()
            assert gate.wait(30)
        return firing.scheduled_at != at(0)  # only the 12:00 run fails

    options = JobOptions(retries=1, retry_delay=timedelta(seconds=90))
    scheduler.add("job", every(minutes=1), job, options=options, first_after=at(minutes=-1))
    step(scheduler, clock, at(0))  # 12:00 fails: its retry is due at 12:01:30
    clock.set(at(minutes=1))
    assert scheduler.run_due(at(minutes=1)) == 1
    assert blocked.wait(30)
    clock.set(at(minutes=1, seconds=30))
    # The retry must not start beside the 12:01 run, which still holds the job.
    assert scheduler.run_due(at(minutes=1, seconds=30)) == 0
    assert scheduler.in_flight == 1
    gate.set()
    assert scheduler.wait_idle(60)
    assert calls == [(at(0), 1), (at(minutes=1), 1), (at(0), 2)]


# --------------------------------------------------------------------------- timeouts


def test_on_timeout_is_called_while_the_run_is_still_going(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    gate = threading.Event()
    job = Recorder(gate=gate)
    timed_out: list[Firing] = []
    options = JobOptions(timeout=timedelta(minutes=5))
    scheduler.add("job", every(hours=1), job, options=options, on_timeout=timed_out.append)
    clock.set(at(1))
    scheduler.run_due(at(1))
    assert job.started.wait(30)
    assert scheduler.next_wakeup() == at(1, 5)
    clock.set(at(1, 4, 59))
    scheduler.run_due(at(1, 4, 59))
    assert timed_out == []
    clock.set(at(1, 5))
    scheduler.run_due(at(1, 5))
    assert timed_out == [job.firings[0]]
    assert timed_out[0].scheduled_at == at(1)
    gate.set()
    assert scheduler.wait_idle(60)
    assert len(timed_out) == 1


def test_on_timeout_is_not_called_for_a_run_that_finished(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    timed_out: list[Firing] = []
    options = JobOptions(timeout=timedelta(minutes=5))
    scheduler.add("job", every(hours=1), Recorder(), options=options, on_timeout=timed_out.append)
    step(scheduler, clock, at(1))
    # The finished run's timeout is nothing to wake up for.
    assert scheduler.next_wakeup() == at(2)
    step(scheduler, clock, at(1, 5))
    step(scheduler, clock, at(1, 30))
    assert timed_out == []


def test_timeout_still_applies_after_the_job_is_replaced(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    gate = threading.Event()
    job = Recorder(gate=gate)
    timed_out: list[Firing] = []
    options = JobOptions(timeout=timedelta(minutes=5))
    scheduler.add("job", every(hours=1), job, options=options, on_timeout=timed_out.append)
    clock.set(at(1))
    scheduler.run_due(at(1))
    assert job.started.wait(30)
    # A reload replaces the job while its run hangs: the hung run must still be stopped.
    scheduler.add("job", every(hours=1), job, options=options, on_timeout=timed_out.append)
    clock.set(at(1, 5))
    scheduler.run_due(at(1, 5))
    assert [f.scheduled_at for f in timed_out] == [at(1)]
    gate.set()
    assert scheduler.wait_idle(60)


# --------------------------------------------------------------------------- jitter


def test_jitter_delays_the_start_but_not_the_scheduled_time(clock: ManualClock) -> None:
    scheduler = Scheduler(clock=clock, rng=random.Random(1234))
    scheduler.start(loop=False)
    try:
        job = Recorder()
        jitter = timedelta(minutes=10)
        scheduler.add("job", every(hours=1), job, options=JobOptions(jitter=jitter))
        # The same seed gives the same draw, so the delay is known in advance.
        delay = timedelta(seconds=random.Random(1234).uniform(0, jitter.total_seconds()))
        assert timedelta(0) < delay <= jitter
        assert step(scheduler, clock, at(1)) == 0
        assert job.firings == []
        assert scheduler.next_wakeup() == at(1) + delay
        assert step(scheduler, clock, at(1) + delay - timedelta(microseconds=1)) == 0
        assert step(scheduler, clock, at(1) + delay) == 1
        (firing,) = job.firings
        assert firing.scheduled_at == at(1)
        assert firing.due_at == at(1) + delay
    finally:
        scheduler.shutdown(1)


# --------------------------------------------------------------------------- add / remove


def test_add_replacing_a_job_keeps_counters_and_schedules_once(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    first, second = Recorder(False), Recorder()
    scheduler.add("job", every(hours=1), first)
    step(scheduler, clock, at(1))
    replaced = scheduler.add("job", every(hours=1), second, kind="pipeline")
    assert scheduler.get("job") is replaced
    assert len(scheduler) == 1
    snapshot = info(scheduler)
    assert (snapshot.run_count, snapshot.error_count, snapshot.kind) == (1, 1, "pipeline")
    assert step(scheduler, clock, at(2)) == 1
    assert (first.times, second.times) == ([at(1)], [at(2)])
    assert info(scheduler).run_count == 2


def test_replacing_a_running_job_frees_it_when_the_run_ends(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    gate = threading.Event()
    first, second, skips = Recorder(gate=gate), Recorder(), Skips()
    scheduler.add("job", every(hours=1), first)
    clock.set(at(1))
    scheduler.run_due(at(1))
    assert first.started.wait(30)
    scheduler.add("job", every(hours=1), second, on_skip=skips)
    assert info(scheduler).running == 1  # the old run still counts against overlap
    gate.set()
    assert scheduler.wait_idle(60)
    snapshot = info(scheduler)
    assert (snapshot.running, snapshot.run_count) == (0, 1)
    # Had the run's end been booked on the old job, 14:00 would be skipped as an overlap.
    step(scheduler, clock, at(2))
    assert second.times == [at(2)]
    assert skips.seen == []


def test_replacing_a_job_hands_its_pending_retry_to_the_new_version(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    # The usual story: a run fails, the analyst fixes the file, the retry uses the fix.
    broken, fixed = Recorder(False), Recorder(True)
    options = JobOptions(retries=2, retry_delay=timedelta(minutes=5))
    scheduler.add("job", every(hours=1), broken, options=options)
    step(scheduler, clock, at(1))
    assert scheduler.next_wakeup() == at(1, 5)  # the retry
    scheduler.add("job", every(hours=1), fixed, options=options, first_after=at(1, 2))
    assert scheduler.next_wakeup() == at(1, 5)
    assert step(scheduler, clock, at(1, 5)) == 1
    assert [(f.scheduled_at, f.attempt) for f in fixed.firings] == [(at(1), 2)]
    assert broken.times == [at(1)]
    # It succeeded: no further retry; the new trigger's next fire is next.
    assert scheduler.next_wakeup() == at(2)
    for minute in range(6, 60):
        assert step(scheduler, clock, at(1, minute)) == 0
    assert info(scheduler).run_count == 2


def test_replacing_a_job_hands_its_jittered_start_to_the_new_version(
    clock: ManualClock,
) -> None:
    scheduler = Scheduler(clock=clock, rng=random.Random(3))
    scheduler.start(loop=False)
    try:
        old, new = Recorder(), Recorder()
        options = JobOptions(jitter=timedelta(minutes=30))
        scheduler.add("job", every(hours=1), old, options=options)
        assert step(scheduler, clock, at(1)) == 0  # 13:00 starts later, jittered
        start = scheduler.next_wakeup()
        assert start is not None and at(1) < start < at(1, 30)
        scheduler.add("job", every(hours=1), new, options=options, first_after=at(1, 1))
        for minute in range(1, 60):
            step(scheduler, clock, at(1, minute))
        assert (old.times, new.times) == ([], [at(1)])  # once, by the new version
    finally:
        scheduler.shutdown(1)


def test_a_run_failing_after_its_job_was_replaced_is_retried_as_the_new_version_says(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    gate = threading.Event()
    old, new = Recorder(False, gate=gate), Recorder(True)
    scheduler.add("job", every(hours=1), old)  # no retries
    clock.set(at(1))
    scheduler.run_due(at(1))
    assert old.started.wait(30)
    options = JobOptions(retries=1, retry_delay=timedelta(minutes=2))
    scheduler.add("job", every(hours=1), new, options=options, first_after=at(1))
    gate.set()  # the old version's run now fails
    assert scheduler.wait_idle(60)
    assert scheduler.next_wakeup() == at(1, 2)
    assert step(scheduler, clock, at(1, 2)) == 1
    assert [(f.scheduled_at, f.attempt) for f in new.firings] == [(at(1), 2)]


def test_remove_returns_true_then_false_and_nothing_fires(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    job = Recorder()
    scheduler.add("job", every(hours=1), job)
    assert scheduler.remove("job") is True
    assert scheduler.remove("job") is False
    assert scheduler.get("job") is None
    assert scheduler.next_wakeup() is None
    for hour in range(1, 5):
        assert step(scheduler, clock, at(hour)) == 0
    assert job.firings == []
    assert scheduler.jobs() == []


def test_a_removed_jobs_pending_retry_and_jittered_start_never_fire(
    clock: ManualClock,
) -> None:
    scheduler = Scheduler(clock=clock, rng=random.Random(7))
    scheduler.start(loop=False)
    try:
        failing = Recorder(False)
        options = JobOptions(retries=2, retry_delay=timedelta(minutes=1))
        scheduler.add("failing", every(hours=1), failing, options=options)
        jittered = Recorder()
        options = JobOptions(jitter=timedelta(minutes=30))
        scheduler.add("jittered", every(hours=1), jittered, options=options)
        step(scheduler, clock, at(1))
        assert scheduler.next_wakeup() is not None
        assert scheduler.remove("failing") and scheduler.remove("jittered")
        assert scheduler.next_wakeup() is None
        for minutes in range(1, 120, 1):
            step(scheduler, clock, at(1, minutes))
        assert len(failing.firings) == 1
        assert jittered.firings == []
    finally:
        scheduler.shutdown(1)


def test_remove_then_add_again_does_not_revive_old_entries(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    hourly, daily = Recorder(), Recorder()
    scheduler.add("job", every(hours=1), hourly)
    scheduler.remove("job")
    scheduler.add("job", DailyTrigger([at(6).time()], None, ZONE_UTC), daily)
    # The first job's 13:00 entry is still in the heap; it belongs to a removed job.
    for hour in range(1, 7):
        step(scheduler, clock, at(hour))
    assert hourly.firings == []
    assert daily.times == [at(6)]
    assert scheduler.next_wakeup() == at(30)


# --------------------------------------------------------------------------- hooks


def test_hooks_run_without_the_scheduler_lock(scheduler: Scheduler, clock: ManualClock) -> None:
    joined: list[bool] = []

    def on_skip(firing: Firing, reason: str) -> None:
        # A hook that waits on another thread using the scheduler (a ledger
        # writer, a reload) would deadlock if the lock were held around it.
        other = threading.Thread(target=scheduler.jobs)
        other.start()
        other.join(0.5)
        joined.append(not other.is_alive())

    # Last run 09:00: 10:00 and 11:00 are skipped, each calling the hook.
    scheduler.add("job", every(hours=1), Recorder(), first_after=at(-3), on_skip=on_skip)
    step(scheduler, clock, at(0))
    assert joined == [True, True]


def test_a_failing_hook_is_logged_and_ignored(
    scheduler: Scheduler, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(firing: Firing, reason: str) -> None:
        raise ValueError("hook broke")

    job = Recorder()
    scheduler.add("job", every(hours=1), job, first_after=at(-2), on_skip=broken)
    with caplog.at_level(logging.ERROR, logger="eil_pipelines.schedule"):
        step(scheduler, clock, at(0))
    assert job.times == [at(0)]
    assert caplog.messages == ["a scheduler hook failed"]


# --------------------------------------------------------------------------- threads


class Counter:
    """A job function counting its runs; sets ``done`` at ``target`` runs."""

    def __init__(self, target: int):
        self.target = target
        self.count = 0
        self.keys: set[str] = set()
        self.done = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, firing: Firing) -> None:
        with self._lock:
            self.count += 1
            self.keys.add(firing.key)
            if self.count == self.target:
                self.done.set()


def test_ten_thousand_jobs_share_one_loop_thread_and_four_workers(clock: ManualClock) -> None:
    scheduler = Scheduler(clock=clock, workers=4)
    # Hourly grids anchored a second apart: 12:00:01, 12:00:02 … 12:59:59, 12:00:00, …
    # so ten minutes of clock fire 1,800 of the 10,000 jobs (those a multiple of
    # 3,600 away from 1 … 600), enough to use every worker without a slow test.
    counter = Counter(1_800)
    for index in range(10_000):
        anchor = T0 + timedelta(seconds=index % 3600)
        scheduler.add(
            f"job-{index:05d}", EveryTrigger(timedelta(hours=1), ZONE_UTC, anchor), counter
        )
    assert len(scheduler) == 10_000
    assert scheduler.next_wakeup() == at(seconds=1)
    before = threading.active_count()
    scheduler.start()
    try:
        assert threading.active_count() <= before + 1  # workers come only when there is work
        clock.set(at(minutes=10))
        scheduler.wakeup()
        assert counter.done.wait(30)
        assert scheduler.wait_idle(60)
        assert threading.active_count() <= before + 5
        assert counter.count == 1_800
        assert len(counter.keys) == 1_800
        assert sum(j.run_count for j in scheduler.jobs()) == 1_800
        assert scheduler.next_wakeup() == at(minutes=10, seconds=1)
    finally:
        assert scheduler.shutdown(1)


# --------------------------------------------------------------------------- the loop thread


def event_job(event: threading.Event, record: list[Firing] | None = None) -> Callable:
    """A job function that records its firing and sets ``event``."""

    def job(firing: Firing) -> None:
        if record is not None:
            record.append(firing)
        event.set()

    return job


def test_the_loop_thread_dispatches_when_the_clock_moves(clock: ManualClock) -> None:
    scheduler = Scheduler(clock=clock)
    first, second = threading.Event(), threading.Event()
    fired: list[Firing] = []
    scheduler.add("first", every(hours=1), event_job(first, fired))
    scheduler.start()
    try:
        # wakeup() after set() rules out the loop reading the time just before it moved.
        clock.set(at(1))
        scheduler.wakeup()
        assert first.wait(30)
        # The event is set inside the run: until the run is booked as ended, a
        # 14:00 fire would be skipped as an overlap.
        assert scheduler.wait_idle(60)
        # The lock is free only while the loop sleeps, so once wakeup() gets it the
        # loop has slept on the clock, and moving the clock alone must wake it.
        scheduler.wakeup()
        scheduler.add("second", every(hours=1), event_job(second, fired))
        clock.advance(timedelta(hours=1))
        assert second.wait(30)
        assert scheduler.wait_idle(60)
        assert sorted((f.key, f.scheduled_at) for f in fired) == [
            ("first", at(1)),
            ("first", at(2)),
            ("second", at(2)),
        ]
    finally:
        assert scheduler.shutdown(1)


def test_the_loop_thread_starts_a_job_added_while_it_sleeps(clock: ManualClock) -> None:
    scheduler = Scheduler(clock=clock)
    scheduler.start()
    try:
        ran = threading.Event()
        # Already due when added: add() must wake the sleeping loop.
        scheduler.add("late", every(hours=1), event_job(ran), first_after=at(-1))
        assert ran.wait(30)
    finally:
        assert scheduler.shutdown(1)


def test_shutdown_returns_true_when_runs_finish_within_grace(clock: ManualClock) -> None:
    scheduler = Scheduler(clock=clock)
    release, finished = threading.Event(), threading.Event()

    def job(firing: Firing) -> None:
        assert release.wait(30)
        finished.set()

    scheduler.add("job", every(hours=1), job)
    scheduler.start(loop=False)
    clock.set(at(1))
    assert scheduler.run_due(at(1)) == 1
    # Release the run shortly after shutdown starts waiting for it.
    timer = threading.Timer(0.05, release.set)
    timer.start()
    try:
        assert scheduler.shutdown(1) is True
        assert finished.is_set()
        assert scheduler.in_flight == 0
    finally:
        timer.cancel()
        release.set()


def test_shutdown_returns_false_when_a_run_outlives_grace(clock: ManualClock) -> None:
    scheduler = Scheduler(clock=clock, workers=1)
    gate = threading.Event()
    blocked, waiting = Recorder(gate=gate), Recorder()
    skips = Skips()
    scheduler.add("blocked", every(hours=1), blocked)
    scheduler.add("waiting", every(hours=1), waiting, on_skip=skips)
    scheduler.start()
    try:
        clock.set(at(1))
        scheduler.wakeup()
        assert blocked.started.wait(30)
        # One worker: "waiting" sits in the pool's queue behind the blocked run.
        assert scheduler.shutdown(0.2) is False
        # The run that never started no longer counts as in flight, and is reported.
        assert scheduler.in_flight == 1
        assert skips.seen == [
            (at(1), "the scheduler shut down while the run waited for a free worker")
        ]
    finally:
        gate.set()
    assert scheduler.wait_idle(60)
    assert waiting.firings == []
    # Nothing new starts after shutdown, even when more fire times come.
    assert scheduler.run_due(at(5)) == 0
