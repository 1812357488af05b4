"""The scheduler loop: one thread, a heap of fire times, a bounded worker pool.

The loop thread sleeps on a condition variable until the earliest entry of
its heap is due, or until something wakes it (a job added or removed, a run
finished, shutdown), and at least once a minute, so that a wall clock that
jumped or a machine that slept is noticed within a minute.  There is no thread
per job: 10,000 jobs cost one heap and the same worker threads as ten.

Every policy that concerns *time* lives here, generic over jobs:

* **Missed fire times** (downtime, a suspended laptop, a clock that jumped
  forward): when a job is due, every fire time between its planned one and
  now is due at once.  ``catch_up`` decides: ``latest`` runs only the most
  recent, ``all`` runs each in order (at most ``max_catch_up``, the most
  recent), ``none`` runs only a fire time that is not older than
  ``misfire_grace``.  The others are reported as skipped.  With ``all`` the
  runs go one after another, oldest first, never side by side.
* **Overlap**: a fire time that comes while the job's previous run is still
  going is skipped (``overlap = "skip"``) or queued behind it (``"queue"``).
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

Hooks (``on_skip``, ``on_timeout``) are called without the scheduler's lock
held, so they may take their own locks and call back into the scheduler.

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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, Protocol

log = logging.getLogger("eil_pipelines.schedule")

#: The longest the loop sleeps without looking at the clock.  A timed wait
#: runs on a monotonic clock, which does not move while the machine sleeps
#: and does not follow changes to the wall clock.
_MAX_WAIT = 60.0

#: The heap is rebuilt without its stale entries (those of replaced and removed
#: jobs, and timeouts of finished runs) once it holds more than twice as many
#: entries as there are jobs, and at least this many (a job has one live entry,
#: its next fire, plus a retry or a delayed start now and then).
_COMPACT_MIN = 1024

#: A hook to call once the lock is released: the function and its arguments.
_Hook = tuple[Callable[..., Any], tuple[Any, ...]]

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
    queue: deque[Firing] | None = None
    """Runs waiting behind the one in flight, oldest first; None until one waits."""
    run_count: int = 0
    error_count: int = 0
    last_run: datetime | None = None
    last_error: str | None = None
    replaced_by: Job | None = field(default=None, repr=False)
    """The job that took this one's key while a run of it was in flight."""


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

#: A heap entry: (when, kind, sequence, job key, job generation, payload).
_Entry = tuple[datetime, int, int, str, int, Any]


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
        # marks an entry of a removed or replaced job, dropped when it surfaces, or
        # with every other stale entry once they outnumber the live ones (_compact).
        # Times in the heap are UTC, so that it orders instants, not clock readings.
        self._heap: list[_Entry] = []
        self._compact_at = _COMPACT_MIN  # the heap size that triggers a rebuild
        self._seq = itertools.count()
        # Generations are unique across the scheduler: a job removed and added
        # again under the same key must not revive the old job's entries.
        self._generations = itertools.count()
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
            after = first_after or self.clock.now()
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
                kind=kind,
                next_fire=next_fire,
                generation=next(self._generations),
            )
            if old is not None:
                # Counters and the running state carry over a reschedule: a
                # changed file must not let an overlapping run start.  The run
                # in flight books its end on the job that replaced its own.
                job.running, job.run_count, job.error_count = (
                    old.running,
                    old.run_count,
                    old.error_count,
                )
                job.last_run, job.last_error = old.last_run, old.last_error
                job.queue, old.queue = old.queue, None
                old.replaced_by = job
                # Retries and jittered starts are owed runs of scheduled times
                # that already came: the new version makes them.  Fires are not:
                # the new trigger decides those.
                owed = [
                    (when, kind, payload)
                    for when, kind, _, k, generation, payload in self._heap
                    if k == key and generation == old.generation and kind in (_RETRY, _START)
                ]
            else:
                owed = []
            self._jobs[key] = job
            for when, kind, payload in owed:
                self._push(when, kind, key, job.generation, payload)
            entry = self._push(next_fire, _FIRE, key, job.generation, next_fire)
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
        """When the loop next has something to do (the earliest valid heap entry), in UTC."""
        with self._lock:
            self._drop_stale()
            return self._heap[0][0] if self._heap else None

    def run_due(self, now: datetime | None = None) -> int:
        """Dispatch everything due at ``now``; returns how many runs were started.

        The loop calls this after every wake; tests call it directly to step
        a scheduler without its thread.
        """
        hooks: list[_Hook] = []
        with self._lock:
            started = self._dispatch(_utc(now or self.clock.now()), hooks)
        self._call_hooks(hooks)
        return started

    # -- internals --------------------------------------------------------------------

    def _now(self) -> datetime:
        return _utc(self.clock.now())

    def _push(self, when: datetime, kind: int, key: str, generation: int, payload: Any) -> _Entry:
        entry = (_utc(when), kind, next(self._seq), key, generation, payload)
        heapq.heappush(self._heap, entry)
        if len(self._heap) > self._compact_at and len(self._heap) > 2 * len(self._jobs):
            self._compact()
        return entry

    def _compact(self) -> None:
        """Rebuild the heap without its stale entries (they outnumber the live ones)."""
        self._heap[:] = [
            entry
            for entry in self._heap
            if not self._is_stale(entry[1], entry[3], entry[4], entry[5])
        ]
        heapq.heapify(self._heap)
        # Live entries alone may be many (timeouts of runs in flight): wait for the
        # heap to double again before the next pass, so a push costs O(1) on average.
        self._compact_at = max(2 * len(self._heap), _COMPACT_MIN)

    def _waits_for(self, key: str, generation: int) -> bool:
        """Whether the entry the loop waits for (the earliest live one) is the job's."""
        self._drop_stale()
        return bool(self._heap) and self._heap[0][3] == key and self._heap[0][4] == generation

    def _is_stale(self, kind: int, key: str, generation: int, payload: Any) -> bool:
        if kind == _TIMEOUT:
            # A timeout belongs to a run, not to the job's current version:
            # it holds as long as the run does.
            return payload[2] not in self._active
        job = self._jobs.get(key)
        return job is None or job.generation != generation

    def _drop_stale(self) -> None:
        while self._heap:
            _, kind, _, key, generation, payload = self._heap[0]
            if not self._is_stale(kind, key, generation, payload):
                return
            heapq.heappop(self._heap)

    def _dispatch(self, now: datetime, hooks: list[_Hook]) -> int:
        """Handle every heap entry due at ``now`` (UTC); the lock is held."""
        started = 0
        while self._heap and self._heap[0][0] <= now and self._accepting:
            _, kind, _, key, generation, payload = heapq.heappop(self._heap)
            if self._is_stale(kind, key, generation, payload):
                continue
            if kind == _TIMEOUT:
                owner, firing, _token = payload
                if owner.on_timeout is not None:
                    hooks.append((owner.on_timeout, (firing,)))
                continue
            job = self._jobs[key]
            if kind == _FIRE:
                started += self._fire(job, payload, now, hooks)
            else:  # _START, _RETRY
                started += self._start(job, payload, hooks)
        return started

    def _loop(self) -> None:
        # The lock is held throughout except while the clock waits and while
        # hooks run, so the time the wait is based on is read just before it.
        self._lock.acquire()
        try:
            while not self._stopping:
                hooks: list[_Hook] = []
                try:
                    self._dispatch(self._now(), hooks)
                except Exception:  # the loop must outlive any one job's trouble
                    log.exception("the scheduler loop failed while dispatching")
                if hooks:
                    self._lock.release()
                    try:
                        self._call_hooks(hooks)
                    finally:
                        self._lock.acquire()
                    continue  # the clock moved on while the hooks ran
                self._drop_stale()
                timeout = _MAX_WAIT
                if self._heap:
                    due_in = (self._heap[0][0] - self._now()).total_seconds()
                    timeout = min(timeout, max(0.0, due_in))
                self.clock.wait(self._lock, timeout)
        finally:
            self._lock.release()

    def _fire(self, job: Job, planned: datetime, now: datetime, hooks: list[_Hook]) -> int:
        """A job's fire time came: decide which fire times run (catch-up), and plan the next."""
        options = job.options
        keep = max(options.max_catch_up, 1)
        due = [planned]
        # Every further fire time up to now was missed (downtime, a clock jump).
        cursor, following = planned, None
        try:
            while True:
                following = job.trigger.next_fire(cursor)
                if _utc(following) > now:
                    break
                due.append(following)
                cursor = following
                if len(due) > 10_000:  # a clock jumped years ahead: don't walk every minute of it
                    due = due[-(keep + 1) :]
        except Exception:
            log.exception("job %s: its trigger failed; it will not fire again", job.key)
            following = None
        job.next_fire = following
        if following is not None:
            self._push(following, _FIRE, job.key, job.generation, following)

        # Slices, never "t in due": two datetimes of one zone compare equal
        # when their clock readings are, though one may be an hour later.
        if options.catch_up == "all":
            run, skipped = due[-keep:], due[:-keep]
        elif options.catch_up == "latest" or now - _utc(due[-1]) <= options.misfire_grace:
            # "none" runs the newest only when it is on time: missed times are older.
            run, skipped = due[-1:], due[:-1]
        else:
            run, skipped = [], due
        reason = f"missed while the scheduler was not running (catch_up = {options.catch_up})"
        for moment in skipped:
            self._skip(job, Firing(job.key, moment), reason, hooks)
        if not run:
            return 0
        if job.running:
            for moment in run:
                firing = Firing(job.key, moment, 1, moment)
                if options.overlap == "queue":
                    _wait(job, [firing])  # in order, and no jitter: they wait anyway
                else:
                    self._skip(job, firing, _OVERLAP_SKIP, hooks)
            return 0
        first, backlog = run[0], run[1:]
        delay = self._jitter(options)
        firing = Firing(job.key, first, 1, _shift(first, delay))
        started = 0
        if delay:
            self._push(firing.due_at or first, _START, job.key, job.generation, firing)
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

    def _start(self, job: Job, firing: Firing, hooks: list[_Hook]) -> int:
        if job.running:
            # A retry is not a new fire time: it waits rather than being skipped.
            if firing.attempt > 1 or job.options.overlap == "queue":
                _wait(job, [firing])
            else:
                self._skip(job, firing, _OVERLAP_SKIP, hooks)
            return 0
        if self._pool is None:
            raise RuntimeError("the scheduler is not started")
        job.running += 1
        self._in_flight += 1
        token = next(self._seq)
        self._active.add(token)
        if job.options.timeout:
            payload = (job, firing, token)
            self._push(self._now() + job.options.timeout, _TIMEOUT, job.key, -1, payload)
        future = self._pool.submit(self._execute, job, firing, token)
        future.add_done_callback(partial(self._forget_if_cancelled, job, firing, token))
        return 1

    def _execute(self, job: Job, firing: Firing, token: int) -> None:
        ok, error = False, "the run was interrupted"
        try:
            result = job.func(firing)
            ok = result is not False
            error = None if ok else "the run failed"
        except Exception as exc:  # a job's error must never kill a worker or the loop
            error = f"{type(exc).__name__}: {exc}"
            log.error("job %s raised %s", job.key, error, exc_info=True)
        except BaseException as exc:  # SystemExit and the like: book the run, then let it go
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._finish(job, firing, token, ok, error)

    def _finish(self, job: Job, firing: Firing, token: int, ok: bool, error: str | None) -> None:
        hooks: list[_Hook] = []
        with self._lock:
            self._active.discard(token)
            live = _latest(job)  # the job now holding the key, if this one was replaced
            live.running -= 1
            live.run_count += 1
            live.last_run = firing.scheduled_at
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
                self._push(due, _RETRY, job.key, holder.generation, retry)
            if live.queue and current is live and self._accepting:
                self._start(live, live.queue.popleft(), hooks)
            self._in_flight -= 1
            self._idle.notify_all()
            self._lock.notify_all()
        self._call_hooks(hooks)

    def _forget_if_cancelled(self, job: Job, firing: Firing, token: int, future: Future) -> None:
        """A run the pool dropped at shutdown before it started: it is not in flight."""
        if not future.cancelled():
            return
        log.warning(
            "not run: %s at %s: the scheduler shut down first",
            job.key,
            firing.scheduled_at.isoformat(),
        )
        with self._lock:
            self._active.discard(token)
            _latest(job).running -= 1
            self._in_flight -= 1
            self._idle.notify_all()

    def _skip(self, job: Job, firing: Firing, reason: str, hooks: list[_Hook]) -> None:
        if job.on_skip is not None:
            hooks.append((job.on_skip, (firing, reason)))  # the owner logs and records it
        else:
            log.info("skipped %s at %s: %s", job.key, firing.scheduled_at.isoformat(), reason)

    @staticmethod
    def _call_hooks(hooks: list[_Hook]) -> None:
        for hook, args in hooks:
            try:
                hook(*args)
            except Exception:
                log.exception("a scheduler hook failed")


_OVERLAP_SKIP = "the previous run was still going (overlap = skip)"


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
