"""After a run: queue its deliveries, alert and failure notices; then send them.

:class:`Dispatcher` is what the scheduler service and ``eil-run --once
--deliver`` use.  :meth:`Dispatcher.after_run` renders the run's messages and
stores them in the ledger's outbox together with the pipeline's new alert
and failure state, in one transaction; an :class:`~.outbox.OutboxWorker`
(or :meth:`Dispatcher.process_due`) sends them.

Which messages a run queues:

* a succeeded run: one per ``[[deliver]]`` recipient (``when`` permitting),
  the alert's message when its state changes (or every run with findings in
  ``every_run`` mode), and "recovered" if a failure notice went out before;
* a failed or timed-out run with no retry to follow: one failure notice,
  unless one is already out for this failing streak;
* anything else (a failure that will be retried, a skip): nothing.

A run older than the newest one that shaped the pipeline's state (a retry
finishing after the next scheduled run) still delivers its report, but does
not move alerts or notices: the newer run already spoke for the pipeline.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any

from ..ledger import DeliveryRecord, Ledger
from ..spec.loader import Pipeline
from ..spec.project import ProjectSettings
from .alerts import alert_transition
from .messages import Composer, RunContextLike, RunFacts, RunResultLike
from .notices import failure_transition, notice_recipient
from .outbox import Outbox, OutboxWorker, describe
from .redact import Redactor, webhook_target

log = logging.getLogger("eil_pipelines.deliver")


class Dispatcher:
    """Queues and sends the messages of a project's runs."""

    def __init__(
        self,
        ledger: Ledger,
        settings: ProjectSettings,
        *,
        pipelines: Callable[[], Iterable[Pipeline]],
        clock: Callable[[], datetime],
    ):
        self.ledger = ledger
        self.settings = settings
        self.pipelines = pipelines
        self.clock = clock
        self.outbox = Outbox(
            ledger,
            settings,
            clock=clock,
            resolve_webhook=self.resolve_webhook,
            redactor=self.redactor,
        )
        self._worker: OutboxWorker | None = None

    # -- secrets and webhooks --------------------------------------------------------

    def redactor(self) -> Redactor:
        """A redactor for every secret known now: SMTP login, every webhook URL."""
        urls = [d.webhook for p in self.pipelines() for d in p.spec.deliver if d.webhook]
        return Redactor(self.settings.secrets(), urls)

    def resolve_webhook(self, pipeline: str, target: str) -> str | None:
        """The URL behind an outbox target, from the pipeline's current file."""
        for candidate in self.pipelines():
            if candidate.name != pipeline:
                continue
            for deliver in candidate.spec.deliver:
                if deliver.webhook and webhook_target(deliver.webhook) == target:
                    return deliver.webhook
        return None

    # -- queueing ----------------------------------------------------------------------

    def after_run(
        self,
        pipeline: Pipeline,
        ctx: RunContextLike,
        result: RunResultLike,
        *,
        status: str | None = None,
        error: str | None = None,
        final: bool = True,
    ) -> int:
        """Queue the messages of a finished run; return how many outbox rows it added.

        ``status``/``error`` override the result's (a timeout); ``final`` is
        False when the run will be retried.  Wakes the worker, if running.
        (``ledger.deliveries`` lists a run's rows; every run reading them back
        here cost a query that no caller used.)
        """
        facts = RunFacts.from_result(pipeline, ctx, result, status=status, error=error)
        queued = self.queue(facts, final=final)
        if queued:
            self.wakeup()
        return queued

    def queue(self, facts: RunFacts, *, final: bool) -> int:
        """Render and store the run's messages and state; how many rows were added."""
        now = self.clock()
        composer = Composer(self.settings, self.redactor(), now=now)
        spec = facts.pipeline.spec
        name, scheduled_at = facts.pipeline.name, facts.ctx.scheduled_at
        succeeded = facts.status == "succeeded"
        # Rendering (reading files, building MIME) happens before the write
        # transaction, which should hold the ledger's lock only briefly.
        reports = []
        if succeeded:
            for index, deliver in enumerate(spec.deliver):
                for row in composer.report(facts, index, deliver):
                    reports.append((deliver.when, row))
        recipient = notice_recipient(spec.owner, self.settings.delivery.failure_recipient)
        added = 0
        with self.ledger.delivery_batch(now=now) as batch:
            for when, row in reports:
                if (
                    when in ("changed", "changed_text")
                    and row.status == "pending"
                    and row.content_hash is not None
                    and batch.last_content_hash(name, "report", row.target) == row.content_hash
                ):
                    row = _skipped(
                        row,
                        'not sent: the data equal the last report sent (when = "changed")'
                        if when == "changed"
                        else 'not sent: the report equals the last one sent (when = "changed_text")',
                    )
                added += batch.add(name, scheduled_at, row)
            state = batch.state(name)
            if state.last_scheduled_at is not None and scheduled_at < state.last_scheduled_at:
                return added  # an older run finishing late: the newer one set the state
            new_state = state
            kind, new_state = failure_transition(
                new_state, status=facts.status, final=final, scheduled_at=scheduled_at
            )
            if kind is not None and recipient is None:
                log.warning(
                    "no failure notice for %s: it has no owner and eil.toml sets no "
                    "delivery.failure_recipient",
                    name,
                )
            elif kind == "failure":
                for row in composer.failure(facts, recipient):  # type: ignore[arg-type]
                    added += batch.add(name, scheduled_at, row)
            elif kind == "recovery":
                since = _local(state.failing_since, facts)
                for row in composer.recovery(facts, recipient, since):  # type: ignore[arg-type]
                    added += batch.add(name, scheduled_at, row)
            if succeeded and spec.alert is not None:
                frame = facts.alert_data
                findings = len(frame) if frame is not None else 0
                alert_kind, new_state = alert_transition(
                    new_state, mode=spec.alert.mode, findings=findings, scheduled_at=scheduled_at
                )
                if alert_kind is not None:
                    since = _local(state.alert_since, facts)
                    rows = composer.alert(
                        facts, spec.alert, cleared=alert_kind == "alert_cleared", since=since
                    )
                    for row in rows:
                        added += batch.add(name, scheduled_at, row)
            touched = succeeded or kind is not None
            if touched and (new_state != state or state.last_scheduled_at != scheduled_at):
                batch.set_state(dataclasses.replace(new_state, last_scheduled_at=scheduled_at))
        return added

    # -- sending -------------------------------------------------------------------------

    def recover(self) -> list[DeliveryRecord]:
        """Rows left ``sending`` by a process that died: due again now (logged)."""
        recovered = self.ledger.recover_deliveries(now=self.clock())
        for record in recovered:
            log.warning(
                "delivery interrupted by a stopped process, sending again: %s", describe(record)
            )
        return recovered

    def process_due(self, *, pipelines: Collection[str] | None = None) -> list[DeliveryRecord]:
        """Send every message due now (in this thread); return the rows as they ended up."""
        return self.outbox.process_due(pipelines=pipelines)

    def start(self, clock: Any) -> None:
        """Send in the background from now on: a worker thread on ``clock``
        (an object with ``now()`` and ``wait()``, as the scheduler's)."""
        self._worker = OutboxWorker(self.outbox, clock)
        self._worker.start()

    def wakeup(self) -> None:
        """Tell the worker that messages were queued."""
        if self._worker is not None:
            self._worker.wakeup()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop the worker after its send in flight; True when it ended in time."""
        if self._worker is None:
            return True
        return self._worker.stop(timeout)


def _skipped(row: Any, reason: str) -> Any:
    return dataclasses.replace(row, status="skipped", error=reason, payload=None)


def _local(moment: datetime | None, facts: RunFacts) -> str | None:
    if moment is None:
        return None
    local = moment.astimezone(facts.ctx.zone)
    return f"{local:%Y-%m-%d %H:%M} {facts.ctx.zone.key}"
