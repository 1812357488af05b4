"""A schedule with a calendar in the scheduler service: holidays get their ``skipped`` rows.

Time is a :class:`ManualClock`; the service is stepped with ``run_due``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import metadata
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.app.service import SchedulerService
from eil_pipelines.schedule.testing import ManualClock

BERLIN = ZoneInfo("Europe/Berlin")


def text(schedule: str) -> str:
    return (
        'title = "Daily"\n[schedule]\ntimezone = "Europe/Berlin"\ncalendar = "DE-BE"\n'
        f'{schedule}\n[queries.q]\nsql = "SELECT 1 AS x"\n'
    )


@pytest.fixture
def service_for(project):
    made: list[SchedulerService] = []

    def make(clock) -> SchedulerService:
        service = SchedulerService(project.pipelines, reports_dir=project.reports, clock=clock)
        made.append(service)
        service.start(watch=False, loop=False)
        return service

    yield make
    for service in made:
        service.stop(grace=5)


def step(service: SchedulerService, moment: datetime) -> int:
    service.clock.set(moment)  # type: ignore[attr-defined]
    started = service.scheduler.run_due(moment)
    assert service.scheduler.wait_idle(300)
    return started


def rows(service: SchedulerService) -> list[tuple[str, str, str | None]]:
    return [
        (f"{r.scheduled_at.astimezone(BERLIN):%a %m-%d %H:%M}", r.status, r.error)
        for r in sorted(service.ledger.history(limit=None), key=lambda r: r.scheduled_at)
    ]


def test_easter_is_skipped_with_its_names_and_the_tuesday_run_covers_it(project, service_for):
    project.pipeline("daily", text('cron = "0 7 * * MON-FRI"\nskip_holidays = true'))
    clock = ManualClock(datetime(2026, 4, 2, 6, 0, tzinfo=BERLIN).astimezone(UTC))
    service = service_for(clock)
    assert step(service, datetime(2026, 4, 2, 7, 0, tzinfo=BERLIN)) == 1
    assert service.scheduler.get("daily").next_fire == datetime(2026, 4, 7, 7, tzinfo=BERLIN)
    assert step(service, datetime(2026, 4, 7, 7, 0, tzinfo=BERLIN)) == 1
    assert rows(service) == [
        ("Thu 04-02 07:00", "succeeded", None),
        ("Fri 04-03 07:00", "skipped", "holiday: Good Friday"),
        ("Mon 04-06 07:00", "skipped", "holiday: Easter Monday"),
        ("Tue 04-07 07:00", "succeeded", None),
    ]
    report = (project.reports / "daily" / "2026-04-07.md").read_text(encoding="utf-8")
    assert "Period: 2 Apr 2026 07:00 – 7 Apr 2026 07:00" in report  # from Thursday's fire
    # The holiday tables decided which days ran: the manifest names their version.
    manifest = json.loads((project.reports / "daily" / "2026-04-07.json").read_text())
    assert manifest["software"]["holidays"] == metadata.version("holidays") == "0.109"


def test_a_report_without_a_calendar_does_not_name_the_holiday_tables(project, service_for):
    plain = 'title = "P"\n[schedule]\ndaily = "07:00"\ntimezone = "UTC"\n'
    project.pipeline("plain", plain + '[queries.q]\nsql = "SELECT 1 AS x"\n')
    service = service_for(ManualClock(datetime(2026, 4, 2, 6, tzinfo=UTC)))
    assert step(service, datetime(2026, 4, 2, 7, tzinfo=UTC)) == 1
    manifest = json.loads((project.reports / "plain" / "2026-04-02.json").read_text())
    assert "holidays" not in manifest["software"]
    assert manifest["software"]["eil-pipelines"]


def test_a_moved_monthly_run_records_where_it_went(project, service_for):
    # 1 May 2026 is Labor Day (a Friday; the package spells it so): the monthly report moves to Monday 4 May.
    project.pipeline("monthly", text('cron = "0 7 1 * *"\nroll = "next"'))
    clock = ManualClock(datetime(2026, 4, 30, 12, tzinfo=BERLIN).astimezone(UTC))
    service = service_for(clock)
    assert service.scheduler.get("monthly").next_fire == datetime(2026, 5, 4, 7, tzinfo=BERLIN)
    assert step(service, datetime(2026, 5, 4, 7, 0, tzinfo=BERLIN)) == 1
    assert rows(service) == [
        ("Fri 05-01 07:00", "skipped", "holiday: Labor Day; moved to 2026-05-04 07:00"),
        ("Mon 05-04 07:00", "succeeded", None),
    ]
