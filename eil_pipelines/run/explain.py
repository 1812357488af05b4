"""What a schedule will do (``eil-run explain``): fire times, periods, daylight-saving notes.

Pure functions of the pipeline and an instant: nothing here reads the clock.
The fire times come from the pipeline's trigger, so they are exactly the
ones the scheduler will use; the notes say where daylight saving bent them
(the rules are in :mod:`eil_pipelines.schedule.triggers`):

``gap``
    A local time the schedule names did not exist (the clocks jumped over
    it): a daily or cron time runs at the first valid instant after the gap;
    a cron that runs every hour simply has no run in the skipped hour; an
    ``every`` schedule counts real time, so its local times move by the jump.
``overlap``
    A local time that occurs twice (the clocks went back): a daily or cron
    time runs once, at the first occurrence; hourly cron and ``every`` run
    at real instants, so both occurrences may have a run.

Which of the schedule's wall-clock times fall into a gap is found by reading
the same schedule in UTC, where every wall-clock time exists exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..schedule.build import build_trigger
from ..spec.loader import Pipeline
from .context import period_bounds, pipeline_trigger, pipeline_zone

__all__ = ["DstNote", "FireTime", "dst_notes", "format_offset", "next_fire_times"]

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class DstNote:
    """A daylight-saving remark about one fire time."""

    kind: str
    """``gap`` (clocks jumped forward), ``overlap`` (clocks went back) or ``holiday``
    (the calendar skipped or moved a fire time before this one)."""
    message: str
    """One sentence for the user."""


@dataclass(frozen=True)
class FireTime:
    """One coming run: when, what it covers, and any daylight-saving note."""

    at: datetime
    """The fire time, aware, in the pipeline's zone."""
    period_start: datetime
    """Start of the period the run covers (inclusive), in the pipeline's zone."""
    period_end: datetime
    """End of the period the run covers (exclusive), in the pipeline's zone."""
    notes: list[DstNote] = field(default_factory=list)
    """Daylight-saving notes, usually none."""


def next_fire_times(pipeline: Pipeline, after: datetime, count: int) -> list[FireTime]:
    """The next ``count`` fire times strictly after the aware ``after``, with their periods.

    Empty for a pipeline without a schedule.
    """
    trigger = pipeline_trigger(pipeline)
    if trigger is None:
        return []
    zone = pipeline_zone(pipeline)
    schedule = pipeline.spec.schedule
    assert schedule is not None
    walls = _wall_trigger(pipeline)
    out: list[FireTime] = []
    moment = after
    for _ in range(count):
        moment = trigger.next_fire(moment)
        start, end, _prev_start, _prev_end = period_bounds(schedule.period, moment, zone, trigger)
        out.append(
            FireTime(
                at=moment,
                period_start=start.astimezone(zone),
                period_end=end.astimezone(zone),
                notes=dst_notes(trigger, moment, zone, walls) + holiday_notes(trigger, moment),
            )
        )
    return out


def holiday_notes(trigger: Any, fire: datetime) -> list[DstNote]:
    """What the schedule's calendar did between the previous fire time and ``fire``:
    holidays skipped, moved or merged (none for a schedule without a calendar)."""
    changes_between = getattr(trigger, "changes_between", None)
    if changes_between is None:
        return []
    notes = []
    # A time moved to the previous business day comes from after ``fire``.
    for change in changes_between(trigger.previous_fire(fire), trigger.next_fire(fire)):
        when = f"{change.original:%a %Y-%m-%d %H:%M}"
        if change.moved_to is not None:
            if change.moved_to != fire:
                continue
            what = f"moved here from {when} ({change.holiday})"
        elif change.original > fire:
            continue
        elif change.merged:
            what = f"{when} is a holiday ({change.holiday}); this run covers it"
        else:
            what = f"{when} skipped: holiday ({change.holiday}); this run's period covers it"
        notes.append(DstNote(kind="holiday", message=what))
    return notes


def _wall_trigger(pipeline: Pipeline) -> Any:
    """The schedule read in UTC: its wall-clock times, each existing exactly once.

    ``None`` for ``every`` schedules, which name no wall-clock times.
    """

    schedule = pipeline.spec.schedule
    if schedule is None or schedule.every is not None:
        return None
    return build_trigger(
        cron=schedule.cron, daily=schedule.daily, days=schedule.days, timezone="UTC"
    )


def dst_notes(trigger: Any, fire: datetime, zone: ZoneInfo, walls: Any) -> list[DstNote]:
    """Daylight-saving notes for ``fire``, a fire time of ``trigger`` in ``zone``.

    ``walls`` is the schedule read in UTC (see :func:`_wall_trigger`), or
    ``None`` for an interval (``every``) schedule.
    """
    local = fire.astimezone(zone)
    notes: list[DstNote] = []
    overlap = _overlap_note(trigger, local, zone, is_interval=walls is None)
    if overlap is not None:
        notes.append(overlap)
    previous = trigger.previous_fire(local).astimezone(zone)
    if walls is None:
        if overlap is None and previous.utcoffset() != local.utcoffset():
            notes.append(_interval_shift_note(previous, local, zone))
        return notes
    gap = _gap_note(local, previous, zone, walls)
    if gap is not None:
        notes.append(gap)
    return notes


def _gap_note(local: datetime, previous: datetime, zone: ZoneInfo, walls: Any) -> DstNote | None:
    before = (local.astimezone(UTC) - _TICK).astimezone(zone)
    if before.utcoffset() < local.utcoffset():  # type: ignore[operator]
        # The clocks jumped forward exactly at this fire time.
        jump = local.utcoffset() - before.utcoffset()  # type: ignore[operator]
        wall = local.replace(tzinfo=None)
        missing = _named_between(walls, wall - jump, wall)
        if not missing:
            return None
        named_itself = bool(_named_between(walls, wall, wall + _TICK))
        what = _times(missing)
        clocks = (
            f"on {wall:%Y-%m-%d} in {zone.key} (clocks jump from {_hm(wall - jump)} to {_hm(wall)})"
        )
        if named_itself:
            return DstNote(
                "gap",
                f"{what} {_do(missing)} not exist {clocks}: no run of {_its(missing)} own; "
                f"this {_hm(wall)} run is the first after the gap",
            )
        return DstNote(
            "gap",
            f"the schedule names {what}, which {_do(missing)} not exist {clocks}: "
            f"it runs at the first valid instant, {_hm(wall)}",
        )
    if previous.utcoffset() < local.utcoffset():  # type: ignore[operator]
        # A jump between the previous fire and this one: schedules that follow
        # real time (hourly cron) lose the runs named inside it.
        change = _transition(previous, local, zone)
        jump = local.utcoffset() - previous.utcoffset()  # type: ignore[operator]
        after_wall = change.astimezone(zone).replace(tzinfo=None)
        missing = _named_between(walls, after_wall - jump, after_wall)
        if not missing:
            return None
        return DstNote(
            "gap",
            f"{_times(missing)} {_do(missing)} not exist on {after_wall:%Y-%m-%d} in {zone.key} "
            f"(clocks jump from {_hm(after_wall - jump)} to {_hm(after_wall)}): "
            f"{'that run does' if len(missing) == 1 else 'those runs do'} not happen "
            "(a schedule that runs every hour follows real time)",
        )
    return None


def _overlap_note(
    trigger: Any, local: datetime, zone: ZoneInfo, *, is_interval: bool
) -> DstNote | None:
    wall = local.replace(tzinfo=None)
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    back = first.utcoffset() - second.utcoffset()  # type: ignore[operator]
    first_utc, second_utc = first.astimezone(UTC), second.astimezone(UTC)
    change = _transition(first_utc, second_utc, zone).astimezone(zone).replace(tzinfo=None)
    clocks = (
        f"{_hm(wall)} occurs twice on {wall:%Y-%m-%d} in {zone.key} "
        f"(clocks go back from {_hm(change + back)} to {_hm(change)})"
    )
    is_first = local.astimezone(UTC) == first_utc
    offset = format_offset(first if is_first else second)
    if is_first:
        runs_both = trigger.next_fire(local).astimezone(UTC) == second_utc
        if not runs_both and is_interval:
            return DstNote(
                "overlap",
                f"{clocks}: this is the first occurrence ({offset}) (an interval counts real time)",
            )
        if not runs_both:
            return DstNote("overlap", f"{clocks}: it runs once, at the first occurrence ({offset})")
        return DstNote(
            "overlap", f"{clocks}: it runs at both; this is the first occurrence ({offset})"
        )
    runs_both = trigger.previous_fire(local).astimezone(UTC) == first_utc
    both = "it runs at both; " if runs_both else ""
    why = " (an interval counts real time)" if is_interval and not runs_both else ""
    return DstNote("overlap", f"{clocks}: {both}this is the second occurrence ({offset}){why}")


def _interval_shift_note(previous: datetime, local: datetime, zone: ZoneInfo) -> DstNote:
    change = local.utcoffset() - previous.utcoffset()  # type: ignore[operator]
    kind = "gap" if change > timedelta(0) else "overlap"
    moment = _transition(previous, local, zone)
    after_wall = moment.astimezone(zone).replace(tzinfo=None)
    before_wall = after_wall - change
    way = "jump forward" if kind == "gap" else "go back"
    elapsed = local.astimezone(UTC) - previous.astimezone(UTC)
    return DstNote(
        kind,
        f"the clocks {way} {_span(abs(change))} in {zone.key} ({_hm(before_wall)} → "
        f"{_hm(after_wall)}) after the previous run at {_hm(previous)}{format_offset(previous)}: an "
        f"interval counts real time, so this run comes {_span(elapsed)} after it, at "
        f"{_hm(local)} on the clock",
    )


def _named_between(walls: Any, start: datetime, end: datetime) -> list[datetime]:
    """The schedule's wall-clock times in ``[start, end)`` (naive)."""
    found: list[datetime] = []
    moment = start.replace(tzinfo=UTC) - _TICK
    limit = end.replace(tzinfo=UTC)
    while True:
        moment = walls.next_fire(moment)
        if moment >= limit:
            return found
        found.append(moment.replace(tzinfo=None))


def _transition(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first instant (to the second) in ``(before, after]`` with ``after``'s UTC offset."""
    lo = int(before.astimezone(UTC).timestamp())
    hi = int(after.astimezone(UTC).timestamp())
    target = after.astimezone(zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _hm(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


def _times(walls: list[datetime]) -> str:
    shown = [_hm(w) for w in walls]
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _do(walls: list[datetime]) -> str:
    return "does" if len(walls) == 1 else "do"


def _its(walls: list[datetime]) -> str:
    return "its" if len(walls) == 1 else "their"


def format_offset(moment: datetime) -> str:
    """``+02:00``: the UTC offset of an aware datetime."""
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = int(abs(offset).total_seconds() // 60)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append("1 hour" if hours == 1 else f"{hours} hours")
    if rest:
        parts.append(f"{rest} minutes")
    return " ".join(parts) or "0 minutes"
