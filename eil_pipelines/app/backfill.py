"""Backfill: run a pipeline for every fire time of its schedule in a past range.

Each fire time runs as if the scheduler had fired it then: the run context
(period, built-in parameters, file stamp) comes from that time, and the run
is recorded in the run ledger under that time, exactly as the scheduler
records it.  So a backfilled report is the report the schedule would have
made, and the scheduler never runs a backfilled time again.

What runs is decided from the ledger (:func:`plan`):

=========== =====================================================================
reprocess   which recorded times run again
=========== =====================================================================
``none``    none: only times with no row, or a ``skipped`` row (a time the
            scheduler deliberately left out, such as a missed time under
            ``catch_up = "latest"``, which is what a backfill is for)
``failed``  also ``failed``, ``timed_out`` and ``abandoned`` ones
``all``     also ``succeeded`` ones
=========== =====================================================================

A ``running`` row is never taken over: it has a live owner (or will be
marked abandoned by the scheduler's next start).

:func:`backfill` is the use case: it takes the pipeline's backfill lease (one
backfill per pipeline at a time), plans, and :func:`run_backfill` runs the
plan oldest first, up to ``workers`` at a time, each through the one ledgered
run, and stops starting runs once its ``stop`` event is set (the CLI sets it
on Ctrl-C), so a stop ends after the runs in flight.  Nothing here prints:
progress goes to callbacks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import CouldNotRun, UsageError
from ..ledger import Ledger
from ..run.context import make_context, pipeline_trigger
from ..run.pipeline import utc_now
from ..spec.loader import Pipeline, display_path
from . import ledger_path
from .dependencies import unmet_upstreams
from .ledgered import claim_reprocess, ledgered_failure, ledgered_run

__all__ = [
    "REPROCESS",
    "BackfillRunning",
    "Outcome",
    "Planned",
    "backfill",
    "backfill_trigger",
    "dry_run",
    "fire_times",
    "lease_name",
    "plan",
    "run_backfill",
]

#: For each ``--reprocess`` choice, the ledger states a recorded time may be run from again.
REPROCESS: dict[str, tuple[str, ...]] = {
    "none": ("skipped",),
    "failed": ("skipped", "failed", "timed_out", "abandoned"),
    "all": ("skipped", "failed", "timed_out", "abandoned", "succeeded"),
}


def lease_name(pipeline: str) -> str:
    """The ledger lease that keeps two backfills of one pipeline from running at once."""
    return f"backfill:{pipeline}"


@dataclass(frozen=True)
class Planned:
    """One fire time of the range and what the backfill does with it."""

    scheduled_at: datetime
    """The fire time (aware, in the pipeline's zone)."""
    run: bool
    """Whether it runs."""
    previous: str | None = None
    """The ledger status it had, or ``None`` when it was never recorded."""
    attempt: int = 0
    """The attempt count it had in the ledger (0: none)."""

    @property
    def reason(self) -> str:
        """What happens, in words: ``run``, ``run again (failed before)``, ``skip: …``."""
        if self.run:
            return "run" if self.previous is None else f"run again (was {self.previous})"
        if self.previous == "succeeded":
            return "skip: already succeeded (--reprocess all runs it again)"
        if self.previous == "running":
            return "skip: running now, in another process"
        return f"skip: {self.previous} before (--reprocess failed runs it again)"


@dataclass(frozen=True)
class Outcome:
    """What happened to one planned run."""

    scheduled_at: datetime
    """The fire time."""
    status: str
    """``succeeded``, ``failed``, or ``skipped`` when the ledger gave the time to someone else."""
    error: str | None = None
    """The failure message, or why it was skipped."""
    duration: float = 0.0
    """Seconds the run took."""
    files: tuple[Path, ...] = ()
    """Files written."""


def backfill_trigger(pipeline: Pipeline) -> Any:
    """The pipeline's schedule trigger; :class:`UsageError` when it has none to backfill."""
    trigger = pipeline_trigger(pipeline)
    if trigger is None:
        folder = display_path(pipeline.file.parent)
        raise UsageError(
            f"eil-run backfill: {pipeline.display_path} has no [schedule], so it has no fire "
            f"times to backfill; render one past report with: "
            f"eil-run --once --only {pipeline.name} --at DATETIME {folder}"
        )
    return trigger


def fire_times(trigger: Any, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time ``t`` of ``trigger`` with ``start <= t <= end``, oldest first."""
    return list(trigger.fires(start - timedelta(microseconds=1), end))


def plan(
    pipeline: Pipeline, times: Sequence[datetime], ledger: Any, reprocess: str
) -> list[Planned]:
    """Decide for each fire time whether it runs, from the ledger (``None``: an empty one)."""
    allowed = REPROCESS[reprocess]
    rows: dict[datetime, Any] = {}
    if ledger is not None and times:
        for record in ledger.history(pipeline=pipeline.name, limit=None):
            rows[record.scheduled_at.astimezone(UTC)] = record
    out = []
    for moment in times:
        record = rows.get(moment.astimezone(UTC))
        if record is None:
            out.append(Planned(moment, run=True))
        else:
            out.append(
                Planned(
                    moment,
                    run=record.status in allowed,
                    previous=record.status,
                    attempt=record.attempt,
                )
            )
    return out


def run_backfill(
    pipeline: Pipeline,
    planned: Sequence[Planned],
    *,
    ledger: Any,
    reports_dir: Path,
    reprocess: str,
    workers: int = 1,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] = utc_now,
    on_done: Callable[[Outcome], None] | None = None,
    known: Mapping[str, Pipeline] | None = None,
) -> list[Outcome]:
    """Run the planned times that run, oldest first, up to ``workers`` at once.

    ``on_done`` is called in the calling thread as each run ends (for
    progress).  Once ``stop`` is set no further run starts; the runs in
    flight finish and are recorded.  Returns the outcomes in the order the
    runs ended.  With ``known`` (the folder's pipelines by name), a time whose
    upstream runs (``after``) have not all succeeded is not run: it is recorded
    ``failed``, naming them (``backfill --with-dependents``).
    """
    stop = stop or threading.Event()
    trigger = pipeline_trigger(pipeline)
    todo = [p for p in planned if p.run]
    outcomes: list[Outcome] = []
    allowed = REPROCESS[reprocess]

    def one(item: Planned) -> Outcome:
        try:
            if known is not None:
                unmet = _unmet(pipeline, item, trigger, ledger, known)
                if unmet:
                    return _fail_one(
                        pipeline, item, trigger, ledger, reports_dir, allowed, clock, unmet
                    )
            return _run_one(pipeline, item, trigger, ledger, reports_dir, allowed, clock)
        except Exception as exc:  # a ledger or disk problem: report it as this run's failure
            return Outcome(item.scheduled_at, "failed", f"{type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="eil-backfill") as pool:
        pending = iter(todo)
        running: set[Future[Outcome]] = set()
        while True:
            while len(running) < max(1, workers) and not stop.is_set():
                item = next(pending, None)
                if item is None:
                    break
                running.add(pool.submit(one, item))
            if not running:
                break
            # A timeout so a stop asked for meanwhile is seen without a run ending.
            done, running = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: f.result().scheduled_at.astimezone(UTC)):
                outcome = future.result()
                outcomes.append(outcome)
                if on_done is not None:
                    on_done(outcome)
    return outcomes


def _run_one(
    pipeline: Pipeline,
    item: Planned,
    trigger: Any,
    ledger: Any,
    reports_dir: Path,
    allowed: tuple[str, ...],
    clock: Callable[[], datetime],
) -> Outcome:
    outcome = ledgered_run(
        pipeline,
        make_context(pipeline, item.scheduled_at, trigger=trigger),
        ledger=ledger,
        reports_dir=reports_dir,
        claim=claim_reprocess(item.previous, item.attempt, allowed),
        clock=clock,
    )
    result = outcome.result
    if result is None:
        # Between the plan and now the scheduler (or another run) took the time.
        current = ledger.get(pipeline.name, item.scheduled_at)
        state = current.status if current is not None else "gone"
        return Outcome(item.scheduled_at, "skipped", f"taken meanwhile (now {state})")
    return Outcome(
        item.scheduled_at, outcome.status, outcome.error, result.duration, tuple(result.files)
    )


def _unmet(
    pipeline: Pipeline, item: Planned, trigger: Any, ledger: Any, known: Mapping[str, Pipeline]
) -> str:
    """What ``item`` still waits for, in words (the rule of :mod:`.dependencies`); empty when
    every upstream run of its period succeeded."""
    ctx = make_context(pipeline, item.scheduled_at, trigger=trigger)
    unmet = unmet_upstreams(ledger, pipeline, ctx, known)
    return "; ".join(u.describe() for u in unmet)


def _fail_one(
    pipeline: Pipeline,
    item: Planned,
    trigger: Any,
    ledger: Any,
    reports_dir: Path,
    allowed: tuple[str, ...],
    clock: Callable[[], datetime],
    unmet: str,
) -> Outcome:
    """Record ``item`` failed without running it: its upstream runs did not succeed."""
    error = f"not run: its upstream runs did not succeed: {unmet}"
    outcome = ledgered_failure(
        pipeline,
        make_context(pipeline, item.scheduled_at, trigger=trigger),
        error,
        ledger=ledger,
        reports_dir=reports_dir,
        claim=claim_reprocess(item.previous, item.attempt, allowed),
        clock=clock,
    )
    if outcome.result is None:
        current = ledger.get(pipeline.name, item.scheduled_at)
        state = current.status if current is not None else "gone"
        return Outcome(item.scheduled_at, "skipped", f"taken meanwhile (now {state})")
    return Outcome(item.scheduled_at, "failed", error)


class BackfillRunning(CouldNotRun):
    """Another process holds the backfill lease of the pipeline."""


def backfill(
    pipeline: Pipeline,
    times: Sequence[datetime],
    *,
    reports_dir: Path,
    reprocess: str,
    holder: str,
    workers: int = 1,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] = utc_now,
    on_planned: Callable[[list[Planned]], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    known: Mapping[str, Pipeline] | None = None,
) -> tuple[list[Planned], list[Outcome]]:
    """The backfill use case: take the pipeline's lease, plan against the ledger, run.

    ``holder`` names this backfill in the refusal another one gets.  Raises
    :class:`BackfillRunning` when another backfill of the pipeline holds the
    lease.  ``on_planned`` sees the plan before the first run starts.  Once
    ``stop`` is set no further run starts (the caller decides what sets it:
    a signal, a button).  With ``known``, a time runs only when its upstream
    runs succeeded (:func:`run_backfill`).  Returns the plan and the outcomes.
    """
    with Ledger(ledger_path(reports_dir)) as ledger:
        lease = lease_name(pipeline.name)
        taken = ledger.acquire_lease(lease, holder=holder, now=clock())
        if taken is not None:
            raise BackfillRunning(
                f'eil-run backfill: another backfill of "{pipeline.name}" is running: {taken}; '
                "wait for it to finish (one backfill per pipeline at a time)"
            )
        try:
            planned = plan(pipeline, times, ledger, reprocess)
            if on_planned is not None:
                on_planned(planned)
            outcomes = run_backfill(
                pipeline,
                planned,
                ledger=ledger,
                reports_dir=reports_dir,
                reprocess=reprocess,
                workers=workers,
                stop=stop,
                clock=clock,
                on_done=on_done,
                known=known,
            )
        finally:
            ledger.release_lease(lease)
    return planned, outcomes


def dry_run(
    pipeline: Pipeline, times: Sequence[datetime], *, reports_dir: Path, reprocess: str
) -> list[Planned]:
    """The plan alone (``--dry-run``): read from the ledger when there is one, nothing written."""
    path = ledger_path(reports_dir)
    if not path.exists():
        return plan(pipeline, times, None, reprocess)
    with Ledger(path) as ledger:
        return plan(pipeline, times, ledger, reprocess)
