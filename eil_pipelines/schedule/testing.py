"""A manual clock, for driving a :class:`~eil_pipelines.schedule.loop.Scheduler` in tests.

Time only moves when the test says so, so scheduling logic is tested by
stepping the clock, never by sleeping.
"""

from __future__ import annotations

import threading
import weakref
from datetime import datetime, timedelta


class ManualClock:
    """A clock whose time moves only through :meth:`advance`, :meth:`set` and :meth:`jump`.

    A scheduler waiting on it sleeps until the time is moved (it ignores
    real timeouts), then looks at the new time.  It has a wall clock
    (:meth:`now`) and a monotonic one (:meth:`monotonic`): :meth:`advance`
    and :meth:`set` move both together (time passing, as far as a scheduler
    can tell), :meth:`jump` moves the wall clock alone (an NTP step, a
    suspended machine, someone setting the date).
    """

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start time")
        self._now = start
        self._monotonic = 1000.0
        self._lock = threading.Lock()
        self._version = 0  # bumped on every move of the time
        # The version each waiter last saw: a move between a waiter's reads and its
        # wait must wake it at once, or it would sleep through the change.
        self._seen: weakref.WeakKeyDictionary[threading.Condition, int] = (
            weakref.WeakKeyDictionary()
        )

    def now(self) -> datetime:
        """The manual time."""
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """Seconds on the manual monotonic clock (moved by :meth:`set` and :meth:`advance`)."""
        with self._lock:
            return self._monotonic

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        """Wait until the time moves (or the condition is notified for another reason)."""
        if timeout == 0:
            return
        with self._lock:
            seen = self._seen.get(condition)
            self._seen[condition] = self._version
            if seen != self._version:
                return  # the time moved since this waiter last looked: look again
        condition.wait()

    def set(self, moment: datetime) -> None:
        """Move to ``moment`` (forwards or backwards) and wake every waiter.

        The monotonic clock moves by the same amount, so no jump is seen.
        """
        self._move(moment, monotonic=True)

    def jump(self, delta: timedelta | float) -> datetime:
        """Move the wall clock alone by ``delta`` (either way); returns the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self._move(self.now() + step, monotonic=False)
        return self.now()

    def _move(self, moment: datetime, *, monotonic: bool) -> None:
        with self._lock:
            if monotonic:
                self._monotonic += (moment - self._now).total_seconds()
            self._now = moment
            self._version += 1
            waiting = list(self._seen.keys())
        for condition in waiting:
            with condition:
                condition.notify_all()

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by ``delta`` (a timedelta or seconds); returns the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        self.set(self.now() + step)
        return self.now()
