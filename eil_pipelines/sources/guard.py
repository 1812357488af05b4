"""The query guard: how a run that must stop (timeout, shutdown) stops its queries.

A :class:`QueryGuard` is handed to :meth:`Source.run <eil_pipelines.sources.Source.run>`
(through ``run_pipeline(..., guard=...)``).  The source runs each query inside
:meth:`QueryGuard.querying`, which refuses to start a query once the run must
stop and marks the source while its query executes.  :meth:`QueryGuard.stop`,
called from another thread, then interrupts only a live query (never a
connection being opened or closed), and keeps interrupting while one runs,
so a query that starts just after the stop is not missed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import SourceError

__all__ = ["INTERRUPT_EVERY_S", "QueryGuard"]

log = logging.getLogger("eil_pipelines.sources")

#: How often a run that must stop has its executing query interrupted again.
INTERRUPT_EVERY_S = 0.05


class QueryGuard:
    """A cancel token for one run's queries; thread-safe."""

    def __init__(self, pipeline: str):
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._querying: Any = None
        self._reason: str | None = None
        self._done = False

    @property
    def stop_reason(self) -> str | None:
        """Why the run must stop (``"timeout"``, ``"shutdown"``), or ``None``."""
        with self._lock:
            return self._reason

    @property
    def active(self) -> bool:
        """Whether one of the run's queries is executing now."""
        with self._lock:
            return self._querying is not None

    @contextmanager
    def querying(self, source: Any, query: str) -> Iterator[None]:
        """Run one query of ``source`` under the guard.

        Raises :class:`SourceError` instead of starting it when the run must stop.
        """
        with self._lock:
            if self._reason is not None:
                raise SourceError(
                    self.pipeline, query, f"not started: the run was stopped ({self._reason})"
                )
            self._querying = source
        try:
            yield
        finally:
            with self._lock:
                self._querying = None

    def stop(self, reason: str) -> bool:
        """Ask the run to stop: no further query starts, the executing one is interrupted.

        A single interrupt can miss: the run may not have opened its source yet
        (the first run of a process spends a second importing DuckDB), or may be
        between two queries, and DuckDB ignores an interrupt when no query runs.
        So a helper thread interrupts again every :data:`INTERRUPT_EVERY_S`
        seconds while a query executes, until :meth:`finish`.  Returns False when
        the run had finished or was already stopping.
        """
        with self._lock:
            if self._done or self._reason is not None:
                return False
            self._reason = reason
        threading.Thread(
            target=self._interrupt_until_done, name="eil-interrupt", daemon=True
        ).start()
        return True

    def finish(self) -> None:
        """The run has ended: stop interrupting."""
        with self._lock:
            self._done = True

    def _interrupt_until_done(self) -> None:
        while True:
            with self._lock:
                if self._done:
                    return
                if self._querying is not None:
                    try:
                        self._querying.interrupt()
                    except Exception:  # a closed connection: the query ended anyway
                        log.debug("interrupt failed", exc_info=True)
            time.sleep(INTERRUPT_EVERY_S)
