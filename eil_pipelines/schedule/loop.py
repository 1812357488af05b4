"""The scheduler loop: one thread, a heap of fire times, a bounded worker pool.

The loop thread sleeps on a condition variable until the earliest entry of
its heap is due, or until something wakes it (a job added or removed, a run
finished, shutdown).  There is no polling and no thread per job: 10,000
jobs cost one heap and the same worker threads as ten.

Every policy that concerns *time* lives here, generic over jobs:

* **Missed fire times** (downtime, a suspended laptop, a clock that jumped
  forward): when a job is due, every fire time between its planned one and
  now is due at once.  ``catch_up`` decides: ``latest`` runs only the most
  recent, ``all`` runs each in order (at most ``max_catch_up``, the most
  recent), ``none`` runs only a fire time that is not older than
  ``misfire_grace``.  The others are reported as skipped.
* **Overlap**: a fire time that comes while the job's previous run is still
  going is skipped (``overlap = "skip"``) or queued behind it (``"queue"``).
* **Retries**: a failed run is tried again after ``retry_delay``, doubled at
  each attempt, up to ``retries`` times, for the same scheduled time.
* **Timeouts**: ``timeout`` after a run starts, the job's ``on_timeout``
  hook is called with the run (the pipeline service interrupts its query).
* **Jitter**: a run starts up to ``jitter`` after its fire time; the
  scheduled time the run stands for is unchanged.

The clock is a seam: :class:`SystemClock` in production, a fake one in
tests, which drive time by hand instead of sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time as _time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

log = logging.getLogger("eil_pipelines.schedule")

CatchUp = Literal["latest", "all", "none"]
Overlap = Literal["skip", "queue"]


class Clock(Protocol):
    """Where the loop reads the time and how it waits."""

    def now(self) -> datetime:
        """The current time, aware."""
        ...

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Wait on ``condition`` (held by the caller) for at most ``timeout`` seconds."""
        ...


class SystemClock:
    """The real clock: ``datetime.now(UTC)`` and a real timed wait."""

    def now(self) -> datetime:
        """The wall clock, aware, in UTC."""
        return datetime.now(UTC)

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Block until notified or ``timeout`` seconds pass."""
        condition.wait(timeout)


class TriggerLike(Protocol):
    """What the loop needs of a trigger."""

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


#: What a job's function returns: True (or None) for success, False for a failure to retry.
JobFunction = Callable[[Firing], Any]


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
    queue: deque[Firing] = field(default_factory=deque)
    run_count: int = 0
    error_count: int = 0
    last_run: datetime | None = None
    last_error: str | None = None


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


# Heap entry kinds, ordered so that at the same instant a timeout is handled
# before new fires are dispatched.
_TIMEOUT, _RETRY, _FIRE, _START = 0, 1, 2, 3


class Scheduler:
    """One loop thread over a heap of fire times, and a pool of worker threads.

    Thread-safe: jobs may be added and removed from any thread while it runs.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        workers: int = 4,
        rng: random.Random | None = None,
        name: str = "eil-scheduler",
    ):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.clock: Clock = clock or SystemClock()
        self.workers = workers
        self._rng = rng or random.Random()
        self._name = name
        self._lock = threading.Condition(threading.RLock())
        self._jobs: dict[str, Job] = {}
        # (when, kind, sequence, job key, job generation, payload): a stale generation
        # marks an entry of a removed or replaced job, dropped when it surfaces.
        self._heap: list[tuple[datetime, int, int, str, int, Any]] = []
        self._seq = itertools.count()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._accepting = True
        self._in_flight = 0
        self._active: set[int] = set()  # tokens of runs in flight, for their timeouts
        self._idle = threading.Condition(self._lock)

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
        kind: str = "job",
    ) -> Job:
        """Register (or replace) a job; its first fire is the first after ``first_after`` (default now).

        Passing the last fire time that ran (from a run ledger) as
        ``first_after`` makes fire times missed since then due at once, where
        the ``catch_up`` policy decides what runs.
        """
        with self._lock:
            old = self._jobs.get(key)
            job = Job(
                key=key,
                trigger=trigger,
                func=func,
                options=options or JobOptions(),
                on_timeout=on_timeout,
                on_skip=on_skip,
                kind=kind,
                generation=(old.generation + 1) if old else 0,
            )
            if old is not None:
                # Counters and the running state carry over a reschedule: a
                # changed file must not let an overlapping run start.
                job.running, job.run_count, job.error_count = (
                    old.running,
                    old.run_count,
                    old.error_count,
                )
                job.last_run, job.last_error = old.last_run, old.last_error
            after = first_after or self.clock.now()
            job.next_fire = trigger.next_fire(after)
            self._jobs[key] = job
            self._push(job.next_fire, _FIRE, key, job.generation, None)
            self._lock.notify_all()
            return job

    def remove(self, key: str) -> bool:
        """Unschedule a job; a run in flight finishes.  False when there was no such job."""
        with self._lock:
            job = self._jobs.pop(key, None)
            if job is None:
                return False
            job.generation += 1  # invalidates its heap entries
            job.queue.clear()
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
        """
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix=f"{self._name}-worker"
                )
            if loop and self._thread is None:
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

    def wakeup(self) -> None:
        """Make the loop look at the clock now (after a clock change, say)."""
        with self._lock:
            self._lock.notify_all()

    def shutdown(self, grace: float | None = None) -> bool:
        """Stop starting runs; wait up to ``grace`` seconds (None: forever) for runs in flight.

        Returns True when every run finished within the grace period.
        """
        with self._lock:
            self._accepting = False
            self._stopping = True
            self._lock.notify_all()
            deadline = None if grace is None else _time.monotonic() + grace
            while self._in_flight:
                remaining = None if deadline is None else deadline - _time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._idle.wait(remaining)
            finished = self._in_flight == 0
        if self._thread is not None:
            self._thread.join(timeout=1)
        if self._pool is not None:
            self._pool.shutdown(wait=finished, cancel_futures=True)
        return finished

    @property
    def in_flight(self) -> int:
        """Runs executing now."""
        with self._lock:
            return self._in_flight

    def next_wakeup(self) -> datetime | None:
        """When the loop next has something to do (the earliest valid heap entry)."""
        with self._lock:
            self._drop_stale()
            return self._heap[0][0] if self._heap else None

    def run_due(self, now: datetime | None = None) -> int:
        """Dispatch everything due at ``now``; returns how many runs were started.

        The loop calls this after every wake; tests call it directly to step
        a scheduler without its thread.
        """
        with self._lock:
            now = now or self.clock.now()
            started = 0
            while self._heap and self._heap[0][0] <= now and self._accepting:
                when, kind, _, key, generation, payload = heapq.heappop(self._heap)
                job = self._jobs.get(key)
                if job is None or job.generation != generation:
                    continue
                if kind == _FIRE:
                    started += self._fire(job, when, now)
                elif kind in (_START, _RETRY):
                    started += self._start(job, payload)
                elif kind == _TIMEOUT and job.on_timeout is not None:
                    firing, token = payload
                    if token in self._active:
                        self._call_hook(job.on_timeout, firing)
            return started

    # -- internals --------------------------------------------------------------------

    def _push(self, when: datetime, kind: int, key: str, generation: int, payload: Any) -> None:
        heapq.heappush(self._heap, (when, kind, next(self._seq), key, generation, payload))

    def _drop_stale(self) -> None:
        while self._heap:
            _, _, _, key, generation, _ = self._heap[0]
            job = self._jobs.get(key)
            if job is not None and job.generation == generation:
                return
            heapq.heappop(self._heap)

    def _loop(self) -> None:
        with self._lock:
            while not self._stopping:
                self.run_due()
                self._drop_stale()
                timeout = None
                if self._heap:
                    timeout = max(0.0, (self._heap[0][0] - self.clock.now()).total_seconds())
                self.clock.wait(self._lock, timeout)

    def _fire(self, job: Job, planned: datetime, now: datetime) -> int:
        """A job's fire time came: decide which fire times run (catch-up), and plan the next."""
        options = job.options
        due = [planned]
        # Every further fire time up to now was missed (downtime, a clock jump).
        cursor = planned
        cap = max(options.max_catch_up, 1) + 1
        while True:
            following = job.trigger.next_fire(cursor)
            if following > now:
                break
            due.append(following)
            cursor = following
            if len(due) > 10_000:  # a clock jumped years ahead: don't walk every minute of it
                due = due[-cap:]
        job.next_fire = job.trigger.next_fire(cursor)
        self._push(job.next_fire, _FIRE, job.key, job.generation, None)

        grace = options.misfire_grace
        if options.catch_up == "all":
            run, skipped = due[-options.max_catch_up :], due[: -options.max_catch_up]
        elif options.catch_up == "latest":
            run, skipped = due[-1:], due[:-1]
        else:
            on_time = [t for t in due if now - t <= grace]
            run, skipped = on_time[-1:], [t for t in due if t not in on_time[-1:]]
        if skipped:
            reason = f"missed while the scheduler was not running (catch_up = {options.catch_up})"
            for moment in skipped:
                self._skip(job, Firing(job.key, moment), reason)
        started = 0
        for moment in run:
            delay = self._jitter(options)
            firing = Firing(job.key, moment, 1, moment + delay)
            if delay:
                self._push(firing.due_at, _START, job.key, job.generation, firing)
            else:
                started += self._start(job, firing)
        return started

    def _jitter(self, options: JobOptions) -> timedelta:
        if not options.jitter:
            return timedelta(0)
        return timedelta(seconds=self._rng.uniform(0, options.jitter.total_seconds()))

    def _start(self, job: Job, firing: Firing) -> int:
        if job.running and firing.attempt == 1:
            if job.options.overlap == "queue":
                job.queue.append(firing)
                return 0
            self._skip(job, firing, "the previous run was still going (overlap = skip)")
            return 0
        if self._pool is None:
            raise RuntimeError("the scheduler is not started")
        job.running += 1
        self._in_flight += 1
        token = next(self._seq)
        self._active.add(token)
        if job.options.timeout:
            started = self.clock.now()
            self._push(
                started + job.options.timeout, _TIMEOUT, job.key, job.generation, (firing, token)
            )
        self._pool.submit(self._execute, job, firing, token)
        return 1

    def _execute(self, job: Job, firing: Firing, token: int) -> None:
        ok, error = True, None
        try:
            result = job.func(firing)
            ok = result is not False
            if not ok:
                error = "the run failed"
        except Exception as exc:  # a job's error must never kill a worker or the loop
            ok, error = False, f"{type(exc).__name__}: {exc}"
            log.error("job %s raised %s", job.key, error, exc_info=True)
        with self._lock:
            self._active.discard(token)
            job.running -= 1
            job.run_count += 1
            job.last_run = firing.scheduled_at
            if not ok:
                job.error_count += 1
                job.last_error = error
            current = self._jobs.get(job.key)
            if (
                not ok
                and current is job
                and firing.attempt <= job.options.retries
                and self._accepting
            ):
                delay = job.options.retry_delay * (2 ** (firing.attempt - 1))
                retry = Firing(
                    job.key, firing.scheduled_at, firing.attempt + 1, self.clock.now() + delay
                )
                self._push(retry.due_at, _RETRY, job.key, job.generation, retry)
            if job.queue and current is job and self._accepting:
                self._start(job, job.queue.popleft())
            self._in_flight -= 1
            self._idle.notify_all()
            self._lock.notify_all()

    def _skip(self, job: Job, firing: Firing, reason: str) -> None:
        log.info("skipped %s at %s: %s", job.key, firing.scheduled_at.isoformat(), reason)
        if job.on_skip is not None:
            self._call_hook(job.on_skip, firing, reason)

    @staticmethod
    def _call_hook(hook: Callable[..., Any], *args: Any) -> None:
        try:
            hook(*args)
        except Exception:
            log.exception("a scheduler hook failed")
