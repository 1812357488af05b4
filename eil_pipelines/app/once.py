"""``eil-run --once``: every selected pipeline once, now (or ``--at``), then exit.

Without delivery the runs are not recorded anywhere but their files.  With
delivery (``--once --deliver``) each run goes through the one ledgered run,
exactly as a scheduled run would: claimed (a finished row for the same time
is taken over: an explicit re-run), finished, its messages queued in the
outbox, and everything due is sent before the use case returns.  A send that
fails stays in the outbox with its next attempt time: the scheduler, or the
next ``--once --deliver``, retries it.  Running ``--once --deliver --at T``
twice sends nothing the second time: the outbox already holds (pipeline, T,
recipient).  To send a report again on purpose, use ``eil-run send``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..deliver import Dispatcher
from ..errors import ConfigError, ConfigErrors, EilError, UsageError
from ..ledger import DeliveryRecord, Ledger
from ..run.batch import run_once
from ..run.context import make_context
from ..run.gate import check_gate
from ..run.pipeline import RunResult, utc_now
from ..spec.loader import Pipeline
from ..spec.project import load_project_settings
from . import ledger_path
from .ledgered import LedgeredOutcome, claim_rerun, dispatch_hook, ledgered_run

__all__ = ["UNDELIVERED", "OnceOutcome", "once", "run_and_deliver", "select_pipelines"]

#: Row statuses that mean "not delivered (yet)": the command exits 1.
UNDELIVERED = ("pending", "sending", "failed", "gave_up")


@dataclass
class OnceOutcome:
    """What ``--once`` (with or without ``--deliver``) did."""

    results: list[RunResult]
    """One per pipeline, in order (a pipeline another process is running: ``skipped``)."""
    deliveries: list[DeliveryRecord] = field(default_factory=list)
    """The outbox rows of these runs, as they ended up (``--deliver`` only)."""
    delivered: bool = False
    """Whether the runs were delivered (and recorded in the ledger)."""

    @property
    def ok(self) -> bool:
        """Every run succeeded and every message went out (or was skipped by ``when``)."""
        return all(r.ok for r in self.results) and not any(
            d.status in UNDELIVERED for d in self.deliveries
        )


def select_pipelines(
    valid: Sequence[Pipeline], errors: Sequence[ConfigError], only: Sequence[str] | None
) -> list[Pipeline]:
    """The pipelines to run: the ``only`` names, else every enabled valid one.

    A name that is not among the valid pipelines raises the invalid files'
    problems when there are any (it may name one of them), else a
    :class:`UsageError` listing the names there are.
    """
    if not only:
        return [p for p in valid if p.spec.enabled]
    by_name = {p.name: p for p in valid}
    unknown = [n for n in only if n not in by_name]
    if unknown and errors:
        raise ConfigErrors(errors)
    if unknown:
        known = ", ".join(sorted(by_name))
        raise UsageError(
            f"eil-run: --only: no pipeline named {', '.join(unknown)} (pipelines: {known})"
        )
    return [by_name[n] for n in dict.fromkeys(only)]


def once(
    pipelines: Sequence[Pipeline],
    *,
    reports_dir: Path,
    at: datetime | None = None,
    workers: int = 4,
    deliver: bool = False,
    chart_processes: int | None = None,
    env: Any = None,
    clock: Callable[[], datetime] = utc_now,
    ignore_require: bool = False,
) -> OnceOutcome:
    """Run each pipeline once, as if scheduled at ``at`` (default: now).

    ``chart_processes`` > 0 starts that many chart processes for these runs
    (a one-shot run does not pay to start them unasked).  ``deliver`` records
    the runs and sends their messages (:func:`run_and_deliver`).  A pipeline
    whose freshness gate (``[schedule.require]``) is shut is not run: its result
    is ``skipped`` and says why, unless ``ignore_require``.  ``after`` is not
    waited for: a one-shot run is the author's, not the schedule's.
    """
    if at is None:
        # Whole seconds, as "run now": the time reads as people expect and is a
        # valid HTML datetime (at most three digits of a second) on the status page.
        at = clock().replace(microsecond=0)
    held = {} if ignore_require else _shut_gates(pipelines, at, clock)
    if held:
        runnable = [p for p in pipelines if p.name not in held]
        outcome = (
            once(
                runnable,
                reports_dir=reports_dir,
                at=at,
                workers=workers,
                deliver=deliver,
                chart_processes=chart_processes,
                env=env,
                clock=clock,
                ignore_require=True,
            )
            if runnable
            else OnceOutcome([], delivered=deliver)
        )
        ran = {r.pipeline: r for r in outcome.results}
        outcome.results = [ran.get(p.name) or held[p.name] for p in pipelines]
        return outcome
    with contextlib.ExitStack() as stack:
        charts = None
        if chart_processes:
            from ..charts.processes import ChartProcesses

            charts = stack.enter_context(ChartProcesses(chart_processes))
        how: dict[str, Any] = {
            "reports_dir": reports_dir,
            "at": at,
            "workers": workers,
            "chart_processes": charts,
            "clock": clock,
        }
        if deliver:
            return run_and_deliver(pipelines, env=env, **how)
        return OnceOutcome(run_once(pipelines, **how))


def run_and_deliver(
    pipelines: Sequence[Pipeline],
    *,
    reports_dir: Path,
    at: datetime | None = None,
    workers: int = 4,
    env: Any = None,
    clock: Callable[[], datetime] = utc_now,
    chart_processes: Any = None,
) -> OnceOutcome:
    """Run each pipeline once through the ledgered run, queue and send its messages."""
    settings = load_project_settings(pipelines[0].root, env=os.environ if env is None else env)
    moment = at if at is not None else clock()
    with Ledger(ledger_path(reports_dir)) as ledger:
        dispatcher = Dispatcher(ledger, settings, pipelines=lambda: pipelines, clock=clock)
        dispatcher.recover()
        # --once has no retries: a failure is final, as after a schedule's last retry.
        hook = dispatch_hook(dispatcher, final=True)

        def one(pipeline: Pipeline) -> LedgeredOutcome:
            return ledgered_run(
                pipeline,
                make_context(pipeline, moment),
                ledger=ledger,
                reports_dir=reports_dir,
                claim=claim_rerun(),
                clock=clock,
                chart_processes=chart_processes,
                deliver=hook,
            )

        if len(pipelines) <= 1 or workers <= 1:
            outcomes = [one(p) for p in pipelines]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eil-run") as pool:
                outcomes = list(pool.map(one, pipelines))
        ran = [(p, o) for p, o in zip(pipelines, outcomes, strict=True) if o.claimed]
        dispatcher.process_due(pipelines=[p.name for p, _ in ran])
        deliveries = [
            row
            for pipeline, outcome in ran
            for row in ledger.deliveries(
                pipeline=pipeline.name, scheduled_at=outcome.ctx.scheduled_at
            )
        ]
    results = [
        _result(o) if o.result is not None else _refused(p, o, clock())
        for p, o in zip(pipelines, outcomes, strict=True)
    ]
    return OnceOutcome(results, deliveries, delivered=True)


def _result(outcome: LedgeredOutcome) -> RunResult:
    assert outcome.result is not None
    return outcome.result


def _refused(pipeline: Pipeline, outcome: LedgeredOutcome, now: datetime) -> RunResult:
    """The result of a pipeline whose time another process is running."""
    ctx = outcome.ctx
    return RunResult(
        pipeline=pipeline.name,
        scheduled_at=ctx.scheduled_at,
        stamp=ctx.stamp,
        status="skipped",
        started_at=now,
        finished_at=now,
        duration=0.0,
        error=f"not run: {pipeline.name} at {ctx.scheduled_at.isoformat()} "
        "is running in another process",
    )


def _shut_gates(
    pipelines: Sequence[Pipeline], at: datetime | None, clock: Callable[[], datetime]
) -> dict[str, RunResult]:
    """The pipelines whose freshness gate is shut at ``at``, each with its result."""
    held: dict[str, RunResult] = {}
    for pipeline in pipelines:
        schedule = pipeline.spec.schedule
        if schedule is None or schedule.require is None:
            continue
        ctx = make_context(pipeline, at if at is not None else clock())
        now = clock()
        try:
            is_open, words = check_gate(pipeline, ctx)
        except EilError as exc:
            is_open, words, status = False, f"the freshness gate failed: {exc}", "failed"
        else:
            status = "skipped"
        if is_open:
            continue
        held[pipeline.name] = RunResult(
            pipeline=pipeline.name,
            scheduled_at=ctx.scheduled_at,
            stamp=ctx.stamp,
            status=status,
            started_at=now,
            finished_at=now,
            duration=0.0,
            error=f"not run: its freshness gate is shut: {words} (--ignore-require runs it anyway)"
            if status == "skipped"
            else words,
            run_id=ctx.run_id,
        )
    return held
