"""Delivery: reports by email and webhook, alerts, failure notices, the outbox.

The last stage of the flow.  A finished run's messages are *rendered* into
the run ledger's outbox (:mod:`.dispatch`, :mod:`.messages`), then *sent*
from there (:mod:`.outbox`) over SMTP (:mod:`.email`) or HTTP
(:mod:`.webhook`), retried with backoff without re-running anything, each at
most once per (pipeline, scheduled time, kind, recipient).  Secrets never
leave the process (:mod:`.redact`).  docs/delivery.md is the user's guide.
"""

from ..spec.project import ProjectSettings, load_project_settings
from .dispatch import Dispatcher
from .email import SendError
from .messages import RunFacts
from .redact import Redactor, redact_url

__all__ = [
    "Dispatcher",
    "ProjectSettings",
    "Redactor",
    "RunFacts",
    "SendError",
    "load_project_settings",
    "redact_url",
]
