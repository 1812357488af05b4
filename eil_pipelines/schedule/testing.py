"""A manual clock, for driving a :class:`~eil_pipelines.schedule.loop.Scheduler` in tests.

Time only moves when the test says so, so scheduling logic is tested by
stepping the clock, never by sleeping.
"""

from __future__ import annotations

import threading
import weakref
from datetime import datetime, timedelta


class ManualClock:
    """A clock whose time moves only through :meth:`advance` and :meth:`set`.

    A scheduler waiting on it sleeps until the time is moved (it ignores
    real timeouts), then looks at the new time.
    """

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start time")
        self._now = start
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
        """Jump to ``moment`` (forwards or backwards) and wake every waiter."""
        with self._lock:
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
