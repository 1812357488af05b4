"""The scheduler loop: one thread, a heap of fire times, a bounded worker pool.

The loop thread sleeps on a condition variable until the earliest entry of
its heap is due, or until something wakes it (a job added or removed, a run
finished, shutdown), and at least once a minute, so that a wall clock that
jumped or a machine that slept is noticed within a minute.  There is no thread
per job: 10,000 jobs cost one heap and the same worker threads as ten.

Every policy that concerns *time* lives here, generic over jobs:

* **Missed fire times** (downtime, a suspended laptop, a clock that jumped
  forward, a loop that got to a job late): when a job is due, every fire time
  between its planned one and now is due at once.  ``catch_up`` decides:
  ``latest`` runs only the most recent, ``all`` runs each in order (at most
  ``max_catch_up``, the most recent), ``none`` runs only a fire time that is
  not older than ``misfire_grace``.  The others are reported as skipped, with
  the true cause: downtime (fire times before the job was registered), a
  jump of the wall clock, or a loop that reached them late.  With ``all`` the
  runs go one after another, oldest first, never side by side.

  Catch-up is arithmetic, not a walk.  The loop sets the job aside, releases
  its lock, and asks the trigger for the runs to do, backwards from now with
  ``previous_fire`` (O(runs to do)), and for the number missed with
  ``count_between`` when it has one (``EveryTrigger``: by arithmetic).  A
  trigger with ``next_fire`` alone is walked forwards, outside the lock,
  checking for a shutdown as it goes.  Skipped times are made on demand
  (``fires``, by arithmetic for ``EveryTrigger``) and handed to the job's
  ``on_skip_many`` hook in batches of :data:`SKIP_BATCH`, oldest first, one
  batch per turn of the loop; ``on_skip`` (one call per time) still works.
  A year of ``every = "5s"`` down (6.3 million fire times) is decided in
  milliseconds; its skips follow in the background.
* **Overlap**: a fire time that comes while the job's previous run is still
  going is skipped (``overlap = "skip"``) or queued behind it (``"queue"``).
  A run handed to the workers that none could take yet (every worker busy)
  is *waiting*, not *going*: a fire time meanwhile is skipped as "the
  previous run was still waiting for a free worker"; with ``queue`` it waits
  behind it.
* **Fairness**: runs start oldest first, but at most ``workers -
  reserved_workers`` runs that may be long go at once.  A run is short when
  the job's ``expected_duration``, or the moving average of its own runs, is
  at most ``short_run`` (1 s), or, while long runs hold every worker they
  may use, at most a :data:`SHORT_RATIO`-th (a quarter) of the shortest of
  them (one of a job never run counts as endless); a job never run counts as
  long.  So a burst of long reports holds all workers but one (by default),
  and a short, frequent job runs beside them, even on a loaded machine where
  its runs take longer than ``short_run``.  A job's own backlog (``catch_up = "all"``, retries,
  ``overlap = "queue"``) waits behind its run in flight, so one job never
  holds more than one worker.
* **Retries**: a failed run is tried again after ``retry_delay``, doubled at
  each attempt, up to ``retries`` times, for the same scheduled time.  A retry
  that comes while another run of the job is going waits behind it.
* **Timeouts**: ``timeout`` after a run starts, the job's ``on_timeout``
  hook is called with the run (the pipeline service interrupts its query),
  even if the job was replaced or removed meanwhile.
* **Jitter**: a run starts up to ``jitter`` after its fire time; the
  scheduled time the run stands for is unchanged.

Replacing a job (``add`` with a key in use) carries its counters, its run in
flight, its pending retries and jittered starts over to the new one, which
runs them (a failed run is retried with the new definition: an edit that
fixes the failure gets its report); the new trigger alone decides the fire
times after that.  A run of the old version that fails later is retried as
the new version's options say.  A removed job's pending fires, starts and
retries are dropped, and a run of it that fails later is not retried.

Time is kept in UTC inside: fire times come from triggers in their own zone,
where Python orders two datetimes of one zone by their clock readings and
ignores ``fold`` (02:30 summer time sorts after 02:00 winter time on a
fall-back day), so the heap is keyed by UTC instants and every delay is added
in UTC.  ``Firing.scheduled_at`` stays in the trigger's zone.

Hooks (``on_skip``, ``on_skip_many``, ``on_timeout``) are called without the
scheduler's lock held, so they may take their own locks and call back into the
scheduler.  Nothing is logged under the lock either.

**Clock jumps.** With a clock that has ``monotonic()`` (:class:`SystemClock`,
the manual test clock), the loop compares the wall clock's progress with the
monotonic clock's at each wake.  When they part by more than
``jump_threshold`` (2 s), one line on the ``eil_pipelines.scheduler`` logger
says so.  Forwards, the fire times jumped over are missed and handled as
after downtime, their skip reason naming the jump.  Backwards, every job's
next fire is recomputed from the new wall time (outside the lock, in
chunks), so the next fire is the next real one rather than the hour (or
whatever the jump was) ahead; fire times that come round a second time reach
the job again, and the run ledger, unique per (pipeline, scheduled time),
refuses those that already ran.  Retries, delayed starts and timeouts count
real time: they move with the jump, so they keep their length.

The clock is a seam: :class:`SystemClock` in production, a fake one in
tests, which drive time by hand instead of sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import sys
import threading
import time as _time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from ..errors import EilError

log = logging.getLogger("eil_pipelines.schedule")
#: Clock jumps are told on their own logger, so an operator can keep them visible.
clock_log = logging.getLogger("eil_pipelines.scheduler")

#: The longest the loop sleeps without looking at the clock.  A timed wait
#: runs on a monotonic clock, which does not move while the machine sleeps
#: and does not follow changes to the wall clock.
_MAX_WAIT = 60.0

#: The heap is rebuilt without its stale entries (those of replaced and removed
#: jobs, and timeouts of finished runs) once it holds more than twice as many
#: entries as there are jobs, and at least this many (a job has one live entry,
#: its next fire, plus a retry or a delayed start now and then).
_COMPACT_MIN = 1024

#: Skipped fire times are handed to a job's ``on_skip_many`` at most this many
#: at a time: one ledger transaction each, short enough that the loop looks at
#: its heap (and at a shutdown) between two.
SKIP_BATCH = 1000

#: Jobs whose next fire is recomputed after the wall clock went back, per turn
#: of the lock: the lock is released between two chunks.
_RECOMPUTE_CHUNK = 500

#: A run counts as short, beside long runs that hold every worker they may
#: use, when it is expected to take at most 1/SHORT_RATIO of the shortest of them.
SHORT_RATIO = 4.0
_INF = float("inf")

#: A trigger without ``previous_fire`` is walked forwards to find its missed
#: times; the walk checks for a shutdown this often.
_WALK_CHUNK = 10_000

#: A hook to call once the lock is released: the function and its arguments.
_Hook = tuple[Callable[..., Any], tuple[Any, ...]]

CatchUp = Literal["latest", "all", "none"]
Overlap = Literal["skip", "queue"]


class Clock(Protocol):
    """Where the loop reads the time and how it waits.

    A clock may also have ``monotonic() -> float`` (seconds, never going back,
    not moved by changes to the wall clock): the loop then compares the two to
    notice the wall clock jumping (see :class:`Scheduler`).
    """

    def now(self) -> datetime:
        """The current time, aware."""
        ...

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Wait on ``condition`` (held by the caller) for at most ``timeout`` seconds."""
        ...


class SystemClock:
    """The real clock: ``datetime.now(UTC)``, ``time.monotonic`` and a real timed wait."""

    def now(self) -> datetime:
        """The wall clock, aware, in UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds on a clock that only moves forwards and ignores wall-clock changes."""
        return _time.monotonic()

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Block until notified or ``timeout`` seconds pass."""
        condition.wait(timeout)


class TriggerLike(Protocol):
    """What the loop needs of a trigger.

    Optional, used when present: ``previous_fire(before)`` (the last fire
    strictly before), so the fire times to catch up are found backwards from
    now in O(runs to do); ``count_between(after, until)`` (how many fire times
    lie in ``(after, until]``), so a catch-up is counted without a walk.
    """

    def next_fire(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after``."""
        ...


@dataclass(frozen=True)
class Firing:
    """One run of a job: the scheduled time it stands for and the attempt."""

    key: str
    """The job's key."""
    scheduled_at: datetime
    """The fire time this run stands for."""
    attempt: int = 1
    """1, then 2, 3 … for retries of the same scheduled time."""
    due_at: datetime | None = None
    """When the run was meant to start (the fire time plus jitter, or the retry time)."""


@dataclass
class JobOptions:
    """How the loop treats one job's fire times."""

    catch_up: CatchUp = "latest"
    """Missed fire times: run the ``latest``, ``all`` (up to ``max_catch_up``) or ``none``."""
    max_catch_up: int = 10
    """With ``catch_up = "all"``: at most this many missed runs."""
    misfire_grace: timedelta = timedelta(seconds=60)
    """A fire time at most this old is on time, not missed (matters for ``none``)."""
    overlap: Overlap = "skip"
    """A fire time during a run: ``skip`` it or ``queue`` it."""
    retries: int = 0
    """How many times a failed run is tried again."""
    retry_delay: timedelta = timedelta(minutes=1)
    """Wait before the first retry; doubles each attempt."""
    timeout: timedelta | None = None
    """After this long, ``on_timeout`` is called for the run."""
    jitter: timedelta | None = None
    """A random delay of up to this long before each run."""
    expected_duration: timedelta | None = None
    """How long a run takes, for the workers' fairness rule; None: learned from its runs."""


#: What a job's function returns: True (or None) for success, False for a failure to retry.
JobFunction = Callable[[Firing], Any]
#: A skip hook taking a batch: the firings skipped (oldest first) and the reason.
SkipManyHook = Callable[[list[Firing], str], None]


@dataclass
class Job:
    """A registered job and its counters (read under the scheduler's lock)."""

    key: str
    trigger: TriggerLike
    func: JobFunction
    options: JobOptions
    on_timeout: Callable[[Firing], None] | None = None
    on_skip: Callable[[Firing, str], None] | None = None
    kind: str = "job"
    next_fire: datetime | None = None
    generation: int = 0
    running: int = 0
    """Runs in flight: started, or handed to the workers and waiting for one."""
    waiting: int = 0
    """Of those, runs no worker has started yet."""
    queue: deque[Firing] | None = None
    """Runs waiting behind the one in flight, oldest first; None until one waits."""
    run_count: int = 0
    error_count: int = 0
    last_run: datetime | None = None
    last_error: str | None = None
    replaced_by: Job | None = field(default=None, repr=False)
    """The job that took this one's key while a run of it was in flight."""
    owed: dict[int, tuple[datetime, int, Any]] = field(default_factory=dict, repr=False)
    """Its retries and delayed starts waiting in the heap, by sequence number: what
    a replacement takes over, found without scanning the heap."""
    on_skip_many: SkipManyHook | None = None
    """Takes skipped fire times in batches (preferred to ``on_skip`` when given)."""
    fire_seq: int = -1
    """The sequence number of its live fire entry in the heap (others are stale)."""
    downtime_until: datetime | None = None
    """Registered with fire times already past: those up to this instant (UTC) were
    missed while the scheduler was not running."""
    average: float | None = None
    """Seconds a run takes, a moving average of its runs (None before the first)."""


@dataclass(frozen=True)
class JobInfo:
    """A snapshot of a job for listings."""

    key: str
    kind: str
    next_fire: datetime | None
    last_run: datetime | None
    run_count: int
    error_count: int
    running: int
    last_error: str | None


@dataclass
class _SkipSpan:
    """Skipped fire times of one job, made on demand, a batch at a time: ``first``
    and the fire times after it that come before ``stop`` (UTC)."""

    job: Job
    first: datetime
    stop: datetime
    reason: str
    count: int | None = None
    """How many, when the trigger could count them."""
    delivered: int = 0
    last: datetime | None = None
    """The newest skipped time handed over so far."""
    _source: Iterator[datetime] | None = None

    def take(self, limit: int) -> list[Firing]:
        """The next ``limit`` (or fewer) skipped firings; empty when done."""
        if self._source is None:
            self._source = itertools.chain((self.first,), self._after_first())
        key = self.job.key
        out = [Firing(key, moment) for moment in itertools.islice(self._source, limit)]
        self.delivered += len(out)
        if out:
            self.last = out[-1].scheduled_at
        return out

    def _after_first(self) -> Iterator[datetime]:
        trigger = self.job.trigger
        fires = getattr(trigger, "fires", None)
        if fires is not None:  # a trigger may enumerate faster than next_fire calls
            yield from fires(self.first, self.stop - timedelta(microseconds=1))
            return
        moment = trigger.next_fire(self.first)
        while _utc(moment) < self.stop:
            yield moment
            moment = trigger.next_fire(moment)


@dataclass
class _Plan:
    """What a catch-up decided, computed outside the lock: runs, skips, the next fire."""

    job: Job
    runs: list[datetime]
    skipped: _SkipSpan | None
    following: datetime | None
    missed: int | None  # every due time, run or skipped (None: not counted)


@dataclass(frozen=True)
class _JumpBack:
    """The wall clock went back: from where it should be to where it is (UTC)."""

    expected: datetime
    wall: datetime


@dataclass
class _Run:
    """A run handed to the workers."""

    job: Job
    firing: Firing
    token: int
    short: bool
    waits: bool = False
    """Whether it had to wait for a run to end before a worker could take it."""
    expected: float | None = None
    """Seconds it is expected to take (None: unknown, as for a job never run)."""


# Heap entry kinds, ordered so that at the same instant a timeout is handled
# before new fires are dispatched.
_TIMEOUT, _RETRY, _FIRE, _START = 0, 1, 2, 3

#: A heap entry: (when, kind, sequence, job key, job generation, payload).
_Entry = tuple[datetime, int, int, str, int, Any]


class Scheduler:
    """One loop thread over a heap of fire times, and a pool of worker threads.

    Thread-safe: jobs may be added and removed from any thread while it runs.

    ``reserved_workers`` (default: 1 when there are at least 2 workers) are
    kept for runs expected to take at most ``short_run``: at most
    ``workers - reserved_workers`` runs that may be long go at once, so a burst
    of long runs never holds every worker.  ``jump_threshold`` is how far the
    wall clock may move apart from the monotonic one before the loop treats it
    as a jump (only with a clock that has ``monotonic()``).

    ``switch_interval``: while the loop thread runs, Python's thread switch
    interval is at most this (seconds; None leaves it alone).  A thread waking
    from a timed wait needs the interpreter lock, and runs busy in Python code
    hand it over only every switch interval (5 ms by default): with three of
    them, the loop waited several intervals for its turn (p99 35-60 ms on a
    quiet machine).  1 ms cuts that about tenfold, for a small cost in
    switching; the old value is put back at :meth:`shutdown`.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        workers: int = 4,
        rng: random.Random | None = None,
        name: str = "eil-scheduler",
        reserved_workers: int | None = None,
        short_run: timedelta = timedelta(seconds=1),
        jump_threshold: timedelta = timedelta(seconds=2),
        switch_interval: float | None = 0.001,
    ):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if reserved_workers is None:
            reserved_workers = 1 if workers >= 2 else 0
        if not 0 <= reserved_workers < workers:
            raise ValueError("reserved_workers must be at least 0 and fewer than workers")
        self.clock: Clock = clock or SystemClock()
        self.workers = workers
        self.reserved_workers = reserved_workers
        self.short_run = short_run
        self.jump_threshold = jump_threshold
        self.switch_interval = switch_interval
        self._switch_saved: tuple[float, float] | None = None  # (ours, the one we replaced)
        self._rng = rng or random.Random()
        self._name = name
        mutex = threading.RLock()  # one lock, three conditions on it
        self._lock = threading.Condition(mutex)
        self._jobs: dict[str, Job] = {}
        # (when, kind, sequence, job key, job generation, payload): a stale generation
        # marks an entry of a removed or replaced job, dropped when it surfaces, or
        # with every other stale entry once they outnumber the live ones (_compact).
        # Times in the heap are UTC, so that it orders instants, not clock readings.
        self._heap: list[_Entry] = []
        self._compact_at = _COMPACT_MIN  # the heap size that triggers a rebuild
        self._seq = itertools.count()
        # Generations are unique across the scheduler: a job removed and added
        # again under the same key must not revive the old job's entries.
        self._generations = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._accepting = True
        self._in_flight = 0
        self._active: set[int] = set()  # tokens of runs in flight, for their timeouts
        self._idle = threading.Condition(mutex)
        # The workers: runs wait in two queues, those expected to be short and
        # the others, each oldest first (see _take).
        self._work = threading.Condition(mutex)
        self._open = False  # whether runs may be handed to workers
        self._closed = False  # workers leave once the queues are empty
        self._ready_short: deque[_Run] = deque()
        self._ready_long: deque[_Run] = deque()
        self._threads: list[threading.Thread] = []
        self._idle_workers = 0
        self._long_running = 0  # runs started from the long queue, not finished
        # What those long runs are expected to take, by token (inf: unknown).
        self._long_expected: dict[int, float] = {}
        self._taken = 0  # runs started by a worker, not finished
        # Catch-ups found by a dispatch, planned once the lock is released.
        self._catch_ups: list[tuple[Job, datetime, datetime]] = []
        # Skipped fire times still to hand to their jobs' hooks, oldest first;
        # one batch at a time, in order (_deliver holds this lock while it hands one).
        self._skips: deque[_SkipSpan] = deque()
        self._delivering = threading.Lock()
        # The last (wall, monotonic) reading, and the last jump forward seen.
        self._reading: tuple[datetime, float] | None = None
        self._jump: tuple[datetime, datetime] | None = None

    # -- jobs -----------------------------------------------------------------------

    def add(
        self,
        key: str,
        trigger: TriggerLike,
        func: JobFunction,
        *,
        options: JobOptions | None = None,
        first_after: datetime | None = None,
        on_timeout: Callable[[Firing], None] | None = None,
        on_skip: Callable[[Firing, str], None] | None = None,
        on_skip_many: SkipManyHook | None = None,
        kind: str = "job",
    ) -> Job:
        """Register (or replace) a job; its first fire is the first after ``first_after`` (default now).

        Passing the last fire time that ran (from a run ledger) as
        ``first_after`` makes fire times missed since then due at once, where
        the ``catch_up`` policy decides what runs.  Skipped fire times go to
        ``on_skip_many`` in batches (oldest first) when given, else one by one
        to ``on_skip``, else to the log.
        """
        with self._lock:
            now = self._now()
            after = first_after or now
            next_fire = trigger.next_fire(after)
            old = self._jobs.get(key)
            # The loop sleeps until the earliest entry: it needs waking only when
            # that changes, not for each of 10,000 jobs registered.
            wake = old is not None and self._waits_for(key, old.generation)
            job = Job(
                key=key,
                trigger=trigger,
                func=func,
                options=options or JobOptions(),
                on_timeout=on_timeout,
                on_skip=on_skip,
                on_skip_many=on_skip_many,
                kind=kind,
                next_fire=next_fire,
                generation=next(self._generations),
                downtime_until=now if _utc(next_fire) <= now else None,
            )
            owed: list[tuple[int, tuple[datetime, int, Any]]] = []
            if old is not None:
                # Counters and the running state carry over a reschedule: a
                # changed file must not let an overlapping run start.  The run
                # in flight books its end on the job that replaced its own.
                job.running, job.waiting = old.running, old.waiting
                job.run_count, job.error_count = old.run_count, old.error_count
                job.last_run, job.last_error = old.last_run, old.last_error
                job.average = old.average
                job.queue, old.queue = old.queue, None
                old.replaced_by = job
                # Retries and jittered starts are owed runs of scheduled times
                # that already came: the new version makes them.  Fires are not:
                # the new trigger decides those.
                owed, old.owed = sorted(old.owed.items()), {}
            self._jobs[key] = job
            for _seq, (when, entry_kind, payload) in owed:
                self._owe(job, when, entry_kind, payload)
            entry = self._push_fire(job, next_fire)
            self._drop_stale()  # entries of the job replaced may be on top
            if wake or self._heap[0] is entry:
                self._lock.notify_all()
            return job

    def remove(self, key: str) -> bool:
        """Unschedule a job; a run in flight finishes.  False when there was no such job."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                return False
            wake = self._waits_for(key, job.generation)
            del self._jobs[key]
            # Its heap entries go stale: no job under the key has their generation.
            job.queue = None
            if wake:
                self._lock.notify_all()
            return True

    def get(self, key: str) -> Job | None:
        """The job registered under ``key``."""
        with self._lock:
            return self._jobs.get(key)

    def jobs(self) -> list[JobInfo]:
        """A snapshot of every job, in key order."""
        with self._lock:
            return [
                JobInfo(
                    j.key,
                    j.kind,
                    j.next_fire,
                    j.last_run,
                    j.run_count,
                    j.error_count,
                    j.running,
                    j.last_error,
                )
                for j in sorted(self._jobs.values(), key=lambda j: j.key)
            ]

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    # -- running ----------------------------------------------------------------------

    def start(self, *, loop: bool = True) -> None:
        """Start the worker pool and the loop thread.

        ``loop=False`` starts only the pool: the caller then drives the
        scheduler with :meth:`run_due`, as tests with a manual clock do.
        Worker threads start when there is work, up to ``workers``.
        """
        with self._lock:
            self._open = True
            if self._reading is None:
                self._reading = self._read_clock()
            if loop and self._thread is None:
                current = sys.getswitchinterval()
                if self.switch_interval is not None and self.switch_interval < current:
                    sys.setswitchinterval(self.switch_interval)
                    self._switch_saved = (sys.getswitchinterval(), current)
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no run is in flight (or ``timeout`` seconds pass); True when idle."""
        deadline = None if timeout is None else _time.monotonic() + timeout
        with self._lock:
            while self._in_flight:
                remaining = None if deadline is None else deadline - _time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
            return True

    def submit(self, key: str, firing: Firing) -> bool:
        """Hand ``firing`` of job ``key`` to the workers now, outside its schedule.

        For a run that waited (for other jobs, or a condition) and may start: it
        is queued behind a run of the same job in flight, never skipped as an
        overlap.  False when the job is unknown or the scheduler is stopping.
        """
        hooks: list[_Hook] = []
        with self._lock:
            job = self._jobs.get(key)
            if job is None or not self._accepting or not self._open:
                return False
            if job.running:
                _wait(job, [firing])
            else:
                self._start(job, firing, hooks)
        self._call_hooks(hooks)
        return True

    def wakeup(self) -> None:
        """Make the loop look at the clock now (after a clock change, say)."""
        with self._lock:
            self._lock.notify_all()

    def shutdown(self, grace: float | None = None) -> bool:
        """Stop starting runs; wait up to ``grace`` seconds (None: forever) for runs in flight.

        Runs waiting for a free worker are dropped at once, logged and reported
        to the skip hooks (first attempts: a retry's time has its row).  Skipped fire
        times not yet handed to their hooks are handed within the same grace.
        Returns True when every run finished within the grace period.
        """
        deadline = None if grace is None else _time.monotonic() + grace
        dropped: list[_Run] = []
        with self._lock:
            self._accepting = False
            self._stopping = True
            self._lock.notify_all()
            # A run a worker was free for has as good as started: it goes on.
            for queue in (self._ready_short, self._ready_long):
                kept = [run for run in queue if not run.waits]
                dropped.extend(run for run in queue if run.waits)
                queue.clear()
                queue.extend(kept)
            for run in dropped:
                self._forget(run)
            while self._in_flight:
                remaining = None if deadline is None else deadline - _time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._idle.wait(remaining)
            finished = self._in_flight == 0
            self._closed = True
            self._work.notify_all()
        hooks: list[_Hook] = []
        for run in dropped:
            log.warning(
                "not run: %s at %s: the scheduler shut down first",
                run.job.key,
                run.firing.scheduled_at.isoformat(),
            )
            if run.firing.attempt == 1:  # a retry's time already has its row
                self._skip(_latest(run.job), [run.firing], _SHUTDOWN_SKIP, hooks)
        self._call_hooks(hooks)
        if self._thread is not None:
            # The loop may be handing skipped times to their hooks (ledger rows):
            # let it finish them within the grace, or they get no row.
            left = None if deadline is None else max(1.0, deadline - _time.monotonic())
            self._thread.join(timeout=left)
        if self._switch_saved is not None:
            ours, theirs = self._switch_saved
            self._switch_saved = None
            if sys.getswitchinterval() == ours:  # unless someone changed it since
                sys.setswitchinterval(theirs)
        self._deliver_skips(deadline)
        if finished:
            for thread in list(self._threads):
                thread.join(timeout=1)
        return finished

    @property
    def in_flight(self) -> int:
        """Runs in flight: executing, or handed to the workers and not started yet."""
        with self._lock:
            return self._in_flight

    def next_wakeup(self) -> datetime | None:
        """When the loop next has something to do (the earliest valid heap entry), in UTC."""
        with self._lock:
            self._drop_stale()
            return self._heap[0][0] if self._heap else None

    def run_due(self, now: datetime | None = None) -> int:
        """Dispatch everything due at ``now``; returns how many runs were started.

        The loop calls this after every wake; tests call it directly to step
        a scheduler without its thread.  Here every skipped time is handed to
        its hook before it returns.
        """
        hooks: list[_Hook] = []
        moment = _utc(now or self.clock.now())
        with self._lock:
            recompute = self._check_clock(hooks)
        if recompute is not None:
            self._recompute(recompute)
        with self._lock:
            started = self._dispatch(moment, hooks)
        started += self._catch_up(hooks)
        self._call_hooks(hooks)
        self._deliver_skips(None)
        return started

    # -- internals --------------------------------------------------------------------

    def _now(self) -> datetime:
        return _utc(self.clock.now())

    def _read_clock(self) -> tuple[datetime, float] | None:
        """(wall, monotonic) read together, or None without a monotonic clock."""
        monotonic = getattr(self.clock, "monotonic", None)
        if monotonic is None:
            return None
        before = monotonic()
        wall = self._now()
        after = monotonic()
        if after - before > self.jump_threshold.total_seconds() / 4:
            # The thread was held up between the reads (a loaded machine): the
            # pair could pass for a jump.  Read again at the next turn.
            return None
        return wall, (before + after) / 2

    def _push(
        self,
        when: datetime,
        kind: int,
        key: str,
        generation: int,
        payload: Any,
        seq: int | None = None,
    ) -> _Entry:
        if seq is None:
            seq = next(self._seq)
        entry = (_utc(when), kind, seq, key, generation, payload)
        heapq.heappush(self._heap, entry)
        if len(self._heap) > self._compact_at and len(self._heap) > 2 * len(self._jobs):
            self._compact()
        return entry

    def _push_fire(self, job: Job, when: datetime) -> _Entry:
        """Push ``job``'s next fire; any other fire entry of it goes stale."""
        # The entry is live before it is pushed: the push may compact the heap.
        job.next_fire, job.fire_seq = when, next(self._seq)
        return self._push(when, _FIRE, job.key, job.generation, when, job.fire_seq)

    def _owe(self, job: Job, when: datetime, kind: int, payload: Any) -> _Entry:
        """Push a retry or delayed start of ``job``, indexed on the job for a replacement."""
        entry = self._push(when, kind, job.key, job.generation, payload)
        job.owed[entry[2]] = (entry[0], kind, payload)
        return entry

    def _compact(self) -> None:
        """Rebuild the heap without its stale entries (they outnumber the live ones)."""
        self._heap[:] = [entry for entry in self._heap if not self._is_stale(entry)]
        heapq.heapify(self._heap)
        # Live entries alone may be many (timeouts of runs in flight): wait for the
        # heap to double again before the next pass, so a push costs O(1) on average.
        self._compact_at = max(2 * len(self._heap), _COMPACT_MIN)

    def _waits_for(self, key: str, generation: int) -> bool:
        """Whether the entry the loop waits for (the earliest live one) is the job's."""
        self._drop_stale()
        return bool(self._heap) and self._heap[0][3] == key and self._heap[0][4] == generation

    def _is_stale(self, entry: _Entry) -> bool:
        _, kind, seq, key, generation, payload = entry
        if kind == _TIMEOUT:
            # A timeout belongs to a run, not to the job's current version:
            # it holds as long as the run does.
            return payload[2] not in self._active
        job = self._jobs.get(key)
        if job is None or job.generation != generation:
            return True
        return kind == _FIRE and seq != job.fire_seq

    def _drop_stale(self) -> None:
        while self._heap and self._is_stale(self._heap[0]):
            heapq.heappop(self._heap)

    def _dispatch(self, now: datetime, hooks: list[_Hook]) -> int:
        """Handle every heap entry due at ``now`` (UTC); the lock is held."""
        started = 0
        while self._heap and self._heap[0][0] <= now and self._accepting:
            entry = heapq.heappop(self._heap)
            if self._is_stale(entry):
                continue
            _, kind, seq, key, _generation, payload = entry
            if kind == _TIMEOUT:
                owner, firing, _token = payload
                if owner.on_timeout is not None:
                    hooks.append((owner.on_timeout, (firing,)))
                continue
            job = self._jobs[key]
            if kind == _FIRE:
                started += self._fire(job, payload, now, hooks)
            else:  # _START, _RETRY
                job.owed.pop(seq, None)
                started += self._start(job, payload, hooks)
        return started

    def _loop(self) -> None:
        # The lock is held throughout except while the clock waits, while hooks
        # run, while catch-ups are planned and skips handed over, so the time the
        # wait is based on is read just before it.
        self._lock.acquire()
        try:
            while not self._stopping:
                hooks: list[_Hook] = []
                recompute: _JumpBack | None = None
                try:
                    recompute = self._check_clock(hooks)
                    self._dispatch(self._now(), hooks)
                except Exception:  # the loop must outlive any one job's trouble
                    log.exception("the scheduler loop failed while dispatching")
                if hooks or self._catch_ups or recompute is not None or self._skips:
                    self._lock.release()
                    try:
                        if recompute is not None:
                            self._recompute(recompute)
                        self._catch_up(hooks)
                        self._call_hooks(hooks)
                        self._deliver_skips(None, batches=1)
                    finally:
                        self._lock.acquire()
                    continue  # the clock moved on meanwhile
                self._drop_stale()
                timeout = _MAX_WAIT
                if self._heap:
                    due_in = (self._heap[0][0] - self._now()).total_seconds()
                    timeout = min(timeout, max(0.0, due_in))
                self.clock.wait(self._lock, timeout)
        except BaseException:
            log.exception("the scheduler loop stopped")
            raise
        finally:
            self._lock.release()

    # -- the wall clock -----------------------------------------------------------------

    def _check_clock(self, hooks: list[_Hook]) -> _JumpBack | None:
        """Compare the wall clock with the monotonic one since the last look (lock held).

        A jump forward needs nothing more than the log line: the fire times it
        skipped are due and the catch-up policy handles them, with the jump as
        their reason.  After a jump back, returns it: every job's next fire is
        then recomputed from the new wall time, outside the lock.  Either way the
        delays that count real time (retries, delayed starts, timeouts) move
        with the wall clock, so they keep their length.
        """
        reading = self._read_clock()
        if reading is None:
            return None
        last, self._reading = self._reading, reading
        if last is None:
            return None
        wall, mono = reading
        expected = last[0] + timedelta(seconds=mono - last[1])
        jump = wall - expected
        if abs(jump) <= self.jump_threshold:
            return None
        self._shift_delays(jump)
        if jump > timedelta(0):
            self._jump = (expected, wall)
            message = (
                "the wall clock jumped forward by %s (from %s to %s, by the monotonic clock):"
                " fire times in between are missed, and each job's catch_up decides what runs"
            )
            hooks.append((clock_log.warning, (message, jump, _iso(expected), _iso(wall))))
            return None
        return _JumpBack(expected, wall)

    def _shift_delays(self, jump: timedelta) -> None:
        """Move retries, delayed starts and timeouts by ``jump``: they count real time."""
        moved: list[_Entry] = []
        for entry in self._heap:
            when, kind, seq, key, generation, payload = entry
            if kind != _FIRE:
                entry = (when + jump, kind, seq, key, generation, payload)
                job = self._jobs.get(key)
                if job is not None and seq in job.owed:
                    job.owed[seq] = (entry[0], kind, payload)
            moved.append(entry)
        self._heap[:] = moved
        heapq.heapify(self._heap)

    def _recompute(self, back: _JumpBack) -> None:
        """After a jump back: each job's next fire becomes the first after the new time.

        Triggers are asked outside the lock, a chunk of jobs at a time; a job
        replaced or removed meanwhile is left to its new version.  One log line
        says what happened.
        """
        wall = back.wall
        with self._lock:
            jobs = list(self._jobs.values())
        moved = 0
        for start in range(0, len(jobs), _RECOMPUTE_CHUNK):
            if self._stopping:
                return
            found: list[tuple[Job, datetime]] = []
            for job in jobs[start : start + _RECOMPUTE_CHUNK]:
                try:
                    found.append((job, job.trigger.next_fire(wall)))
                except Exception:
                    log.exception("job %s: its trigger failed", job.key)
            with self._lock:
                for job, following in found:
                    current = job.next_fire
                    if self._jobs.get(job.key) is not job or current is None:
                        continue
                    if _utc(following) < _utc(current):
                        self._push_fire(job, following)
                        moved += 1
                self._lock.notify_all()
        clock_log.warning(
            "the wall clock went back by %s (from %s to %s, by the monotonic clock):"
            " every job's next fire time is recomputed from the new time (%d fire earlier)",
            back.expected - wall,
            _iso(back.expected),
            _iso(wall),
            moved,
        )

    # -- fire times and catch-up ----------------------------------------------------------

    def _fire(self, job: Job, planned: datetime, now: datetime, hooks: list[_Hook]) -> int:
        """A job's fire time came: plan the next, run it (or skip it).

        When later fire times have passed too (downtime, a clock jump, a loop
        that got here late), the job is set aside for :meth:`_catch_up`, which
        works out what runs outside the lock.
        """
        options = job.options
        try:
            following: datetime | None = _next_after(job.trigger, planned)
        except Exception as exc:
            message = "job %s: its trigger failed; it will not fire again: %s"
            hooks.append((log.error, (message, job.key, f"{type(exc).__name__}: {exc}")))
            following = None
        if following is not None and _utc(following) <= now:
            job.next_fire, job.fire_seq = None, -1  # no fire entry until planned
            self._catch_ups.append((job, planned, now))
            return 0
        if following is not None:
            self._push_fire(job, following)
        else:
            job.next_fire = None
        on_time = options.catch_up != "none" or now - _utc(planned) <= options.misfire_grace
        if not on_time:
            reason = self._missed_reason(job, planned)
            self._skip(job, [Firing(job.key, planned)], reason, hooks)
            return 0
        return self._run_times(job, [planned], hooks)

    def _catch_up(self, hooks: list[_Hook]) -> int:
        """Plan the catch-ups the dispatch found (lock released), then apply them."""
        started = 0
        while True:
            with self._lock:
                if not self._catch_ups:
                    return started
                job, planned, now = self._catch_ups.pop(0)
            try:
                plan = self._plan(job, planned, now)
            except Exception:
                log.exception("job %s: its trigger failed; it will not fire again", job.key)
                continue
            if plan is None:  # shutting down
                continue
            with self._lock:
                started += self._apply(plan, now, hooks)

    def _plan(self, job: Job, planned: datetime, now: datetime) -> _Plan | None:
        """Which of the fire times from ``planned`` to ``now`` (UTC) run, which are skipped.

        O(runs to do) trigger calls when the trigger has ``previous_fire``;
        the number missed comes from ``count_between`` when it has one.
        Otherwise a walk forwards, which checks for a shutdown as it goes.
        """
        options, trigger = job.options, job.trigger
        keep = max(options.max_catch_up, 1) if options.catch_up == "all" else 1
        first = _utc(planned)
        following = trigger.next_fire(now)
        previous = getattr(trigger, "previous_fire", None)
        tail: list[datetime] = []
        missed: int | None = None
        if previous is not None:
            moment = previous(now + timedelta(microseconds=1))  # the newest at or before now
            while _utc(moment) >= first:
                tail.append(moment)
                if len(tail) >= keep:
                    break
                moment = previous(moment)
            tail.reverse()
            counter = getattr(trigger, "count_between", None)
            if counter is not None:
                missed = 1 + counter(planned, now)
        else:
            recent: deque[datetime] = deque(maxlen=keep)
            moment, missed = planned, 0
            while _utc(moment) <= now:
                recent.append(moment)
                missed += 1
                if missed % _WALK_CHUNK == 0 and self._stopping:
                    return None
                moment = _next_after(trigger, moment)
            tail = list(recent)
        if not tail:  # a trigger whose previous_fire disagrees with next_fire
            tail = [planned]
        newest = tail[-1]
        if options.catch_up == "all":
            runs = tail
        elif options.catch_up == "latest" or now - _utc(newest) <= options.misfire_grace:
            # "none" runs the newest only when it is on time: missed times are older.
            runs = [newest]
        else:
            runs = []
        stop = _utc(runs[0]) if runs else _utc(following)
        skipped = None
        if _utc(planned) < stop:
            count = None if missed is None else missed - len(runs)
            reason = self._missed_reason(job, planned)
            skipped = _SkipSpan(job, planned, stop, reason, count)
        return _Plan(job, runs, skipped, following, missed)

    def _apply(self, plan: _Plan, now: datetime, hooks: list[_Hook]) -> int:
        """Put a planned catch-up into effect (lock held)."""
        job = plan.job
        holder = self._jobs.get(job.key)
        if holder is job and plan.following is not None:
            self._push_fire(job, plan.following)
            if self._heap and self._heap[0][2] == job.fire_seq:
                self._lock.notify_all()
        if plan.skipped is not None:
            self._skips.append(plan.skipped)
        # One line per catch-up, however many times it covers; logged after the lock.
        count = "several" if plan.missed is None else f"{plan.missed:,}"
        ran = ", ".join(_iso(moment) for moment in plan.runs) or "none"
        message = "%s: %s fire times were due at once; running %s, the others are skipped"
        hooks.append((log.info, (message, job.key, count, ran)))
        if holder is None or not plan.runs or not self._accepting:
            return 0
        # A version that replaced the job meanwhile makes the runs, as it
        # makes the retries it took over.
        return self._run_times(holder, plan.runs, hooks)

    def _missed_reason(self, job: Job, planned: datetime) -> str:
        """Why ``planned`` (and what follows it) was missed, in words for the ledger."""
        policy = job.options.catch_up
        moment = _utc(planned)
        if job.downtime_until is not None and moment <= job.downtime_until:
            return f"missed while the scheduler was not running (catch_up = {policy})"
        if (
            self._jump is not None
            and self._jump[0] - self.jump_threshold <= moment <= self._jump[1]
        ):
            jump = self._jump[1] - self._jump[0]
            return f"missed: the wall clock jumped forward by {jump} (catch_up = {policy})"
        return (
            f"missed: the scheduler reached it late, after later fire times (catch_up = {policy})"
        )

    def _run_times(self, job: Job, run: list[datetime], hooks: list[_Hook]) -> int:
        """Start (or queue, or skip as overlapping) the fire times ``run``, oldest first."""
        options = job.options
        if job.running:
            for moment in run:
                firing = Firing(job.key, moment, 1, moment)
                if options.overlap == "queue":
                    _wait(job, [firing])  # in order, and no jitter: they wait anyway
                else:
                    self._skip(job, [firing], _overlap_reason(job), hooks)
            return 0
        first, backlog = run[0], run[1:]
        delay = self._jitter(options)
        firing = Firing(job.key, first, 1, _shift(first, delay))
        started = 0
        if delay:
            self._owe(job, firing.due_at or first, _START, firing)
        else:
            started = self._start(job, firing, hooks)
        # Caught-up runs go one after another, behind the first.
        if backlog:
            _wait(job, [Firing(job.key, moment, 1, moment) for moment in backlog])
        return started

    def _jitter(self, options: JobOptions) -> timedelta:
        if not options.jitter:
            return timedelta(0)
        return timedelta(seconds=self._rng.uniform(0, options.jitter.total_seconds()))

    # -- the workers ----------------------------------------------------------------------

    def _start(self, job: Job, firing: Firing, hooks: list[_Hook]) -> int:
        """Hand a run to the workers (lock held); 0 when it waits or is skipped instead."""
        if job.running:
            # A retry is not a new fire time: it waits rather than being skipped.
            if firing.attempt > 1 or job.options.overlap == "queue":
                _wait(job, [firing])
            else:
                self._skip(job, [firing], _overlap_reason(job), hooks)
            return 0
        if not self._open:
            raise RuntimeError("the scheduler is not started")
        expected = job.options.expected_duration
        seconds = expected.total_seconds() if expected is not None else job.average
        short = seconds is not None and (
            seconds <= self.short_run.total_seconds()
            # Short beside what holds the long workers: on a loaded machine a
            # one-second pipeline may take 1.5 s, and must still not wait
            # behind a burst of reports that take 30 s each (or never ran).
            or (
                self._long_running >= self.workers - self.reserved_workers
                and seconds * SHORT_RATIO <= min(self._long_expected.values(), default=0.0)
            )
        )
        # It waits when no worker can take it before some run ends (a worker
        # about to pick it up is not waiting: the run has as good as started).
        queued = len(self._ready_short) + len(self._ready_long)
        waits = self._taken + queued >= self.workers or (
            not short
            and self._long_running + len(self._ready_long) >= self.workers - self.reserved_workers
        )
        job.running += 1
        job.waiting += waits
        self._in_flight += 1
        token = next(self._seq)
        self._active.add(token)
        run = _Run(job, firing, token, short, waits=waits, expected=seconds)
        (self._ready_short if short else self._ready_long).append(run)
        if self._idle_workers:
            self._work.notify_all()
        elif len(self._threads) < self.workers:
            thread = threading.Thread(
                target=self._worker,
                name=f"{self._name}-worker-{len(self._threads)}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()
        return 1

    def _take(self) -> _Run | None:
        """The next run a worker may start (lock held), or None.

        Fairness: the oldest run waiting goes first, except that no more than
        ``workers - reserved_workers`` runs that may be long go at once; the
        reserved workers then take only runs expected to be short.
        """
        short = self._ready_short[0] if self._ready_short else None
        long_ = self._ready_long[0] if self._ready_long else None
        if long_ is not None and self._long_running >= self.workers - self.reserved_workers:
            long_ = None
        if short is None and long_ is None:
            return None
        if long_ is None or (short is not None and short.token < long_.token):
            return self._ready_short.popleft()
        self._long_running += 1
        run = self._ready_long.popleft()
        self._long_expected[run.token] = _INF if run.expected is None else run.expected
        return run

    def _worker(self) -> None:
        while True:
            with self._lock:
                run = self._take()
                while run is None:
                    if self._closed:
                        self._threads.remove(threading.current_thread())
                        return
                    self._idle_workers += 1
                    try:
                        self._work.wait()
                    finally:
                        self._idle_workers -= 1
                    run = self._take()
                self._taken += 1
                if run.waits:
                    _latest(run.job).waiting -= 1
                timeout = run.job.options.timeout
                if timeout:
                    entry = self._push(
                        self._now() + timeout,
                        _TIMEOUT,
                        run.job.key,
                        -1,
                        (run.job, run.firing, run.token),
                    )
                    if self._heap[0] is entry:
                        self._lock.notify_all()
            self._execute(run)

    def _execute(self, run: _Run) -> None:
        job, firing = run.job, run.firing
        ok = False
        error: str | None = "the run was interrupted"
        began = self._monotonic()
        try:
            result = job.func(firing)
            ok = result is not False
            error = None if ok else "the run failed"
        except EilError as exc:  # says what went wrong for a user: no traceback
            error = f"{type(exc).__name__}: {exc}"
            log.error("job %s failed: %s", job.key, exc)
        except Exception as exc:  # a job's error must never kill a worker or the loop
            error = f"{type(exc).__name__}: {exc}"
            log.error("job %s raised %s", job.key, error, exc_info=True)
        except BaseException as exc:  # SystemExit and the like: book the run, then go on
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._finish(run, ok, error, self._monotonic() - began)

    def _monotonic(self) -> float:
        monotonic = getattr(self.clock, "monotonic", None)
        return monotonic() if monotonic is not None else _time.monotonic()

    def _finish(self, run: _Run, ok: bool, error: str | None, seconds: float) -> None:
        job, firing, token = run.job, run.firing, run.token
        hooks: list[_Hook] = []
        with self._lock:
            self._active.discard(token)
            self._taken -= 1
            if not run.short:
                self._long_running -= 1
                self._long_expected.pop(token, None)
            live = _latest(job)  # the job now holding the key, if this one was replaced
            live.running -= 1
            live.run_count += 1
            live.last_run = firing.scheduled_at
            live.average = seconds if live.average is None else 0.7 * live.average + 0.3 * seconds
            if not ok:
                live.error_count += 1
                live.last_error = error
            current = self._jobs.get(job.key)
            # The version holding the key retries (None: the job was removed).
            holder = current if current is live else None
            if (
                not ok
                and holder is not None
                and firing.attempt <= holder.options.retries
                and self._accepting
            ):
                delay = holder.options.retry_delay * (2 ** (firing.attempt - 1))
                due = self._now() + delay
                zone = firing.scheduled_at.tzinfo
                retry = Firing(
                    job.key, firing.scheduled_at, firing.attempt + 1, due.astimezone(zone)
                )
                self._owe(holder, due, _RETRY, retry)
            if live.queue and current is live and self._accepting:
                self._start(live, live.queue.popleft(), hooks)
            self._in_flight -= 1
            self._idle.notify_all()
            self._lock.notify_all()
            self._work.notify_all()
        self._call_hooks(hooks)

    def _forget(self, run: _Run) -> None:
        """A run dropped before a worker started it: it is not in flight (lock held)."""
        self._active.discard(run.token)
        live = _latest(run.job)
        live.running -= 1
        live.waiting -= run.waits
        self._in_flight -= 1
        self._idle.notify_all()

    # -- skips and hooks --------------------------------------------------------------------

    def _skip(self, job: Job, firings: list[Firing], reason: str, hooks: list[_Hook]) -> None:
        if job.on_skip_many is not None:
            hooks.append((job.on_skip_many, (firings, reason)))
        elif job.on_skip is not None:
            for firing in firings:
                hooks.append((job.on_skip, (firing, reason)))  # the owner logs and records it
        else:
            for firing in firings:
                hooks.append(
                    (log.info, ("skipped %s at %s: %s", job.key, _iso(firing.scheduled_at), reason))
                )

    def _deliver_skips(self, deadline: float | None, batches: int | None = None) -> None:
        """Hand waiting skipped times to their hooks, a batch at a time, oldest first.

        Stops after ``batches`` batches; without a ``deadline`` (monotonic), at a
        shutdown too, which then hands over what it can within its grace and
        logs what is left.
        """
        done = 0
        with self._delivering:
            while batches is None or done < batches:
                with self._lock:
                    if not self._skips:
                        return
                    span = self._skips[0]
                if deadline is None and self._stopping:
                    return  # shutdown() hands over the rest, within its grace
                if deadline is not None and _time.monotonic() >= deadline:
                    break
                firings = span.take(SKIP_BATCH)
                if not firings:
                    with self._lock:
                        self._skips.popleft()
                    continue
                hooks: list[_Hook] = []
                self._skip(span.job, firings, span.reason, hooks)
                self._call_hooks(hooks)
                done += 1
            if deadline is None or _time.monotonic() < deadline:
                return
            with self._lock:
                left, self._skips = list(self._skips), deque()
        for span in left:
            after = "" if span.last is None else f" after {_iso(span.last)}"
            total = "" if span.count is None else f" ({span.count - span.delivered:,})"
            log.warning(
                "%s: the skipped fire times from %s%s to %s%s were not handed over:"
                " the scheduler shut down",
                span.job.key,
                _iso(span.first),
                after,
                _iso(span.stop),
                total,
            )

    @staticmethod
    def _call_hooks(hooks: list[_Hook]) -> None:
        for hook, args in hooks:
            try:
                hook(*args)
            except EilError as exc:  # says what went wrong for a user: no traceback
                log.error("a scheduler hook failed: %s", exc)
            except Exception:
                log.exception("a scheduler hook failed")


_OVERLAP_SKIP = "the previous run was still going (overlap = skip)"
_SHUTDOWN_SKIP = "the scheduler shut down while the run waited for a free worker"
_OVERLAP_WAITING = "the previous run was still waiting for a free worker (overlap = skip)"


def _overlap_reason(job: Job) -> str:
    """Why a fire time during a run is skipped: the run is going, or not started yet."""
    return _OVERLAP_WAITING if job.waiting else _OVERLAP_SKIP


def _next_after(trigger: TriggerLike, moment: datetime) -> datetime:
    """``trigger.next_fire(moment)``, refusing a time not after ``moment`` (a broken
    trigger must not make the loop fire, or walk, forever in one place)."""
    following = trigger.next_fire(moment)
    if _utc(following) <= _utc(moment):
        raise ValueError(f"next_fire({moment.isoformat()}) gave {following.isoformat()}")
    return following


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; naive datetimes are refused rather than read as local time."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def _shift(moment: datetime, delay: timedelta) -> datetime:
    """``moment`` plus ``delay`` of real time, in ``moment``'s zone.

    Adding a timedelta to a zoned datetime moves its clock reading, which is
    off by the change when the span crosses a daylight-saving switch.
    """
    if not delay:
        return moment
    return (_utc(moment) + delay).astimezone(moment.tzinfo)


def _wait(job: Job, firings: list[Firing]) -> None:
    """Queue ``firings`` behind the job's run in flight."""
    if job.queue is None:
        job.queue = deque()
    job.queue.extend(firings)


def _latest(job: Job) -> Job:
    """The job that holds ``job``'s key now, following replacements."""
    while job.replaced_by is not None:
        job = job.replaced_by
    return job
