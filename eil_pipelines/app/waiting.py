"""Runs that wait: for their upstream pipelines (``after``) and their freshness gate (``require``).

A fire time of a pipeline with ``after`` or ``require`` first asks whether it
may start.  If not, its key is held in the ledger as ``waiting`` (so no other
process runs it), the worker that asked is freed, and the :class:`Waiter`
checks again: upstream runs whenever a run ends and every
:data:`RECHECK` at the latest, the gate on its own ``require.every``.  When
everything is met the run is handed back to the scheduler's workers; when
``wait_for`` runs out first, the run fails with the upstream runs or the gate
that held it up, and the owner gets the failure notice.

Exactly once holds as for any run: the waiting row is inserted with the same
``ON CONFLICT DO NOTHING`` as a claim, and taken to ``running`` by one
conditional update.  A waiting row whose process died is abandoned, like a
running one, and the catch-up policy decides about it at the next start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import EilError
from ..ledger.base import LedgerBackend
from ..run.context import RunContext, make_context
from ..run.gate import check_gate
from ..schedule.durations import format_duration
from ..schedule.loop import Firing
from ..spec.loader import Pipeline
from .dependencies import unmet_upstreams

__all__ = ["RECHECK", "Waiter", "needs_wait"]

log = logging.getLogger(__name__)

#: Upstream runs are checked again at least this often (and whenever a run ends).
RECHECK = timedelta(seconds=30)


def needs_wait(pipeline: Pipeline) -> bool:
    """Whether the pipeline's runs may have to wait (it has ``after`` or ``require``)."""
    schedule = pipeline.spec.schedule
    return schedule is not None and bool(schedule.after or schedule.require)


@dataclass
class _Held:
    """One waiting run."""

    pipeline: str
    firing: Firing
    deadline: datetime
    next_check: datetime
    gate_due: datetime | None = None
    """When the gate is checked next; None until the upstream runs are met."""
    gate_open: bool = False
    gate_words: str = ""
    checks: int = 0
    """How many times the gate was checked."""
    note: str = ""


class Waiter:
    """Holds runs that wait, checks them, and starts or fails them.

    ``start(name, firing)`` hands a run whose wait is over to the scheduler;
    ``fail(name, firing, message)`` records a run that waited too long.  Both
    are the service's.  ``known()`` returns the pipelines in force by name.
    """

    def __init__(
        self,
        *,
        ledger: LedgerBackend,
        now: Callable[[], datetime],
        known: Callable[[], Mapping[str, Pipeline]],
        start: Callable[[str, Firing], None],
        fail: Callable[[str, Firing, str], None],
        gate: Callable[[Pipeline, RunContext], tuple[bool, str]] = check_gate,
    ):
        self.ledger = ledger
        self.now = now
        self.known = known
        self._start = start
        self._fail = fail
        self._gate = gate
        self._held: dict[tuple[str, datetime], _Held] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pokes = 0
        """Runs ended so far: a hold that saw one end meanwhile is checked at once."""

    # -- asked by a worker ------------------------------------------------------------

    def hold(self, pipeline: Pipeline, firing: Firing, run_id: str) -> bool:
        """Whether ``firing`` may run now.  When not, its key is held as ``waiting``
        (or another process holds it) and the waiter takes over; the caller returns."""
        schedule = pipeline.spec.schedule
        assert schedule is not None
        now = self.now()
        with self._lock:
            pokes = self._pokes
        held = _Held(
            pipeline=pipeline.name,
            firing=firing,
            deadline=_utc(firing.scheduled_at) + schedule.wait_for,
            next_check=now + RECHECK,
        )
        unmet = self._unmet(pipeline, held, now)
        if not unmet:
            return True
        held.note = _note(unmet)
        if (
            self.ledger.wait(pipeline.name, firing.scheduled_at, run_id=run_id, note=held.note)
            is None
        ):
            return False  # another process has the key
        if held.checks:
            self.ledger.note_waiting(
                pipeline.name, firing.scheduled_at, note=held.note, checks=held.checks
            )
        log.info("waiting: %s at %s: %s", pipeline.name, firing.scheduled_at.isoformat(), held.note)
        with self._changed:
            if self._pokes != pokes:
                # An upstream ended between the look above and now: its poke found
                # nothing to wake, so this run is due at once rather than at RECHECK.
                held.next_check = now
            self._held[_key(pipeline.name, firing.scheduled_at)] = held
            self._changed.notify_all()
        return False

    def _unmet(self, pipeline: Pipeline, held: _Held, now: datetime) -> list[str]:
        """What ``held`` still waits for; checks the gate when it is due (counting it)."""
        ctx = make_context(pipeline, held.firing.scheduled_at)
        unmet = [u.describe() for u in unmet_upstreams(self.ledger, pipeline, ctx, self.known())]
        schedule = pipeline.spec.schedule
        require = schedule.require if schedule is not None else None
        if unmet or require is None:
            held.gate_due = None  # the gate is checked once the upstream runs are met
            return unmet
        if held.gate_due is None or held.gate_due <= now:
            held.gate_open, held.gate_words = self._gate(pipeline, ctx)
            held.checks += 1
            held.gate_due = now + require.every
        return [] if held.gate_open else [held.gate_words]

    # -- the waiter's own work ----------------------------------------------------------

    def poke(self) -> None:
        """A run ended: check the waiting runs' upstreams now."""
        with self._changed:
            self._pokes += 1
            now = self.now()
            for held in self._held.values():
                held.next_check = min(held.next_check, now)
            self._changed.notify_all()

    def waiting(self) -> list[tuple[str, datetime, str]]:
        """``(pipeline, scheduled time, what it waits for)`` of each waiting run."""
        with self._lock:
            return [(h.pipeline, h.firing.scheduled_at, h.note) for h in self._held.values()]

    def next_due(self) -> datetime | None:
        """When the next check is due, or None when nothing waits."""
        with self._lock:
            return min((_due(h) for h in self._held.values()), default=None)

    def check(self) -> int:
        """Check every run that is due; returns how many started or failed."""
        now = self.now()
        with self._lock:
            due = [h for h in self._held.values() if _due(h) <= now]
        done = 0
        for held in due:
            try:
                done += self._check_one(held, now)
            except EilError as exc:  # a gate query that fails is the run's failure
                done += self._finish(held, f"the freshness gate failed: {exc}")
            except Exception as exc:  # the waiter must outlive any one run's trouble
                log.exception("waiting: checking %s failed", held.pipeline)
                done += self._finish(held, f"checking what it waits for failed: {exc}")
        return done

    def _check_one(self, held: _Held, now: datetime) -> int:
        pipeline = self.known().get(held.pipeline)
        if pipeline is None:  # removed, or its file broke
            return self._finish(held, "the pipeline's file was removed or is no longer valid")
        unmet = self._unmet(pipeline, held, now)
        if not unmet:
            with self._lock:
                self._held.pop(_key(held.pipeline, held.firing.scheduled_at), None)
            log.info(
                "waited: %s at %s may start", held.pipeline, held.firing.scheduled_at.isoformat()
            )
            self._start(held.pipeline, held.firing)
            return 1
        if now >= held.deadline:
            return self._finish(held, f"gave up waiting after {_words(held)}: {_note(unmet)}")
        held.note = _note(unmet)
        held.next_check = now + RECHECK
        self.ledger.note_waiting(
            held.pipeline, held.firing.scheduled_at, note=held.note, checks=held.checks
        )
        return 0

    def _finish(self, held: _Held, message: str) -> int:
        with self._lock:
            self._held.pop(_key(held.pipeline, held.firing.scheduled_at), None)
        log.warning(
            "failed: %s at %s: %s", held.pipeline, held.firing.scheduled_at.isoformat(), message
        )
        self._fail(held.pipeline, held.firing, message)
        return 1

    def start(self, wait: Callable[[threading.Condition, float | None], Any]) -> None:
        """Start the waiter's thread; ``wait(condition, timeout)`` is the clock's wait."""

        def loop() -> None:
            with self._changed:
                while not self._stopping:
                    due = min((_due(h) for h in self._held.values()), default=None)
                    timeout = None if due is None else (due - self.now()).total_seconds()
                    if timeout is None or timeout > 0:
                        wait(self._changed, 60.0 if timeout is None else min(timeout, 60.0))
                        continue
                    self._changed.release()
                    try:
                        self.check()
                    finally:
                        self._changed.acquire()

        self._thread = threading.Thread(target=loop, name="eil-waiter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread.  Waiting rows stay in the ledger; the next start deals with them."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _key(name: str, at: datetime) -> tuple[str, datetime]:
    return name, _utc(at)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _due(held: _Held) -> datetime:
    candidates = [held.next_check, held.deadline]
    if held.gate_due is not None:
        candidates.append(held.gate_due)
    return min(candidates)


def _note(unmet: list[str]) -> str:
    return "waiting for " + "; ".join(unmet) if unmet else "ready"


def _words(held: _Held) -> str:
    waited = format_duration(held.deadline - _utc(held.firing.scheduled_at))
    checks = f" and {held.checks} checks of the gate" if held.checks else ""
    return f"{waited}{checks}"
