"""Sending what the outbox holds: due messages, retried with backoff.

Rendering and sending are separate steps.  A run's messages are rendered
into the ledger's ``outbox`` table when the run ends (see
:mod:`eil_pipelines.deliver.dispatch`); this module only takes due rows and
puts their stored bytes on the wire, so a retry never re-runs a query and
always sends the message first rendered.

Each send:

1. **claim**: in one transaction the row becomes ``sending``, owned by this
   process, and its attempt is counted (before anything goes out);
2. **send** over SMTP or HTTP;
3. **finish**: ``sent``; or ``failed`` with ``next_attempt_at`` =
   now + ``retry_delay`` × 2^(attempts−1), at most ``max_retry_delay``; or
   ``gave_up`` after ``max_attempts`` attempts or a permanent refusal.

Delivery is at-least-once in exactly one case: a process killed between
handing the message to the server and recording ``sent`` leaves the row
``sending``; the next start finds its process gone and sends it again, with
the same ``Message-ID`` (``Idempotency-Key`` for webhooks) so the receiver
can drop the copy.  A graceful stop waits for the send in flight, and a row
is never taken over while the process that claimed it lives, so restarts and
a second ``eil-run`` on the same folder never send twice.  The opposite
choice (at-most-once: give the row up) would lose a report silently to save
a rare duplicate, the worse failure for a report someone waits for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from ..ledger import DeliveryRecord, Ledger, LedgerUnavailableError
from ..spec.project import ProjectSettings
from .email import SendError, send_email
from .messages import NO_SMTP
from .redact import Redactor
from .webhook import post_json

log = logging.getLogger("eil_pipelines.deliver")

#: The worker looks at the outbox at least this often, for rows another
#: process (``eil-run --once --deliver``) left to retry.
POLL_S = 30.0

#: Finds a webhook's URL again from its outbox target: (pipeline, target) → URL.
WebhookResolver = Callable[[str, str], "str | None"]


def describe(record: DeliveryRecord) -> str:
    """``report of daily_sales at 2026-11-27T06:00:00+00:00 to cfo@example.com``."""
    what = record.kind.replace("_", " ")
    return f"{what} of {record.pipeline} at {record.scheduled_at.isoformat()} to {record.recipient}"


class Outbox:
    """Sends due outbox rows, one at a time, and records each outcome."""

    def __init__(
        self,
        ledger: Ledger,
        settings: ProjectSettings,
        *,
        clock: Callable[[], datetime],
        resolve_webhook: WebhookResolver,
        redactor: Callable[[], Redactor],
    ):
        self.ledger = ledger
        self.settings = settings
        self.clock = clock
        self.resolve_webhook = resolve_webhook
        self.redactor = redactor
        # One send at a time per process: the worker thread and an explicit
        # process_due() (tests, --once) must not interleave their claims.
        self._lock = threading.Lock()

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt: doubling, capped."""
        delivery = self.settings.delivery
        delay = delivery.retry_delay * (2 ** max(0, attempts - 1))
        return min(delay, delivery.max_retry_delay)

    def process_due(self, *, pipelines: Collection[str] | None = None) -> list[DeliveryRecord]:
        """Send every message due now; return the rows as they ended up.

        A row that fails is scheduled for later and not tried again in this
        call.  ``pipelines`` restricts the work to those pipelines' rows.
        """
        done: list[DeliveryRecord] = []
        with self._lock:
            now = self.clock()
            while True:
                claimed = self.ledger.claim_delivery(now=now, pipelines=pipelines)
                if claimed is None:
                    return done
                record = self._send_one(*claimed)
                if record is not None:
                    done.append(record)

    def _send_one(self, record: DeliveryRecord, payload: bytes) -> DeliveryRecord | None:
        redact = self.redactor()
        try:
            self._send(record, payload)
        except SendError as exc:
            return self._failed(record, redact(str(exc)) or "", permanent=exc.permanent)
        except Exception as exc:  # a bug must not stop the other messages
            error = redact(f"internal error: {type(exc).__name__}: {exc}") or ""
            log.error("delivery: %s: %s", describe(record), error)
            return self._failed(record, error, permanent=False)
        finished = self.ledger.finish_delivery(record.id, status="sent", now=self.clock())
        log.info("delivered: %s (attempt %d)", describe(record), record.attempts)
        return finished

    def _send(self, record: DeliveryRecord, payload: bytes) -> None:
        if record.channel == "email":
            if self.settings.smtp is None:
                raise SendError(NO_SMTP, permanent=True)
            send_email(self.settings.smtp, record.recipient, payload)
            return
        url = self.resolve_webhook(record.pipeline, record.target)
        if url is None:
            raise SendError(
                f"not sent: pipeline {record.pipeline} no longer has this webhook", permanent=True
            )
        post_json(
            url,
            payload,
            timeout=self.settings.delivery.webhook_timeout.total_seconds(),
            idempotency_key=f"{record.pipeline}-{record.id}-{record.target}",
        )

    def _failed(
        self, record: DeliveryRecord, error: str, *, permanent: bool
    ) -> DeliveryRecord | None:
        now = self.clock()
        if permanent or record.attempts >= record.max_attempts:
            why = "refused for good" if permanent else f"after {record.attempts} attempts"
            log.error("delivery given up (%s): %s: %s", why, describe(record), error)
            return self.ledger.finish_delivery(record.id, status="gave_up", now=now, error=error)
        retry = now + self.backoff(record.attempts)
        log.warning(
            "delivery failed (attempt %d of %d, next at %s): %s: %s",
            record.attempts,
            record.max_attempts,
            retry.isoformat(),
            describe(record),
            error,
        )
        return self.ledger.finish_delivery(
            record.id, status="failed", now=now, error=error, next_attempt_at=retry
        )


class OutboxWorker:
    """A thread that sends due messages as they come: woken when a run queues
    some, otherwise sleeping until the next retry is due (or :data:`POLL_S`)."""

    def __init__(self, outbox: Outbox, clock: Any, *, poll: float = POLL_S):
        self.outbox = outbox
        self.clock = clock
        self.poll = poll
        self._condition = threading.Condition()
        self._kicked = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (it first sends whatever is already due)."""
        self._thread = threading.Thread(target=self._loop, name="eil-outbox", daemon=True)
        self._thread.start()

    def wakeup(self) -> None:
        """Look at the outbox now (messages were queued)."""
        with self._condition:
            self._kicked = True
            self._condition.notify_all()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop after the send in flight; True when the thread ended within ``timeout``."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._condition:
                if self._stopping:
                    return
                self._kicked = False
            try:
                self.outbox.process_due()
                due = self.outbox.ledger.next_delivery_due()
            except LedgerUnavailableError:
                due = None  # a shared ledger's outage: its runner logs it, once
            except Exception:  # the worker must outlive any one failure (a locked ledger)
                log.exception("delivery: the outbox worker failed; trying again")
                due = None
            with self._condition:
                if self._stopping:
                    return
                if self._kicked:
                    continue
                timeout = self.poll
                if due is not None:
                    wait = (due - self.clock.now()).total_seconds()
                    timeout = min(self.poll, max(0.0, wait))
                if timeout > 0:
                    self.clock.wait(self._condition, timeout)
