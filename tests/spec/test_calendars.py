"""Calendars from names, on the real holiday tables of the ``holidays`` package."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.build import build_trigger
from eil_pipelines.schedule.calendar import BusinessDayTrigger, CalendarTrigger
from eil_pipelines.spec.calendars import (
    CalendarSettings,
    business_calendar,
    code_problem,
    holidays_version,
    resolve_calendar,
)

BERLIN = ZoneInfo("Europe/Berlin")


def calendar(names, custom=None):
    return business_calendar(resolve_calendar(names, custom or {}))


def test_easter_monday_in_berlin_is_skipped_and_the_tuesday_report_spans_it():
    trigger = CalendarTrigger(
        build_trigger(cron="0 7 * * MON-FRI", timezone="Europe/Berlin"), calendar("DE-BE"), "skip"
    )
    thursday = datetime(2026, 4, 2, 7, tzinfo=BERLIN)
    tuesday = datetime(2026, 4, 7, 7, tzinfo=BERLIN)
    assert trigger.next_fire(thursday) == tuesday
    reasons = [c.reason() for c in trigger.changes_between(thursday, tuesday)]
    assert reasons == ["holiday: Good Friday", "holiday: Easter Monday"]


def test_thanksgiving_moves_a_report_to_friday():
    new_york = ZoneInfo("America/New_York")
    trigger = CalendarTrigger(
        build_trigger(cron="0 9 26 11 *", timezone="America/New_York"), calendar("US"), "next"
    )
    fire = trigger.next_fire(datetime(2026, 11, 1, tzinfo=new_york))
    assert fire == datetime(2026, 11, 27, 9, tzinfo=new_york)


def test_golden_week_rolls_back_to_the_last_business_day_before_it():
    tokyo = ZoneInfo("Asia/Tokyo")
    trigger = CalendarTrigger(
        build_trigger(cron="0 8 5 5 *", timezone="Asia/Tokyo"), calendar("JP"), "previous"
    )
    # 3–6 May 2026 are holidays, 2 May a Saturday: the 1st (a Friday) is the day before.
    assert trigger.next_fire(datetime(2026, 4, 1, tzinfo=tokyo)) == datetime(
        2026, 5, 1, 8, tzinfo=tokyo
    )


def test_a_company_calendar_adds_shutdown_days_and_a_saturday_close():
    acme = CalendarSettings(
        holidays=["DE-BE"],
        closed={date(2026, 12, 24): "Christmas shutdown", date(2026, 12, 31): "Year-end shutdown"},
        business_days=[date(2026, 12, 19)],
    )
    cal = calendar("acme", {"acme": acme})
    assert cal.holiday(date(2026, 12, 24)) == "Christmas shutdown"
    assert cal.holiday(date(2026, 12, 25)) == "Christmas Day"
    assert cal.is_business_day(date(2026, 12, 19))  # a Saturday
    trigger = BusinessDayTrigger(build_trigger(daily="07:00", timezone="Europe/Berlin"), cal, -1)
    assert trigger.next_fire(datetime(2026, 12, 1, tzinfo=BERLIN)) == datetime(
        2026, 12, 30, 7, tzinfo=BERLIN
    )


def test_a_list_merges_calendars():
    cal = calendar(["US", "GB"])
    assert cal.holiday(date(2026, 7, 4)) is not None  # US only
    assert cal.holiday(date(2026, 8, 31)) is None  # England's Summer Bank Holiday needs GB-ENG
    assert calendar(["US", "GB-ENG"]).holiday(date(2026, 8, 31)) == "Late Summer Bank Holiday"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("XX", 'no public holidays known for country "XX"'),
        ("DE-ZZ", '"DE" has no subdivision "ZZ"; known: BB, BE'),
        ("", "is not a calendar name"),
        ("D" * 300, "is not a calendar name"),
    ],
)
def test_unknown_codes_are_explained(code, words):
    problem = code_problem(code)
    assert problem is not None and words in problem
    with pytest.raises(ValueError, match=r"calendar|country|subdivision"):
        resolve_calendar(code, {})


def test_a_bad_code_inside_a_company_calendar_names_the_table():
    with pytest.raises(ValueError, match=r"in \[calendars.acme\]: no public holidays"):
        resolve_calendar("acme", {"acme": CalendarSettings(holidays="XX")})


def test_the_version_is_known():
    assert holidays_version().count(".") >= 1


# --- in pipeline files -----------------------------------------------------------------

from eil_pipelines.errors import ConfigError  # noqa: E402
from eil_pipelines.spec.loader import load_pipeline  # noqa: E402


def write(project, schedule: str, eil: str | None = None):
    if eil is not None:
        (project.root / "eil.toml").write_text(eil, encoding="utf-8")
    return project.pipeline(
        "p", f'title = "P"\n[schedule]\n{schedule}\n[queries.q]\nsql = "SELECT 1 AS x"\n'
    )


@pytest.mark.parametrize(
    ("schedule", "key", "words"),
    [
        (
            'every = "1h"\ncalendar = "DE"',
            "schedule",
            'goes with "cron" or "daily", not with "every"',
        ),
        ('daily = "07:00"\nroll = "next"', "schedule", '"roll" needs a "calendar"'),
        ('daily = "07:00"\ncalendar = "DE"\nbusiness_day = 0', "schedule", "counts from 1"),
        ('daily = "07:00"\ncalendar = "DE"\nbusiness_day = 40', "schedule.business_day", "23"),
        (
            'daily = "07:00"\ncalendar = "DE"\nbusiness_day = 1\nroll = "next"',
            "schedule",
            'drop "roll"',
        ),
        (
            'daily = "07:00"\ncalendar = "DE"\nskip_holidays = true\nroll = "next"',
            "schedule",
            "disagree",
        ),
        (
            'daily = "07:00"\ncalendar = "DE-XX"',
            "schedule.calendar",
            '"DE" has no subdivision "XX"',
        ),
        ('daily = "07:00"\ncalendar = []', "schedule", "at least one name"),
        (
            'daily = "07:00"\ncalendar = "acme"',
            "schedule.calendar",
            'no public holidays known for country "acme"',
        ),
    ],
)
def test_bad_calendar_keys_name_the_file_and_key(project, schedule, key, words):
    file = write(project, schedule)
    with pytest.raises(ConfigError) as caught:
        load_pipeline(file)
    problems = caught.value.problems
    assert any(k == key and words in message for k, message in problems), problems
    assert "p.toml" in str(caught.value)


def test_a_company_calendar_from_eil_toml_is_resolved(project):
    eil = (
        '[calendars.acme]\nholidays = "DE-BE"\n'
        'closed = { 2026-12-24 = "Christmas shutdown" }\nbusiness_days = [2026-12-19]\n'
    )
    pipeline = load_pipeline(
        write(project, 'daily = "07:00"\ncalendar = "acme"\nroll = "next"', eil)
    )
    assert pipeline.calendar is not None
    assert pipeline.calendar.codes == ("DE-BE",)
    assert pipeline.calendar.closed == {date(2026, 12, 24): "Christmas shutdown"}


def test_a_broken_eil_toml_is_reported_against_the_calendar(project):
    file = write(
        project, 'daily = "07:00"\ncalendar = "acme"', '[calendars.acme]\nweekend = ["caturday"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_pipeline(file)
    assert ("schedule.calendar", "cannot check the calendar: eil.toml has problems") in (
        caught.value.problems
    )


def test_a_day_off_that_is_not_a_date_is_explained(project):
    from eil_pipelines.spec.project import load_project_settings

    (project.root / "eil.toml").write_text(
        '[calendars.acme]\nclosed = { xmas = "Christmas shutdown" }\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_project_settings(project.root)
    assert (
        "calendars.acme.closed",
        '"xmas" is not a date: write days off as 2026-12-24 = "Name"',
    ) in caught.value.problems


def test_explain_shows_a_moved_memo_with_the_holiday(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "pipelines", tmp_path / "pipelines")
    shutil.copytree(repo / "data", tmp_path / "data")
    shutil.copytree(repo / "templates", tmp_path / "templates")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eil_pipelines",
            "explain",
            str(tmp_path / "pipelines" / "weekly_executive_summary.toml"),
            "--from",
            "2026-05-20",
            "--next",
            "2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "moved to the next business day on US holidays" in lines[1]
    assert lines[-3].startswith("  Tue 2026-05-26 08:00 -04:00")
    assert lines[-2] == "      note (holiday): moved here from Mon 2026-05-25 08:00 (Memorial Day)"
