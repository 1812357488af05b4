"""Connections kept warm per connection name, for the scheduler and ``--once``.

A :class:`ConnectionPool` holds at most ``pool_size`` open connections of one
named connection.  A run borrows one (waiting while all are out), and gives
it back when its source closes; a connection that is not clean (a query was
cancelled, the transaction could not be rolled back) is closed instead of
returned.  Before a borrowed connection is handed out it is pinged (one
cheap round trip), so a connection that died with a server restart is
replaced by a new one and the run goes on.

The process keeps one pool per connection (:func:`pool_for`), so every run
of every pipeline naming ``warehouse`` shares ``warehouse``'s connections:
``--once`` opens one per name, not one per query or per pipeline, and the
scheduler's count does not grow with the number of runs.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from .server import ConnectionFailed


class ConnectionPool:
    """At most ``size`` connections made by ``connect``, checked by ``alive`` before use."""

    def __init__(
        self,
        name: str,
        size: int,
        connect: Callable[[], Any],
        alive: Callable[[Any], bool],
        close: Callable[[Any], None],
        *,
        wait: float = 300.0,
    ):
        self.name = name
        self.size = size
        self._connect = connect
        self._alive = alive
        self._close = close
        self._wait = wait
        self._idle: list[Any] = []
        self._out = 0
        self._condition = threading.Condition()
        self._closed = False
        self.opened = 0
        """How many connections this pool has opened in all (for tests and figures)."""
        self.replaced = 0
        """How many idle connections were found dead and replaced."""

    def acquire(self) -> Any:
        """A live connection; waits while ``size`` are in use."""
        deadline = time.monotonic() + self._wait
        with self._condition:
            while not self._idle and self._out >= self.size:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise ConnectionFailed(
                        self.name,
                        f"all {self.size} connections stayed in use for {self._wait:g}s "
                        "(raise pool_size, or shorten the queries)",
                    )
                self._condition.wait(left)
            conn = self._idle.pop() if self._idle else None
            self._out += 1
        try:
            if conn is not None and not self._alive(conn):
                # Dead since it was last used (a server restart): replace it quietly.
                self._discard(conn)
                self.replaced += 1
                conn = None
            if conn is None:
                conn = self._connect()
                self.opened += 1
            return conn
        except BaseException:
            with self._condition:
                self._out -= 1
                self._condition.notify()
            raise

    def release(self, conn: Any, clean: bool = True) -> None:
        """Give ``conn`` back; an unclean one is closed, never reused."""
        with self._condition:
            self._out -= 1
            keep = clean and not self._closed
            if keep:
                self._idle.append(conn)
            self._condition.notify()
        if not keep:
            self._discard(conn)

    def _discard(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            self._close(conn)

    def close(self) -> None:
        """Close the idle connections; connections in use close when given back."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._condition.notify_all()
        for conn in idle:
            self._discard(conn)

    @property
    def open_count(self) -> int:
        """Connections open now, idle or in use."""
        with self._condition:
            return len(self._idle) + self._out


_pools: dict[Hashable, ConnectionPool] = {}
_pools_lock = threading.Lock()


def pool_for(key: Hashable, make: Callable[[], ConnectionPool]) -> ConnectionPool:
    """The process's pool for ``key`` (made on first use)."""
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None or pool._closed:
            pool = _pools[key] = make()
        return pool


def close_all() -> None:
    """Close every pool of the process (at exit, and between tests)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def pools() -> list[ConnectionPool]:
    """The pools open now."""
    with _pools_lock:
        return list(_pools.values())


atexit.register(close_all)
