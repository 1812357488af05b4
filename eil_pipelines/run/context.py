"""The run context: everything a run needs to know about *when* it is.

A run never reads the clock: its scheduled time comes in here, and the
period it covers, the built-in parameters and the file stamp all derive from
that one value.  That is what makes ``--at``, backfill and the tests simple.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..outputs.stamps import format_stamp
from ..schedule.build import build_trigger
from ..schedule.calendar import BusinessDayTrigger, CalendarTrigger
from ..schedule.zones import get_zone
from ..spec.calendars import business_calendar
from ..spec.loader import Pipeline


@dataclass(frozen=True)
class RunContext:
    """When one run is, and what it covers.  All datetimes are aware, in ``zone``."""

    pipeline: str
    """The pipeline's name."""
    scheduled_at: datetime
    """The fire time this run stands for (aware, in the pipeline's zone)."""
    zone: ZoneInfo
    """The pipeline's time zone."""
    period_start: datetime
    """Start of the period the run covers (inclusive)."""
    period_end: datetime
    """End of the period the run covers (exclusive)."""
    prev_period_start: datetime
    """Start of the period before, for comparisons."""
    prev_period_end: datetime
    """End of the period before (equal to ``period_start``)."""
    period_kind: str
    """``interval``, ``day``, ``week`` or ``month``."""
    stamp: str
    """The report's file stamp: ``YYYY-MM-DD``, ``YYYY-MM-DDTHHMM`` or ``YYYY-MM-DDTHHMMSS``."""
    attempt: int = 1
    """1 for the first try, then 2, 3 … for retries."""

    @functools.cached_property
    def run_id(self) -> str:
        """A stable id for (pipeline, scheduled time): the same run always gets the same id.

        Stable rather than random so re-rendering a past report gives identical files.
        Computed once per context (a run reads it a dozen times: logs, ledger, manifest).
        """
        utc = self.scheduled_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        digest = hashlib.sha1(f"{self.pipeline}@{utc}".encode()).hexdigest()[:8]
        return f"{utc}-{digest}"

    def params(self) -> dict[str, datetime]:
        """The built-in parameters: naive datetimes in the pipeline's zone (the SQL boundary)."""
        local = self.scheduled_at.astimezone(self.zone)
        return {
            "run_date": datetime.combine(local.date(), time()),
            "run_time": local.replace(tzinfo=None),
            "period_start": _naive(self.period_start, self.zone),
            "period_end": _naive(self.period_end, self.zone),
            "prev_period_start": _naive(self.prev_period_start, self.zone),
            "prev_period_end": _naive(self.prev_period_end, self.zone),
        }

    def template_run(self) -> dict[str, Any]:
        """The template's ``run`` variable."""
        values = self.params()
        return {
            "date": values["run_date"].date(),
            "time": values["run_time"],
            "period_start": values["period_start"],
            "period_end": values["period_end"],
            "prev_period_start": values["prev_period_start"],
            "prev_period_end": values["prev_period_end"],
            "period": self.period_kind,
            "id": self.run_id,
            "scheduled_at": self.scheduled_at,
            "timezone": self.zone.key,
            "attempt": self.attempt,
        }


def _naive(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def pipeline_zone(pipeline: Pipeline) -> ZoneInfo:
    """The pipeline's zone: its schedule's ``timezone``, else the machine's."""
    schedule = pipeline.spec.schedule
    return get_zone(schedule.timezone if schedule else None)


def pipeline_trigger(pipeline: Pipeline) -> Any:
    """The pipeline's trigger, or ``None`` when it has no schedule."""
    schedule = pipeline.spec.schedule
    if schedule is None:
        return None

    trigger = build_trigger(
        cron=schedule.cron,
        every=schedule.every,
        daily=schedule.daily,
        days=schedule.days,
        timezone=schedule.timezone,
        start=schedule.start,
    )
    if pipeline.calendar is None:
        return trigger
    calendar = business_calendar(pipeline.calendar)
    if schedule.business_day is not None:
        return BusinessDayTrigger(trigger, calendar, schedule.business_day)
    return CalendarTrigger(trigger, calendar, schedule.holiday_roll)


def stamp_for(moment: datetime, min_interval: timedelta | None) -> str:
    """The file stamp: a date for daily or rarer schedules, minutes or seconds below that."""
    if min_interval is None or min_interval >= timedelta(days=1):
        return format_stamp(moment, "day")
    if min_interval >= timedelta(minutes=1):
        return format_stamp(moment, "minute")
    return format_stamp(moment, "second")


def make_context(
    pipeline: Pipeline, scheduled_at: datetime, *, attempt: int = 1, trigger: Any = None
) -> RunContext:
    """Build the context for running ``pipeline`` as if scheduled at ``scheduled_at``.

    ``scheduled_at`` must be aware; a naive value is read in the pipeline's zone.
    """
    zone = pipeline_zone(pipeline)
    if scheduled_at.tzinfo is None:
        scheduled_at = scheduled_at.replace(tzinfo=zone)
    scheduled_at = scheduled_at.astimezone(zone)
    trigger = trigger if trigger is not None else pipeline_trigger(pipeline)
    schedule = pipeline.spec.schedule
    kind = schedule.period if schedule else "interval"
    start, end, prev_start, prev_end = period_bounds(kind, scheduled_at, zone, trigger)
    min_interval = trigger.min_interval if trigger is not None else None
    return RunContext(
        pipeline=pipeline.name,
        scheduled_at=scheduled_at,
        zone=zone,
        period_start=start,
        period_end=end,
        prev_period_start=prev_start,
        prev_period_end=prev_end,
        period_kind=kind,
        stamp=stamp_for(scheduled_at, min_interval),
        attempt=attempt,
    )


def period_bounds(
    kind: str, scheduled_at: datetime, zone: ZoneInfo, trigger: Any
) -> tuple[datetime, datetime, datetime, datetime]:
    """(period start, period end, previous start, previous end) for a run at ``scheduled_at``.

    ``day``/``week``/``month`` are the previous *calendar* unit in the zone;
    ``interval`` runs from the previous fire time to this one (without a
    schedule: the previous 24 hours).
    """
    local = scheduled_at.astimezone(zone)
    if kind == "interval":
        if trigger is None:
            end = local
            start = end - timedelta(days=1)
            return start, end, start - timedelta(days=1), start
        start = trigger.previous_fire(local)
        prev_start = trigger.previous_fire(start)
        return start, local, prev_start, start
    today = local.date()
    if kind == "day":
        end_day = today
        start_day = end_day - timedelta(days=1)
        prev_day = start_day - timedelta(days=1)
        days = (start_day, end_day, prev_day)
    elif kind == "week":
        end_day = today - timedelta(days=today.weekday())  # this week's Monday
        start_day = end_day - timedelta(days=7)
        days = (start_day, end_day, start_day - timedelta(days=7))
    elif kind == "month":
        end_day = today.replace(day=1)
        start_day = (end_day - timedelta(days=1)).replace(day=1)
        prev_day = (start_day - timedelta(days=1)).replace(day=1)
        days = (start_day, end_day, prev_day)
    else:
        raise ValueError(f"unknown period {kind!r}")
    start_day, end_day, prev_day = days
    return (
        _midnight(start_day, zone),
        _midnight(end_day, zone),
        _midnight(prev_day, zone),
        _midnight(start_day, zone),
    )


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # Midnight exists in every zone we know except a few historical ones; fold=0
    # picks the first instant when it is ambiguous.
    return datetime.combine(day, time(), tzinfo=zone)


def period_word(kind: str) -> str:
    """``day`` → ``day``; ``interval`` → ``period``: for sentences like "against the previous day"."""
    return {"day": "day", "week": "week", "month": "month"}.get(kind, "period")
