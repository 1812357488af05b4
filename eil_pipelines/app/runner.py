"""One runner among several on a shared ledger: heartbeat, takeover and outages.

:class:`SchedulerService` starts a :class:`Runner` when its ledger is shared
(Postgres).  A thread beats every third of the lease:

* it renews the lease of every row this runner holds (its runs, its sends, its
  named leases) and records the runner's heartbeat for the status view;
* it takes over the runs of runners that stopped beating: rows whose lease
  expired (on the database's clock) are marked ``abandoned`` (by exactly one
  runner) and rerun here as the next attempt;
* it notices an outage: while the ledger can't be reached, the runner keeps
  its runs in flight (their finish waits for the ledger), claims nothing new
  and logs ONE line; the fire times it could not claim meanwhile are kept,
  and once the ledger answers they go through the pipeline's ``catch_up``
  policy (the ledger's unique key makes that exactly once across runners).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from ..ledger import LedgerError, LedgerUnavailableError, NewSkip
from ..ledger.process import host_name
from ..schedule.loop import Firing, JobOptions, SystemClock

__all__ = ["CLOCK_SKEW_ENV", "Outage", "Runner", "SkewedClock", "catch_up_plan", "default_node"]

#: The environment variable that sets a runner's clock this many seconds off (the
#: test of clock skew between machines; unset in production).
CLOCK_SKEW_ENV = "EIL_CLOCK_SKEW"

log = logging.getLogger("eil_pipelines.scheduler")

#: A runner beats this often at least, whatever the lease (a lease of hours is allowed).
MAX_INTERVAL = timedelta(seconds=60)


def default_node() -> str:
    """This runner's default name: the host name and the pid (``web-1-4242``)."""
    return f"{host_name()}-{os.getpid()}"


class SkewedClock(SystemClock):
    """This machine's clock, ``offset`` off: a machine whose clock is wrong."""

    def __init__(self, offset: timedelta):
        self.offset = offset

    def now(self) -> datetime:
        """The wall clock plus the offset."""
        return super().now() + self.offset


def clock_from_env(env: dict[str, str] | os._Environ[str]) -> SystemClock | None:
    """A :class:`SkewedClock` when :data:`CLOCK_SKEW_ENV` is set (seconds), else None."""
    text = env.get(CLOCK_SKEW_ENV)
    if not text:
        return None
    try:
        return SkewedClock(timedelta(seconds=float(text)))
    except ValueError:
        raise ValueError(f"{CLOCK_SKEW_ENV} must be a number of seconds, got {text!r}") from None


class Outage:
    """Whether the shared ledger answers; one log line when it stops, one when it is back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: datetime | None = None
        self.last_error: str | None = None
        """The error that started the current outage (redacted by the ledger), or None."""

    @property
    def down(self) -> bool:
        """True while the ledger can't be reached."""
        with self._lock:
            return self._since is not None

    def failed(self, exc: BaseException) -> None:
        """A call to the ledger failed for want of it: start an outage (logged once)."""
        with self._lock:
            started = self._since is None
            if started:
                self._since = datetime.now(UTC)
                self.last_error = str(exc)
        if started:
            log.error(
                "ledger unreachable: %s; keeping the runs in flight, claiming nothing new, "
                "retrying with backoff",
                exc,
            )

    def ok(self) -> bool:
        """The ledger answered: end an outage (logged once); True when one ended."""
        with self._lock:
            since, self._since = self._since, None
            if since is not None:
                self.last_error = None
        if since is not None:
            log.warning(
                "ledger reachable again after %.0fs; missed fire times follow each "
                "pipeline's catch_up policy",
                (datetime.now(UTC) - since).total_seconds(),
            )
        return since is not None


def catch_up_plan(
    times: list[datetime], options: JobOptions
) -> tuple[list[datetime], list[datetime]]:
    """The missed ``times`` of one pipeline split into (to run, to skip), as ``catch_up`` says.

    ``latest`` runs the newest; ``all`` runs the newest ``max_catch_up``, oldest
    first; ``none`` runs nothing.
    """
    ordered = sorted(set(times))
    if not ordered:
        return [], []
    if options.catch_up == "latest":
        run = ordered[-1:]
    elif options.catch_up == "all":
        run = ordered[-options.max_catch_up :] if options.max_catch_up > 0 else []
    else:
        run = []
    return run, [t for t in ordered if t not in run]


class Runner:
    """The heartbeat of one runner on a shared ledger (see the module's docstring).

    ``run`` runs one firing as the scheduler would (the service's ``_run``);
    ``options`` gives a pipeline's :class:`JobOptions` (``None``: no longer
    scheduled); ``in_flight`` counts the runs held; ``held`` lists their keys
    (only those leases are renewed).  ``interval`` defaults to a
    third of the lease.
    """

    def __init__(
        self,
        ledger: Any,
        *,
        node: str,
        run: Callable[[str, Firing], Any],
        options: Callable[[str], JobOptions | None],
        in_flight: Callable[[], int],
        held: Callable[[], list[tuple[str, datetime]]],
        clock: Callable[[], datetime],
        version: str = "unknown",
        interval: float | None = None,
        workers: int = 2,
    ):
        self.ledger = ledger
        self.node = node
        self._run = run
        self._options = options
        self._in_flight = in_flight
        self._held = held
        self._clock = clock
        self._version = version
        beat = min(ledger.lease / 3, MAX_INTERVAL).total_seconds()
        self.interval = interval or max(0.2, beat)
        self.outage = Outage()
        self._started_at = datetime.now(UTC)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eil-takeover")
        self._missed: dict[str, list[datetime]] = {}
        self._missed_lock = threading.Lock()
        self.taken_over = 0
        """How many runs this runner took over from runners that stopped."""

    # -- life cycle --

    def start(self) -> None:
        """Beat once now (so the status view sees this runner), then every ``interval``."""
        self.beat_once()
        self._thread = threading.Thread(target=self._loop, name="eil-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and say goodbye (best effort: the ledger may be down)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        # Takeovers already decided run to their end: their rows say abandoned until then.
        self._pool.shutdown(wait=True)
        with contextlib.suppress(LedgerError):
            self._beat(stopped=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat_once()
            except Exception:  # the heartbeat must outlive any surprise
                log.exception("heartbeat failed")

    # -- one beat --

    def _beat(self, *, stopped: bool = False) -> None:
        self.ledger.beat(
            self.node,
            host=host_name(),
            pid=os.getpid(),
            version=self._version,
            started_at=self._started_at,
            running=self._in_flight(),
            last_error=self.outage.last_error,
            stopped=stopped,
        )

    def beat_once(self) -> None:
        """Renew leases, beat, take over expired runs, and catch up after an outage."""
        try:
            self.ledger.renew_leases(self._held())
            self._beat()
            if self.outage.ok():
                self._catch_up()
            self._take_over()
        except LedgerUnavailableError as exc:
            self.outage.failed(exc)

    def _take_over(self) -> None:
        if self._stop.is_set():
            return
        for record in self.ledger.mark_abandoned(now=self._clock()):
            if self._options(record.pipeline) is None:
                continue  # not one of ours: its own runner reruns it when it starts
            log.warning(
                "taking over: %s at %s (attempt %d; %s)",
                record.pipeline,
                record.scheduled_at.isoformat(),
                record.attempt + 1,
                record.error,
            )
            self.taken_over += 1
            # attempt > 1: the service's claim reclaims the abandoned row as its next attempt.
            firing = Firing(record.pipeline, record.scheduled_at, attempt=record.attempt + 1)
            self._pool.submit(self._run, record.pipeline, firing)

    # -- outages --

    def missed(self, name: str, scheduled_at: datetime) -> None:
        """A fire time that could not be claimed, or whose skip could not be recorded,
        because the ledger was down: the catch-up after the outage decides it."""
        with self._missed_lock:
            self._missed.setdefault(name, []).append(scheduled_at)

    def _catch_up(self) -> None:
        with self._missed_lock:
            missed, self._missed = self._missed, {}
        try:
            for name in list(missed):
                options = self._options(name)
                if options is not None:
                    run, skip = catch_up_plan(missed[name], options)
                    if skip:
                        # Rows already there (another runner ran that time) stay.
                        reason = "missed while the run ledger was unreachable"
                        self.ledger.record_skipped_many(
                            [NewSkip(name, t, reason) for t in skip], now=self._clock()
                        )
                    for at in run:
                        self._pool.submit(self._run, name, Firing(name, at))
                del missed[name]
        finally:
            # The ledger went away again half-way: what is left waits for the next
            # catch-up, so no fire time is dropped between two outages.
            with self._missed_lock:
                for name, times in missed.items():
                    self._missed.setdefault(name, [])[:0] = times
