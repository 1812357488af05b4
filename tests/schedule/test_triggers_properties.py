"""Property tests: triggers against brute-force references, and their invariants."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from eil_pipelines.schedule.cron import CronTrigger
from eil_pipelines.schedule.triggers import EveryTrigger

MINUTE = timedelta(minutes=1)
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

# Zones without daylight saving in the years tested (Kolkata since 1945, Tokyo since 1951).
STEADY_ZONES = [ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Asia/Tokyo")]
DST_ZONES = [
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Lord_Howe"),  # shifts by 30 minutes
    ZoneInfo("America/Santiago"),  # shifts at midnight
]
# Instants near 2026's changes in those zones (UTC), to sample around.
DST_CHANGES = [
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
    datetime(2026, 4, 5, 3, tzinfo=UTC),
    datetime(2026, 9, 6, 4, tzinfo=UTC),
]


# ------------------------------------------------------------------ an independent cron model


@dataclass
class Model:
    """What a generated expression means, worked out from how it was built."""

    text: str = ""
    minutes: set[int] = field(default_factory=set)
    hours: set[int] = field(default_factory=set)
    doms: set[int] = field(default_factory=set)
    months: set[int] = field(default_factory=set)
    dows: set[int] = field(default_factory=set)  # 0-7, both 0 and 7 Sunday
    dom_last: bool = False
    dom_last_weekday: bool = False
    last_dows: set[int] = field(default_factory=set)
    nth_dows: set[tuple[int, int]] = field(default_factory=set)
    dom_star: bool = False
    dow_star: bool = False

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        month_len = calendar.monthrange(day.year, day.month)[1]
        last_weekday = max(
            d
            for d in range(month_len - 2, month_len + 1)
            if date(day.year, day.month, d).weekday() < 5
        )
        dom_ok = (
            day.day in self.doms
            or (self.dom_last and day.day == month_len)
            or (self.dom_last_weekday and day.day == last_weekday)
        )
        sunday_first = day.isoweekday() % 7
        dow_ok = (
            sunday_first in self.dows
            or (sunday_first == 0 and 7 in self.dows)
            or (sunday_first in self.last_dows and day.day > month_len - 7)
            or (sunday_first, (day.day + 6) // 7) in self.nth_dows
        )
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def matches(self, wall: datetime) -> bool:
        return (
            wall.minute in self.minutes
            and wall.hour in self.hours
            and self.matches_day(wall.date())
        )


def _name_or_number(draw, value: int, names: list[str] | None, first: int) -> str:
    if names and draw(st.booleans()):
        name = names[value - first] if value - first < len(names) else None
        if name:
            return draw(st.sampled_from([name, name.upper(), name.title()]))
    return str(value)


@st.composite
def cron_field(draw, lo: int, hi: int, names: list[str] | None = None, dense: bool = False):
    """(text, values, starts with *) for one plain field."""
    names_first = 1 if names is MONTHS else 0
    kinds = (
        ["star"] if dense else ["star", "star_step", "value", "range", "range_step", "value_step"]
    )
    terms, values = [], set()
    for _ in range(draw(st.integers(1, 1 if dense else 3))):
        kind = draw(st.sampled_from(kinds))
        span = hi - lo
        if kind == "star":
            terms.append("*")
            values.update(range(lo, hi + 1))
        elif kind == "star_step":
            step = draw(st.integers(1, span))
            terms.append(f"*/{step}")
            values.update(range(lo, hi + 1, step))
        elif kind == "value":
            v = draw(st.integers(lo, hi))
            terms.append(_name_or_number(draw, v, names, names_first))
            values.add(v)
        elif kind == "value_step":
            v, step = draw(st.integers(lo, hi)), draw(st.integers(1, span))
            terms.append(f"{v}/{step}")
            values.update(range(v, hi + 1, step))
        else:
            a = draw(st.integers(lo, hi))
            b = draw(st.integers(a, hi))
            low = _name_or_number(draw, a, names, names_first)
            high = _name_or_number(draw, b, names, names_first)
            text = f"{low}-{high}"
            if kind == "range_step":
                step = draw(st.integers(1, span))
                text += f"/{step}"
                values.update(range(a, b + 1, step))
            else:
                values.update(range(a, b + 1))
            terms.append(text)
    return ",".join(terms), values, terms[0].startswith("*")


@st.composite
def cron_model(draw, dense_days: bool = False, hours_any: bool = False) -> Model:
    """A random 5-field expression and its meaning."""
    m = Model()
    minute_text, m.minutes, _ = draw(cron_field(0, 59))
    if hours_any:
        hour_text, m.hours = "*", set(range(24))
    else:
        hour_text, m.hours, _ = draw(cron_field(0, 23))
    dom_text, m.doms, m.dom_star = draw(cron_field(1, 31, dense=dense_days))
    month_text, m.months, _ = draw(cron_field(1, 12, MONTHS, dense=dense_days))
    dow_text, m.dows, m.dow_star = draw(cron_field(0, 7, DAYS))
    if not dense_days and draw(st.integers(0, 4)) == 0:
        special = draw(st.sampled_from(["L", "LW"]))
        dom_text += f",{special}"
        m.dom_last |= special == "L"
        m.dom_last_weekday |= special == "LW"
    if not dense_days and draw(st.integers(0, 4)) == 0:
        day = draw(st.integers(0, 7))
        if draw(st.booleans()):
            dow_text += f",{day}L"
            m.last_dows.add(day % 7)
        else:
            nth = draw(st.integers(1, 5))
            dow_text += f",{day}#{nth}"
            m.nth_dows.add((day % 7, nth))
    m.text = " ".join([minute_text, hour_text, dom_text, month_text, dow_text])
    return m


def _trigger_or_skip(model: Model, zone: ZoneInfo) -> CronTrigger:
    try:
        return CronTrigger(model.text, zone)
    except ValueError:
        # Only expressions that can never run are refused, such as "31 in February".
        assume(False)
        raise


# --------------------------------------------------------------------------- steady zones: exact


def brute_next(model: Model, after: datetime, zone: ZoneInfo) -> datetime | None:
    """Minute by minute over the days that match, in a zone without daylight saving."""
    wall = after.astimezone(zone).replace(tzinfo=None)
    day = wall.date()
    for _ in range(366 * 60):
        if model.matches_day(day):
            moment = datetime.combine(day, datetime.min.time())
            for _ in range(1440):
                if moment > wall and model.matches(moment):
                    return moment.replace(tzinfo=zone)
                moment += MINUTE
        day += timedelta(days=1)
    return None


def brute_previous(model: Model, before: datetime, zone: ZoneInfo) -> datetime | None:
    wall = before.astimezone(zone).replace(tzinfo=None)
    day = wall.date()
    for _ in range(366 * 60):
        if model.matches_day(day):
            moment = datetime.combine(day, datetime.min.time()) + timedelta(minutes=1439)
            for _ in range(1440):
                if moment < wall and model.matches(moment):
                    return moment.replace(tzinfo=zone)
                moment -= MINUTE
        day -= timedelta(days=1)
    return None


instants = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2035, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=cron_model(), after=instants, zone=st.sampled_from(STEADY_ZONES))
def test_cron_matches_brute_force_in_steady_zones(model: Model, after: datetime, zone: ZoneInfo):
    trigger = _trigger_or_skip(model, zone)
    expected_next = brute_next(model, after, zone)
    expected_previous = brute_previous(model, after, zone)
    assume(expected_next is not None and expected_previous is not None)
    got_next, got_previous = trigger.next_fire(after), trigger.previous_fire(after)
    assert got_next.isoformat() == expected_next.isoformat()
    assert got_previous.isoformat() == expected_previous.isoformat()


# --------------------------------------------------------------------------- DST zones


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def rule_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The rule for a wall time on a schedule with fixed hours: first occurrence, or gap end."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(first, zone) == wall:
        return first
    moment = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    moment = min(moment, first)
    while _wall(moment, zone) < wall:
        moment += MINUTE
    return moment


def dst_reference(model: Model, zone: ZoneInfo, moment: datetime, forward: bool) -> datetime:
    """The next (previous) fire by brute force, for expressions running at least weekly."""
    if model.hours == set(range(24)):
        # Real time: every instant at which the clock shows a matching time.
        step = MINUTE if forward else -MINUTE
        probe = moment.replace(second=0, microsecond=0)
        if not forward and probe == moment:
            probe -= MINUTE
        while True:
            if (probe > moment if forward else probe < moment) and model.matches(
                _wall(probe, zone)
            ):
                return probe
            probe += step
    # Fixed hours: each matching wall time once, by the rule.
    best = None
    wall = _wall(moment, zone).replace(second=0, microsecond=0)
    start = wall - timedelta(hours=3) if forward else wall + timedelta(hours=3)
    for minutes in range(9 * 1440):
        probe = start + (MINUTE * minutes if forward else -MINUTE * minutes)
        if not model.matches(probe):
            continue
        candidate = rule_instant(probe, zone)
        beyond = candidate > moment if forward else candidate < moment
        if beyond and (best is None or (candidate < best if forward else candidate > best)):
            best = candidate
        if best is not None and abs(probe - _wall(best, zone)) > timedelta(hours=4):
            break
    assert best is not None
    return best


near_changes = st.builds(
    lambda center, minutes, seconds: center + timedelta(minutes=minutes, seconds=seconds),
    st.sampled_from(DST_CHANGES),
    st.integers(-36 * 60, 36 * 60),
    st.sampled_from([0, 0, 0, 1, 29.5, 59]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.one_of(cron_model(dense_days=True), cron_model(dense_days=True, hours_any=True)),
    after=near_changes,
    zone=st.sampled_from(DST_ZONES),
)
def test_cron_matches_the_dst_rules_by_brute_force(model: Model, after: datetime, zone: ZoneInfo):
    trigger = _trigger_or_skip(model, zone)
    # Compared in UTC: a fold=1 time never equals a time in another zone (PEP 495).
    assert trigger.next_fire(after).astimezone(UTC) == dst_reference(model, zone, after, True)
    assert trigger.previous_fire(after).astimezone(UTC) == dst_reference(model, zone, after, False)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=cron_model(),
    after=near_changes,
    later=st.integers(0, 3 * 1440),
    zone=st.sampled_from(DST_ZONES),
)
def test_cron_invariants_in_dst_zones(model: Model, after: datetime, later: int, zone: ZoneInfo):
    trigger = _trigger_or_skip(model, zone)

    def next_utc(moment: datetime) -> datetime:
        # Compared in UTC: two times in one zone compare by their clock readings.
        fire = trigger.next_fire(moment)
        assert fire.tzinfo is zone
        return fire.astimezone(UTC)

    def previous_utc(moment: datetime) -> datetime:
        fire = trigger.previous_fire(moment)
        assert fire.tzinfo is zone
        return fire.astimezone(UTC)

    fire = next_utc(after)
    assert fire > after
    assert next_utc(fire) > fire
    assert previous_utc(fire) <= after
    before = previous_utc(after)
    assert before < after
    assert previous_utc(before) < before
    assert next_utc(before) >= after
    assert next_utc(after + timedelta(minutes=later)) >= fire
    # A fire shows a matching time on the clock, or is the end of a gap.
    offset_just_before = (fire - timedelta(seconds=1)).astimezone(zone).utcoffset()
    assert (
        model.matches(_wall(fire, zone)) or offset_just_before != fire.astimezone(zone).utcoffset()
    )


# --------------------------------------------------------------------------- every


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.integers(1, 3 * 86400),
    start=st.none()
    | st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1)).map(
        lambda d: d.replace(second=0, microsecond=0)
    ),
    zone=st.sampled_from(STEADY_ZONES + DST_ZONES),
    after=instants | near_changes,
    restart=st.integers(0, 10**8),
)
def test_every_grid(seconds, start, zone, after, restart):
    interval = timedelta(seconds=seconds)
    trigger = EveryTrigger(interval, zone, start)
    # In UTC throughout: subtracting two times in the same zone ignores the offset.
    anchor = rule_instant(start or datetime(2000, 1, 1), zone)
    fire = trigger.next_fire(after)
    assert fire.tzinfo is zone
    fire = fire.astimezone(UTC)
    assert (fire - anchor) % interval == timedelta(0)
    assert timedelta(0) < fire - after <= interval
    before = trigger.previous_fire(after).astimezone(UTC)
    assert timedelta(0) < after - before <= interval
    assert (before - anchor) % interval == timedelta(0)
    assert trigger.previous_fire(fire).astimezone(UTC) <= after
    # Asking later (a restart) lands on the same grid.
    again = trigger.next_fire(after + timedelta(seconds=restart)).astimezone(UTC)
    assert (again - fire) % interval == timedelta(0)
