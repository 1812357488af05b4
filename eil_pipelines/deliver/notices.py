"""Failure notices: one message when a pipeline starts failing, one when it recovers.

A run "fails" for this purpose only when no retry follows (its retries are
used up, or it has none).  The first such failure sends a notice to the
pipeline's ``owner`` (or ``delivery.failure_recipient``); further failures
stay quiet; the next success sends "recovered" and re-arms the notice.  A
pure decision on the stored state, like :mod:`eil_pipelines.deliver.alerts`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from ..ledger import DeliveryState

#: Run outcomes that count as a failure of the pipeline.
FAILURE_STATUSES = ("failed", "timed_out")


def failure_transition(
    state: DeliveryState, *, status: str, final: bool, scheduled_at: datetime
) -> tuple[str | None, DeliveryState]:
    """The notice a run's outcome calls for (``"failure"``, ``"recovery"`` or
    ``None``) and the new state.  ``final`` is False while a retry will follow."""
    if status == "succeeded":
        if state.failing:
            return "recovery", dataclasses.replace(state, failing=False, failing_since=None)
        return None, state
    if status in FAILURE_STATUSES and final and not state.failing:
        return "failure", dataclasses.replace(state, failing=True, failing_since=scheduled_at)
    return None, state


def notice_recipient(owner: str | None, failure_recipient: str | None) -> str | None:
    """Who hears about a pipeline's failures: its owner, else the project default."""
    return owner or failure_recipient
