"""Alerts: when a pipeline's ``[alert]`` query finding rows becomes a message.

A pure decision on the pipeline's stored state, so the rule is tested without
a server or a clock:

* ``on_change``: one message when the query starts returning rows, none while
  it keeps returning them, one ("cleared") when it returns none again;
* ``every_run``: a message after every run that finds rows, none when it clears.

The state is kept in either mode, so switching modes never repeats a message.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from ..ledger import DeliveryState


def alert_transition(
    state: DeliveryState, *, mode: str, findings: int, scheduled_at: datetime
) -> tuple[str | None, DeliveryState]:
    """What a run that found ``findings`` rows means: the message kind to send
    (``"alert"``, ``"alert_cleared"`` or ``None``) and the new state."""
    firing = findings > 0
    if firing:
        new = dataclasses.replace(
            state,
            alert_active=True,
            alert_since=state.alert_since if state.alert_active else scheduled_at,
        )
        if mode == "every_run" or not state.alert_active:
            return "alert", new
        return None, new
    new = dataclasses.replace(state, alert_active=False, alert_since=None)
    if state.alert_active and mode == "on_change":
        return "alert_cleared", new
    return None, new
