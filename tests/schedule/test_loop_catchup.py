"""Catch-up after long outages: arithmetic, not a walk; skips in batches; the lock stays free.

An ``every = "5s"`` job whose last run is a year old has 6.3 million missed
fire times.  The loop must decide what runs from the trigger in O(runs to do)
(``previous_fire`` backwards from now, ``count_between`` for the number), hand
the skipped times to ``on_skip_many`` in bounded batches, oldest first, and
never hold its lock while it asks the trigger.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.loop import SKIP_BATCH, Firing, JobOptions, Scheduler
from eil_pipelines.schedule.testing import ManualClock
from eil_pipelines.schedule.triggers import EveryTrigger

ZONE = ZoneInfo("UTC")
FIVE = timedelta(seconds=5)
NOW = datetime(2026, 12, 7, 12, 0, 2, tzinfo=UTC)  # two seconds past a grid point
NEWEST = NOW - timedelta(seconds=2)  # the last fire time before NOW
DOWNTIME = "missed while the scheduler was not running (catch_up = {})"


class Batches:
    """An ``on_skip_many`` hook keeping every batch, and the reason of each."""

    def __init__(self) -> None:
        self.batches: list[list[Firing]] = []
        self.reasons: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, firings: list[Firing], reason: str) -> None:
        with self.lock:
            self.batches.append(list(firings))
            self.reasons.add(reason)

    @property
    def times(self) -> list[datetime]:
        return [f.scheduled_at for batch in self.batches for f in batch]

    def count(self) -> int:
        with self.lock:
            return sum(len(batch) for batch in self.batches)


class Runs:
    """A job function recording the scheduled times it ran."""

    def __init__(self) -> None:
        self.times: list[datetime] = []
        self.ran = threading.Event()

    def __call__(self, firing: Firing) -> None:
        self.times.append(firing.scheduled_at)
        self.ran.set()


class NextOnly:
    """A trigger with ``next_fire`` alone: the loop falls back to a forward walk."""

    def __init__(self, inner: EveryTrigger):
        self.inner = inner

    def next_fire(self, after: datetime) -> datetime:
        return self.inner.next_fire(after)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def scheduler(clock: ManualClock) -> Iterator[Scheduler]:
    sched = Scheduler(clock=clock, workers=2)
    sched.start(loop=False)
    yield sched
    sched.shutdown(1)


def grid_times(after: datetime, until: datetime) -> int:
    """Fire times of ``every 5s`` (default grid) in ``(after, until]``, counted by hand."""
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return (until - epoch) // FIVE - (after - epoch) // FIVE


# --------------------------------------------------------------------------- count_between


def test_count_between_matches_a_walk() -> None:
    rng = random.Random(12)
    for _ in range(200):
        interval = timedelta(seconds=rng.randint(1, 5000))
        anchor = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(-9999, 9999))
        trigger = EveryTrigger(interval, ZoneInfo("Europe/Berlin"), anchor)
        after = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 99999))
        until = after + timedelta(seconds=rng.randint(-100, 200_000))
        walked = sum(1 for _ in trigger.fires(after, until))
        assert trigger.count_between(after, until) == walked, (interval, anchor, after, until)
    # Fire times on the bounds: ``after`` excluded, ``until`` included.
    trigger = EveryTrigger(FIVE, ZONE)
    assert trigger.count_between(NOW, NOW + FIVE) == 1
    assert trigger.count_between(NOW - timedelta(minutes=2), NOW) == 24
    assert trigger.count_between(NOW, NOW) == 0


def test_count_between_spans_a_year_by_arithmetic() -> None:
    trigger = EveryTrigger(FIVE, ZONE)
    year_ago = NOW - timedelta(days=365)
    assert trigger.count_between(year_ago, NOW) == 365 * 86400 // 5 == 6_307_200


# --------------------------------------------------------------------------- policies


@pytest.mark.parametrize(
    ("policy", "runs"),
    [
        ("latest", [NEWEST]),
        ("all", [NEWEST - k * FIVE for k in range(9, -1, -1)]),
        ("none", []),
    ],
)
@pytest.mark.parametrize("trigger_kind", ["arithmetic", "walk"])
def test_a_week_down_runs_what_the_policy_says_and_skips_the_rest_in_batches(
    scheduler: Scheduler, clock: ManualClock, policy: str, runs: list[datetime], trigger_kind: str
) -> None:
    # On the grid: the last run.  The forward walk (the fallback) gets a shorter outage.
    days = 7 if trigger_kind == "arithmetic" else 1
    last = NEWEST - timedelta(days=days)
    every5 = EveryTrigger(FIVE, ZONE)
    trigger = every5 if trigger_kind == "arithmetic" else NextOnly(every5)
    job, batches = Runs(), Batches()
    # A grace of 1 s makes NEWEST (2 s old) missed for "none".
    options = JobOptions(catch_up=policy, max_catch_up=10, misfire_grace=timedelta(seconds=1))  # type: ignore[arg-type]
    scheduler.add("job", trigger, job, options=options, first_after=last, on_skip_many=batches)
    scheduler.run_due(NOW)
    assert scheduler.wait_idle(60)
    assert job.times == runs
    missed = grid_times(last, NOW)
    assert missed == days * 17280
    assert batches.count() == missed - len(runs)
    # Oldest first, every one once, none of those that ran, in bounded batches.
    skipped = batches.times
    assert skipped[0] == last + FIVE
    assert all(b - a == FIVE for a, b in itertools.pairwise(skipped))
    assert not set(skipped) & set(runs)
    assert max(len(batch) for batch in batches.batches) == SKIP_BATCH
    assert len(batches.batches) == -(-(missed - len(runs)) // SKIP_BATCH)
    assert batches.reasons == {DOWNTIME.format(policy)}
    assert scheduler.get("job").next_fire == NEWEST + FIVE  # type: ignore[union-attr]


def test_a_year_down_runs_at_once_and_shutdown_is_honoured_mid_skips(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The loop thread: the run starts before 6.3 million skips are handed over, and a
    shutdown during the handing over returns (what is left is logged)."""
    last = NEWEST - timedelta(days=365)
    scheduler = Scheduler(clock=clock, workers=2)
    job, batches = Runs(), Batches()
    enough = threading.Event()

    def hook(firings: list[Firing], reason: str) -> None:
        batches(firings, reason)
        if len(batches.batches) >= 3:
            enough.set()

    caplog.set_level(logging.INFO, logger="eil_pipelines.schedule")
    scheduler.add("job", EveryTrigger(FIVE, ZONE), job, first_after=last, on_skip_many=hook)
    scheduler.start()
    try:
        assert job.ran.wait(30)
        assert enough.wait(30)
    finally:
        scheduler.shutdown(0)
    assert job.times == [NEWEST]
    missed = grid_times(last, NOW)
    assert missed == 6_307_200
    # The decision was counted, not walked: the log gives the full count at once.
    assert any(f"{missed:,} fire times were due at once" in m for m in caplog.messages)
    assert batches.times[:3] == [last + FIVE, last + 2 * FIVE, last + 3 * FIVE]
    assert SKIP_BATCH * 3 <= batches.count() < missed - 1
    assert any("were not handed over:" in m for m in caplog.messages)


def test_the_lock_is_free_while_the_trigger_is_asked_about_missed_times(
    scheduler: Scheduler,
) -> None:
    joined: list[bool] = []

    class Watching(EveryTrigger):
        def previous_fire(self, before: datetime) -> datetime:
            # Another thread must get the scheduler's lock meanwhile.
            other = threading.Thread(target=scheduler.jobs)
            other.start()
            other.join(2)
            joined.append(not other.is_alive())
            return super().previous_fire(before)

    job = Runs()
    options = JobOptions(catch_up="all", max_catch_up=3)
    last = NEWEST - timedelta(hours=1)
    scheduler.add("job", Watching(FIVE, ZONE), job, options=options, first_after=last)
    scheduler.run_due(NOW)
    assert scheduler.wait_idle(60)
    assert len(job.times) == 3
    assert joined and all(joined)


def test_the_per_firing_hook_still_gets_every_skip(scheduler: Scheduler) -> None:
    seen: list[tuple[datetime, str]] = []
    job = Runs()
    last = NEWEST - timedelta(hours=1)
    scheduler.add(
        "job",
        EveryTrigger(FIVE, ZONE),
        job,
        first_after=last,
        on_skip=lambda firing, reason: seen.append((firing.scheduled_at, reason)),
    )
    scheduler.run_due(NOW)
    assert scheduler.wait_idle(60)
    assert len(seen) == grid_times(last, NOW) - 1 == 719
    assert {reason for _, reason in seen} == {DOWNTIME.format("latest")}


def test_a_loop_that_got_late_says_so_rather_than_blaming_downtime(
    scheduler: Scheduler, clock: ManualClock
) -> None:
    batches = Batches()
    scheduler.add("job", EveryTrigger(FIVE, ZONE), Runs(), on_skip_many=batches)
    # The scheduler was running; it got to the job 30 s late (no jump of the clock).
    scheduler.run_due(NOW + timedelta(seconds=30))
    assert scheduler.wait_idle(60)
    assert batches.count() == 5
    (reason,) = batches.reasons
    assert "not running" not in reason
    assert (
        reason
        == "missed: the scheduler reached it late, after later fire times (catch_up = latest)"
    )


def test_a_trigger_that_does_not_move_forward_stops_the_job_not_the_loop(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    class Stuck:
        def next_fire(self, after: datetime) -> datetime:
            return NEWEST  # the same instant, whatever is asked

    job, other = Runs(), Runs()
    scheduler.add("stuck", Stuck(), job, first_after=NEWEST - FIVE)
    scheduler.add("other", EveryTrigger(FIVE, ZONE), other, first_after=NEWEST - FIVE)
    with caplog.at_level(logging.ERROR, logger="eil_pipelines.schedule"):
        scheduler.run_due(NOW)
        assert scheduler.wait_idle(60)
    assert job.times == [NEWEST]  # its fire time ran; it has no next one
    assert other.times == [NEWEST]
    assert scheduler.get("stuck").next_fire is None  # type: ignore[union-attr]
    assert any("stuck: its trigger failed; it will not fire again" in m for m in caplog.messages)
