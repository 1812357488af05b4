"""A bad file never stops the good ones: the scheduler service starts with every
valid pipeline, and a reload applies a new version only when it validates and
can be scheduled; otherwise the last good version keeps every fire time.

Time is a :class:`ManualClock`; the tests step the scheduler with ``run_due``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from eil_pipelines.app import service as service_module
from eil_pipelines.app.service import SchedulerService
from eil_pipelines.schedule.testing import ManualClock

START = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    """2026-03-02 at this UTC time."""
    return datetime(2026, 3, 2, hour, minute, tzinfo=UTC)


def text(every: str = "15m", extra: str = "") -> str:
    return (
        f'title = "Report"\n[schedule]\nevery = "{every}"\ntimezone = "UTC"\n{extra}'
        '[queries.q]\nsql = "SELECT 1 AS x"\n'
    )


@pytest.fixture
def make_service(project, monkeypatch):
    """Services started without loop or watcher, stopped after the test."""
    monkeypatch.chdir(project.root)
    made: list[SchedulerService] = []

    def make(clock: ManualClock) -> SchedulerService:
        service = SchedulerService(project.pipelines, reports_dir=project.reports, clock=clock)
        made.append(service)
        service.start(watch=False, loop=False)
        return service

    yield make
    for service in made:
        service.stop(grace=5)


def step(service: SchedulerService) -> int:
    started = service.scheduler.run_due(service.clock.now())
    assert service.scheduler.wait_idle(120)  # reached only when the test fails
    return started


def test_start_schedules_the_valid_pipelines_and_logs_the_invalid(project, make_service, caplog):
    caplog.set_level(logging.INFO, logger="eil_pipelines")
    project.pipeline("good", text())
    project.pipeline("bad", text(every="1ms"))
    project.pipeline("worse", 'title = 3\n[queries.q]\nsql = "SELECT 1"\n')
    clock = ManualClock(START)
    service = make_service(clock)
    assert [p.name for p in service.pipelines()] == ["good"]
    assert service.scheduler.get("good").next_fire == at(12, 45)
    assert service.scheduler.get("bad") is None
    broken = {path.name: message for path, message in service.broken().items()}
    assert broken == {
        "bad.toml": 'pipelines/bad.toml: schedule.every: invalid duration "1ms": '
        "must be at least 1s",
        "worse.toml": "pipelines/worse.toml: title: expected a string, got integer 3",
    }
    assert (
        "invalid pipeline file (not scheduled):\n"
        'pipelines/bad.toml: schedule.every: invalid duration "1ms": must be at least 1s'
    ) in caplog.text
    clock.set(at(12, 45))
    assert step(service) == 1
    assert service.ledger.get("good", at(12, 45)).status == "succeeded"
    # Fixing the file schedules it at the next reload, and it leaves the broken list.
    project.pipeline("bad", text(every="1h"))
    assert service.reload() == ["scheduled bad, next run 2026-03-02T13:00:00+00:00"]
    assert sorted(p.name for p in service.broken()) == ["worse.toml"]


@pytest.mark.parametrize("every", ["1ms", "3000000d"])
def test_a_reload_to_an_unschedulable_value_keeps_every_fire_time(
    project, make_service, caplog, every
):
    """Case 2: the old job's fire times all get ledger rows across the bad reload."""
    caplog.set_level(logging.INFO, logger="eil_pipelines")
    project.pipeline("ticker", text())
    clock = ManualClock(START)
    service = make_service(clock)
    clock.set(at(12, 45))
    assert step(service) == 1

    project.pipeline("ticker", text(every=every))
    assert service.reload() == ["invalid ticker.toml"]
    assert "keeping the last good version" in caplog.text
    assert service.scheduler.get("ticker").next_fire == at(13)
    for minute in (0, 15, 30):  # three fire times under the bad file
        clock.set(at(13, minute))
        assert step(service) == 1
        assert service.reload() == []  # the same problem is logged once

    project.pipeline("ticker", text(every="30m"))
    assert service.reload() == ["rescheduled ticker, next run 2026-03-02T14:00:00+00:00"]
    clock.set(at(14))
    assert step(service) == 1
    times = [(r.scheduled_at, r.status) for r in service.ledger.history(limit=None)]
    assert sorted(times) == [
        (at(12, 45), "succeeded"),
        (at(13), "succeeded"),
        (at(13, 15), "succeeded"),
        (at(13, 30), "succeeded"),
        (at(14), "succeeded"),
    ]


def test_a_version_whose_trigger_has_no_next_fire_is_refused(
    project, make_service, caplog, monkeypatch
):
    """The service checks the trigger too, before it replaces anything: a version that
    validates but whose trigger cannot give a next fire time keeps the old one."""
    caplog.set_level(logging.INFO, logger="eil_pipelines")
    project.pipeline("ticker", text())
    clock = ManualClock(START)
    service = make_service(clock)
    real = service_module.pipeline_trigger

    class NoNextFire:
        def next_fire(self, after: datetime) -> datetime:
            raise ValueError(f"never fires after {after.isoformat()}")

    def trigger(pipeline):
        if pipeline.spec.schedule.every == timedelta(minutes=20):
            return NoNextFire()
        return real(pipeline)

    monkeypatch.setattr(service_module, "pipeline_trigger", trigger)
    project.pipeline("ticker", text(every="20m"))
    assert service.reload() == ["invalid ticker.toml"]
    assert (
        "pipelines/ticker.toml: schedule: cannot be scheduled: "
        "never fires after 2026-03-02T12:30:00+00:00"
    ) in caplog.text
    assert service.scheduler.get("ticker").next_fire == at(12, 45)
    assert service.pipelines()[0].spec.schedule.every == timedelta(minutes=15)
    clock.set(at(12, 45))
    assert step(service) == 1
    assert service.ledger.get("ticker", at(12, 45)).status == "succeeded"
