"""``eil-run --once --deliver``: run once and deliver exactly as a scheduled run would.

Each run is recorded in the run ledger (claimed, then finished, as the
scheduler does), its messages are queued in the outbox, and everything due
is sent before the command returns.  A send that fails stays in the outbox
with its next attempt time: the scheduler, or the next ``--once --deliver``,
retries it.  Running ``--once --deliver --at T`` twice sends nothing the
second time: the outbox already holds (pipeline, T, recipient).  To send a
report again on purpose, use ``eil-run send``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from ..ledger import DeliveryRecord, Ledger
from ..run.batch import run_once
from ..run.context import make_context
from ..run.pipeline import RunResult, utc_now
from ..spec.loader import Pipeline
from ..spec.project import load_project_settings
from .dispatch import Dispatcher

log = logging.getLogger("eil_pipelines.deliver")

#: Row statuses that mean "not delivered (yet)": the command exits 1.
UNDELIVERED = ("pending", "sending", "failed", "gave_up")


@dataclass
class OnceOutcome:
    """What ``--once --deliver`` did."""

    results: list[RunResult]
    """One per pipeline, in order (a pipeline another process is running: ``skipped``)."""
    deliveries: list[DeliveryRecord] = field(default_factory=list)
    """The outbox rows of these runs, as they ended up."""

    @property
    def ok(self) -> bool:
        """Every run succeeded and every message went out (or was skipped by ``when``)."""
        return all(r.ok for r in self.results) and not any(
            d.status in UNDELIVERED for d in self.deliveries
        )


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
    """Run each pipeline once, record it in the ledger, queue and send its messages."""
    from ..run.service import ledger_path

    settings = load_project_settings(pipelines[0].root, env=os.environ if env is None else env)
    moment = at if at is not None else clock()
    with Ledger(ledger_path(reports_dir)) as ledger:
        dispatcher = Dispatcher(ledger, settings, pipelines=lambda: pipelines, clock=clock)
        dispatcher.recover()
        contexts = {}
        refused: dict[str, RunResult] = {}
        for pipeline in pipelines:
            ctx = make_context(pipeline, moment)
            if _claim(ledger, pipeline.name, ctx, clock()):
                contexts[pipeline.name] = ctx
            else:
                now = clock()
                refused[pipeline.name] = RunResult(
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

        by_name = {p.name: p for p in pipelines}

        def record(result: RunResult) -> None:
            ctx = contexts[result.pipeline]
            ledger.finish(
                result.pipeline,
                ctx.scheduled_at,
                status=result.status,
                now=clock(),
                error=result.error,
                files=[str(f) for f in result.files],
                run_id=ctx.run_id,
                summary=result.summary(),
            )
            # --once has no retries: a failure is final, as after a schedule's last retry.
            try:
                dispatcher.after_run(by_name[result.pipeline], ctx, result, final=True)
            except Exception as exc:  # the other pipelines' runs and messages go on
                text = dispatcher.redactor()(f"{type(exc).__name__}: {exc}")
                log.error("delivery: could not queue the messages of %s: %s", result.pipeline, text)

        claimed = [p for p in pipelines if p.name in contexts]
        ran = run_once(
            claimed,
            reports_dir=reports_dir,
            at=moment,
            workers=workers,
            clock=clock,
            on_result=record,
            chart_processes=chart_processes,
        )
        results_by_name = {r.pipeline: r for r in ran} | refused
        dispatcher.process_due(pipelines=list(contexts))
        deliveries = [
            row
            for name, ctx in contexts.items()
            for row in ledger.deliveries(pipeline=name, scheduled_at=ctx.scheduled_at)
        ]
    return OnceOutcome([results_by_name[p.name] for p in pipelines], deliveries)


def _claim(ledger: Ledger, name: str, ctx: Any, now: datetime) -> bool:
    """Claim the run's ledger row; an earlier finished row for the same time is
    taken over (an explicit re-run), a live one is not."""
    if ledger.claim(name, ctx.scheduled_at, run_id=ctx.run_id, now=now) is not None:
        return True
    again = ledger.reclaim(
        name,
        ctx.scheduled_at,
        run_id=ctx.run_id,
        attempt=1,
        now=now,
        allowed_from=("succeeded", "failed", "skipped", "timed_out", "abandoned"),
    )
    return again is not None


def delivery_line(delivery: Mapping[str, Any]) -> str:
    """One delivery (a :meth:`DeliveryRecord.as_dict` mapping) for people:
    ``report email to cfo@example.com: failed (attempt 1 of 8, next 2026-…): error``."""
    what = f"{delivery['kind'].replace('_', ' ')} {delivery['channel']} to {delivery['recipient']}"
    attempts = delivery["attempts"]
    if delivery["status"] == "failed":
        state = (
            f"failed (attempt {attempts} of {delivery['max_attempts']}, "
            f"next {delivery['next_attempt_at']})"
        )
    elif delivery["status"] == "gave_up":
        state = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
    else:
        state = delivery["status"]
    return f"{what}: {state}" + (f": {delivery['error']}" if delivery["error"] else "")


def print_deliveries(records: Sequence[DeliveryRecord], out: TextIO) -> None:
    """The deliveries table printed after ``--once --deliver``."""
    print("\ndeliveries:", file=out)
    if not records:
        print("  none", file=out)
        return
    for record in records:
        print(f"  {record.pipeline}: {delivery_line(record.as_dict())}", file=out)
    waiting = [r for r in records if r.status in ("pending", "failed")]
    if waiting:
        print(
            f"\n{len(waiting)} not delivered yet: the scheduler (eil-run PATH) or the next "
            "--once --deliver tries again.",
            file=out,
        )
