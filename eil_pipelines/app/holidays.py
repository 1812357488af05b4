"""The ledger rows of a calendar's holidays: one ``skipped`` row per fire time it took out.

A schedule with a calendar does not fire on a holiday (or fires on another
day).  The fire time the schedule alone would have had still gets its ledger
row, so "every fire time gets exactly one row" holds for the schedule as
written, and ``history`` says why nothing ran: ``holiday: Good Friday``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..ledger import NewSkip
from ..run.context import pipeline_trigger
from ..spec.loader import Pipeline

__all__ = ["holiday_skips"]


def holiday_skips(pipeline: Pipeline, first: datetime, last: datetime) -> list[NewSkip]:
    """Skipped rows for the holidays up to ``last`` since the fire time before ``first``.

    ``first`` … ``last`` are fire times of the pipeline (one run, or a batch of
    skipped ones).  A time moved to an earlier business day belongs with the fire
    time it moved to, so it is recorded when that one comes.
    """
    if pipeline.calendar is None:
        return []
    trigger = pipeline_trigger(pipeline)
    changes_between = getattr(trigger, "changes_between", None)
    if changes_between is None:
        return []
    limit = last.astimezone(UTC)
    window = changes_between(trigger.previous_fire(first), trigger.next_fire(last))
    return [
        NewSkip(pipeline.name, change.original, change.reason())
        for change in window
        if change.original.astimezone(UTC) <= limit
        or (change.moved_to is not None and change.moved_to.astimezone(UTC) <= limit)
    ]
