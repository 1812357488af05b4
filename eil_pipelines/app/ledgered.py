"""THE ledgered run: claim (or reclaim) -> ``run_pipeline`` -> finish -> delivery hook.

Every use case that records a run in the ledger (the scheduler service,
``--once --deliver``, backfill) goes through :func:`ledgered_run`; they differ
only in how they take the row (a :data:`ClaimPolicy`: :func:`claim_scheduled`,
:func:`claim_reprocess`, :func:`claim_rerun`) and in what happens after the
run (a :data:`DeliveryHook`, usually :func:`dispatch_hook`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..ledger import LedgerFullError, LedgerStateError, LedgerUnavailableError
from ..ledger.postgres import PostgresLedger
from ..run.context import RunContext
from ..run.pipeline import FENCED, RunResult, publish_status, run_pipeline
from ..schedule.durations import format_duration
from ..spec.loader import Pipeline
from .storage import report_store

if TYPE_CHECKING:
    from ..deliver import Dispatcher
    from ..ledger import Ledger, RunRecord
    from ..sources.guard import QueryGuard

__all__ = [
    "ClaimPolicy",
    "DeliveryHook",
    "LedgeredOutcome",
    "claim_after_wait",
    "claim_reprocess",
    "claim_rerun",
    "claim_scheduled",
    "dispatch_hook",
    "ledgered_failure",
    "ledgered_run",
]

#: Takes the run's row: ``(ledger, pipeline name, scheduled time, run id, now)`` ->
#: the ``running`` record, or ``None`` when the time is not this run's to do.
ClaimPolicy = Callable[["Ledger", str, datetime, str, datetime], "RunRecord | None"]

#: Called after the run is recorded: ``(pipeline, ctx, result, status, error)``.
DeliveryHook = Callable[[Pipeline, RunContext, RunResult, str, "str | None"], None]

#: Finished states an explicit re-run (``--once --deliver``) takes over; never ``running``.
RERUN_FROM = ("succeeded", "failed", "skipped", "timed_out", "abandoned")


def claim_scheduled(attempt: int) -> ClaimPolicy:
    """The scheduler's claim: a first attempt inserts the row (or takes over an
    abandoned one, as its next attempt); a retry reclaims it, continuing its count."""

    def claim(ledger: Ledger, name: str, at: datetime, run_id: str, now: datetime) -> Any:
        if attempt > 1:
            # A retry continues the row's count (a reclaimed abandoned run started at 2).
            previous = ledger.get(name, at)
            count = max(attempt, previous.attempt + 1) if previous else attempt
            return ledger.reclaim(name, at, run_id=run_id, attempt=count, now=now)
        record = ledger.claim(name, at, run_id=run_id, now=now)
        if record is None:
            existing = ledger.get(name, at)
            if existing is not None and existing.status == "abandoned":
                record = ledger.reclaim(
                    name,
                    at,
                    run_id=run_id,
                    attempt=existing.attempt + 1,
                    now=now,
                    allowed_from=("abandoned",),
                )
        return record

    return claim


def claim_reprocess(previous: str | None, attempt: int, allowed: Sequence[str]) -> ClaimPolicy:
    """Backfill's claim: a time never recorded is claimed; a recorded one is
    reclaimed from the ``allowed`` states as attempt ``attempt + 1``."""

    def claim(ledger: Ledger, name: str, at: datetime, run_id: str, now: datetime) -> Any:
        if previous is None:
            return ledger.claim(name, at, run_id=run_id, now=now)
        return ledger.reclaim(
            name, at, run_id=run_id, attempt=attempt + 1, now=now, allowed_from=tuple(allowed)
        )

    return claim


def claim_rerun() -> ClaimPolicy:
    """``--once --deliver``'s claim: a finished row for the same time is taken
    over (an explicit re-run, attempt 1), a live one is not."""

    def claim(ledger: Ledger, name: str, at: datetime, run_id: str, now: datetime) -> Any:
        record = ledger.claim(name, at, run_id=run_id, now=now)
        if record is not None:
            return record
        return ledger.reclaim(name, at, run_id=run_id, attempt=1, now=now, allowed_from=RERUN_FROM)

    return claim


@dataclass(frozen=True)
class LedgeredOutcome:
    """What one ledgered run did."""

    ctx: RunContext
    """The run's context (its attempt is the ledger's count)."""
    result: RunResult | None = None
    """The run's result; ``None`` when the claim was refused and nothing ran."""
    status: str = "skipped"
    """The status recorded: the result's, or ``timed_out`` when the guard stopped it."""
    error: str | None = None
    """The error recorded."""
    recorded: bool = False
    """Whether the ledger took the finish (``False``: not claimed, or abandoned meanwhile)."""

    @property
    def claimed(self) -> bool:
        """Whether this process ran the time."""
        return self.result is not None

    @property
    def ok(self) -> bool:
        """Nothing went wrong: not this run's to do, or it succeeded (or was not recorded)."""
        return not self.recorded or self.status == "succeeded"


def ledgered_run(
    pipeline: Pipeline,
    ctx: RunContext,
    *,
    ledger: Ledger,
    reports_dir: Path,
    claim: ClaimPolicy,
    clock: Callable[[], datetime],
    guard: QueryGuard | None = None,
    chart_processes: Any = None,
    deliver: DeliveryHook | None = None,
    log: logging.Logger | None = None,
) -> LedgeredOutcome:
    """Claim ``pipeline`` at ``ctx.scheduled_at``, run it, record its end, then deliver.

    ``log`` (the scheduler's logger) gets a line when the run starts, ends,
    fails or is not run; without it the run is silent (the caller reports).
    A run stopped by ``guard`` for its timeout is recorded ``timed_out``.
    """
    name = pipeline.name
    at = ctx.scheduled_at
    try:
        record = claim(ledger, name, at, ctx.run_id, clock())
    except LedgerFullError as exc:
        if log is None:
            raise  # a command: it says so and exits 3
        # The scheduler goes on: once there is room, the next fire times run.
        log.error("not run: %s at %s: %s", name, at.isoformat(), exc)
        return LedgeredOutcome(ctx)
    if record is None:
        if log is not None:
            log.info(
                "not run: %s at %s is already in the ledger (another process, or an earlier run)",
                name,
                at.isoformat(),
                extra=_run_fields(name, at, ctx.run_id, ctx.attempt),
            )
        return LedgeredOutcome(ctx)
    if record.attempt != ctx.attempt:  # the ledger's count: a recovered run is its attempt 2
        ctx = dataclasses.replace(ctx, attempt=record.attempt)
    if log is not None:
        log.info(
            "started: %s at %s (attempt %d)",
            name,
            at.isoformat(),
            ctx.attempt,
            extra=_run_fields(name, at, ctx.run_id, ctx.attempt),
        )
    fence, site_lock = _shared_hooks(ledger, name, at, ctx)
    result = run_pipeline(
        pipeline,
        ctx,
        reports_dir,
        clock=clock,
        guard=guard,
        chart_processes=chart_processes,
        fence=fence,
        site_lock=site_lock,
        store=lambda: report_store(pipeline.root),
    )
    status, error = result.status, result.error
    if guard is not None and guard.stop_reason == "timeout" and not result.ok:
        status = "timed_out"
        schedule = pipeline.spec.schedule
        limit = format_duration(schedule.timeout) if schedule and schedule.timeout else "its limit"
        error = f"stopped after the timeout of {limit}: {error}"
        # The run recorded itself as failed for the report site; it timed out.
        publish_status(pipeline, ctx, reports_dir, status, error, clock())
    try:
        _retrying(
            lambda: ledger.finish(
                name,
                at,
                status=status,
                now=clock(),
                error=error,
                files=[str(f) for f in result.files],
                run_id=ctx.run_id,
                attempt=ctx.attempt,
                summary=result.summary(),
            ),
            retry_for=_finish_patience(ledger),
        )
    except LedgerFullError as exc:
        # The report is written; its row stays running, and the next start
        # marks it abandoned (and catch_up decides whether it runs again).
        logging.getLogger("eil_pipelines.scheduler").error(
            "not recorded: %s at %s (its report was written): %s", name, at.isoformat(), exc
        )
        if log is None:
            raise
        return LedgeredOutcome(ctx, result, status, error, recorded=False)
    except (LedgerStateError, LedgerUnavailableError) as exc:
        # Abandoned at shutdown (or by another process's recovery) meanwhile:
        # the row is no longer this run's, and its new state stands.
        logging.getLogger("eil_pipelines.scheduler").warning(
            "not recorded: %s at %s: %s%s",
            name,
            at.isoformat(),
            exc,
            "; its files were not published" if (error or "").startswith(FENCED) else "",
        )
        return LedgeredOutcome(ctx, result, status, error, recorded=False)
    if log is not None:
        _log_end(log, name, at, ctx, result, status, error)
    if deliver is not None:
        deliver(pipeline, ctx, result, status, error)
    return LedgeredOutcome(ctx, result, status, error, recorded=True)


def claim_after_wait() -> ClaimPolicy:
    """The claim of a run whose wait is over: its ``waiting`` row becomes ``running``
    (one conditional update, so exactly one process takes it)."""

    def claim(ledger: Ledger, name: str, at: datetime, run_id: str, now: datetime) -> Any:
        # The waiting row's own attempt: 2 or more when it was taken back from a
        # process that died while it waited.
        held = ledger.get(name, at)
        attempt = held.attempt if held is not None and held.status == "waiting" else 1
        return ledger.reclaim(
            name, at, run_id=run_id, attempt=attempt, now=now, allowed_from=("waiting",)
        )

    return claim


def ledgered_failure(
    pipeline: Pipeline,
    ctx: RunContext,
    error: str,
    *,
    ledger: Ledger,
    reports_dir: Path,
    claim: ClaimPolicy,
    clock: Callable[[], datetime],
    deliver: DeliveryHook | None = None,
    log: logging.Logger | None = None,
) -> LedgeredOutcome:
    """Record a run that failed before it started (it waited too long, or a backfill found
    its upstream runs had not succeeded): claim, publish the failure on the site, finish
    ``failed``, and send the failure notice like any failed run."""
    name, at = pipeline.name, ctx.scheduled_at
    started = clock()
    record = claim(ledger, name, at, ctx.run_id, started)
    if record is None:
        return LedgeredOutcome(ctx)
    # The ledger's count: a backfill that reprocesses a failed time claims it as attempt 2.
    attempt = record.attempt
    result = RunResult(
        pipeline=name,
        scheduled_at=at,
        stamp=ctx.stamp,
        status="failed",
        started_at=started,
        finished_at=started,
        duration=0.0,
        error=error,
        run_id=ctx.run_id,
    )
    publish_status(pipeline, ctx, reports_dir, "failed", error, started)
    try:
        ledger.finish(
            name, at, status="failed", now=clock(), error=error, run_id=ctx.run_id, attempt=attempt
        )
    except LedgerStateError:
        return LedgeredOutcome(ctx, result, "failed", error, recorded=False)
    if log is not None:
        log.error("failed: %s at %s: %s", name, at.isoformat(), error)
    if deliver is not None:
        deliver(pipeline, ctx, result, "failed", error)
    return LedgeredOutcome(ctx, result, "failed", error, recorded=True)


#: How long a run's finish waits at least for a shared ledger that can't be reached.
FINISH_PATIENCE_S = 120.0
#: Pauses between tries of a shared ledger that cannot be reached (the last repeats).
_BACKOFF = (0.5, 1.0, 2.0, 5.0)


def _retrying(call: Callable[[], Any], *, retry_for: float) -> Any:
    """``call()``, tried again with backoff for up to ``retry_for`` seconds while the
    ledger cannot be reached: a run in flight keeps its outcome through an outage."""
    deadline = time.monotonic() + retry_for
    for n in range(1_000_000):
        try:
            return call()
        except LedgerUnavailableError:
            pause = _BACKOFF[min(n, len(_BACKOFF) - 1)]
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def _finish_patience(ledger: Any) -> float:
    """How long a finish waits for a shared ledger to come back (0 for SQLite)."""
    lease = getattr(ledger, "lease", None)
    # Long enough to ride out a restart of the database: the heartbeat keeps the
    # lease while the run is in flight, and fencing refuses the finish if the run
    # was taken over meanwhile.
    return 0.0 if lease is None else FINISH_PATIENCE_S + 2 * lease.total_seconds()


def _shared_hooks(
    ledger: Any, name: str, at: datetime, ctx: RunContext
) -> tuple[Callable[[], bool] | None, Callable[[], Any] | None]:
    """The fencing check and the site lock of a ledger shared by several runners
    (``(None, None)`` for the SQLite ledger of one machine)."""
    if not isinstance(ledger, PostgresLedger):
        return None, None
    patience = _finish_patience(ledger)

    def fence() -> bool:
        # Unreachable all this time: the run is likely someone else's by now; don't publish.
        try:
            return bool(
                _retrying(
                    lambda: ledger.holds(name, at, run_id=ctx.run_id, attempt=ctx.attempt),
                    retry_for=patience,
                )
            )
        except LedgerUnavailableError:
            return False

    shared_lock = ledger.site_lock  # Postgres only: not in the backends' interface

    @contextlib.contextmanager
    def site_lock() -> Iterator[None]:
        # Taking the lock rides out an outage as the fence does: a run whose
        # report is ready must not fail because Postgres restarted meanwhile.
        with contextlib.ExitStack() as stack:
            _retrying(lambda: stack.enter_context(shared_lock()), retry_for=patience)
            yield

    return fence, site_lock


def _log_end(
    log: logging.Logger,
    name: str,
    at: datetime,
    ctx: RunContext,
    result: RunResult,
    status: str,
    error: str | None,
) -> None:
    fields = {**_run_fields(name, at, ctx.run_id, ctx.attempt), "status": status}
    if status == "succeeded":
        shown = ", ".join(
            str(f) for f in result.files if f.suffix in (".md", ".html") and "latest" not in f.name
        )
        log.info(
            "finished: %s at %s in %.2fs: %s",
            name,
            at.isoformat(),
            result.duration,
            shown,
            extra=fields,
        )
    else:
        log.error(
            "%s: %s at %s (attempt %d): %s",
            status,
            name,
            at.isoformat(),
            ctx.attempt,
            error,
            extra=fields,
        )


def _run_fields(name: str, at: datetime, run_id: str | None, attempt: int) -> dict[str, Any]:
    # The fields `--log-format json` copies into each line about a run.
    return {"pipeline": name, "scheduled_at": at.isoformat(), "run_id": run_id, "attempt": attempt}


def dispatch_hook(
    dispatcher: Dispatcher | None, final: Callable[[str], bool] | bool = True
) -> DeliveryHook | None:
    """The delivery hook that queues a run's messages, alert and failure notice.

    ``final`` says whether a failure is the last word (a scheduled run with
    retries left is not): a bool, or a function of the recorded status.  A
    delivery problem is logged (redacted) and never fails the run.
    """
    if dispatcher is None:
        return None

    def deliver(
        pipeline: Pipeline, ctx: RunContext, result: RunResult, status: str, error: str | None
    ) -> None:
        is_final = final(status) if callable(final) else final
        try:
            dispatcher.after_run(pipeline, ctx, result, status=status, error=error, final=is_final)
        except Exception as exc:  # a delivery problem must never stop the runs
            # Redacted, and no traceback at INFO: an exception's text may hold a secret.
            logging.getLogger("eil_pipelines.deliver").error(
                "delivery: could not queue the messages of %s at %s: %s",
                pipeline.name,
                ctx.scheduled_at.isoformat(),
                dispatcher.redactor()(f"{type(exc).__name__}: {exc}"),
            )
            logging.getLogger("eil_pipelines.deliver").debug("delivery: traceback", exc_info=True)

    return deliver
