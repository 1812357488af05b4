"""The previous version's scheduling API, on the shared scheduler engine."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import eil_pipelines
from eil_pipelines import jobs
from eil_pipelines.app import ledger_path
from eil_pipelines.ledger import Ledger
from eil_pipelines.schedule.loop import Scheduler
from eil_pipelines.schedule.testing import ManualClock

START = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


@pytest.fixture
def manual(monkeypatch):
    """The API on a scheduler driven by a manual clock, in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    clock = ManualClock(START)
    scheduler = Scheduler(clock=clock, workers=2)
    scheduler.start(loop=False)
    jobs.use_scheduler(scheduler)
    yield clock, scheduler
    jobs.use_scheduler(None)
    scheduler.shutdown(1)


def step(clock, scheduler, delta):
    clock.advance(delta)
    scheduler.run_due(clock.now())
    assert scheduler.wait_idle(60)


def test_interval_job_runs_every_interval_and_survives_errors(manual):
    clock, scheduler = manual
    calls = []

    def flaky():
        calls.append(clock.now())
        if len(calls) == 2:
            raise RuntimeError("boom")

    handle = eil_pipelines.schedule_interval(0.5, flaky)
    for _ in range(3):
        step(clock, scheduler, timedelta(seconds=30))
    assert calls == [START + timedelta(seconds=30 * i) for i in (1, 2, 3)]
    [info] = eil_pipelines.list_jobs()
    assert info["handle"] == handle
    assert info["kind"] == "interval"
    assert (info["run_count"], info["error_count"]) == (3, 1)
    assert info["next_run"] == START + timedelta(seconds=120)
    assert info["last_run"] == START + timedelta(seconds=90)


def test_daily_job(manual):
    clock, scheduler = manual
    ran = []
    eil_pipelines.schedule_daily(7, 30, lambda: ran.append(clock.now()))
    [info] = eil_pipelines.list_jobs()
    assert info["next_run"] == datetime(2026, 11, 28, 7, 30, tzinfo=ZoneInfo("UTC"))
    step(clock, scheduler, timedelta(hours=1, minutes=29))
    assert ran == []
    step(clock, scheduler, timedelta(minutes=1))
    assert ran == [datetime(2026, 11, 28, 7, 30, tzinfo=UTC)]


def test_cancel_once(manual):
    clock, scheduler = manual
    ran = []
    handle = eil_pipelines.schedule_interval(1, lambda: ran.append(1))
    assert eil_pipelines.cancel(handle) is True
    assert eil_pipelines.cancel(handle) is False
    assert eil_pipelines.cancel("no-such-handle") is False
    step(clock, scheduler, timedelta(minutes=5))
    assert ran == []
    assert eil_pipelines.list_jobs() == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: eil_pipelines.schedule_daily(24, 0, print),
            "hour must be a whole number from 0 to 23, got 24",
        ),
        (
            lambda: eil_pipelines.schedule_daily(-1, 0, print),
            "hour must be a whole number from 0 to 23, got -1",
        ),
        (
            lambda: eil_pipelines.schedule_daily(7, 60, print),
            "minute must be a whole number from 0 to 59, got 60",
        ),
        (lambda: eil_pipelines.schedule_daily(7, 0, "print"), "job_fn must be callable, got str"),
        (
            lambda: eil_pipelines.schedule_interval(0, print),
            "minutes must be greater than 0, got 0",
        ),
        (
            lambda: eil_pipelines.schedule_interval(-5, print),
            "minutes must be greater than 0, got -5",
        ),
        (lambda: eil_pipelines.schedule_interval(5, None), "job_fn must be callable, got NoneType"),
    ],
)
def test_bad_arguments(manual, call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_real_time_interval_job_runs_on_the_default_engine():
    """One real-time check: the default scheduler's loop thread runs a 1-second job on time."""
    jobs.use_scheduler(None)
    done = threading.Event()
    handle = eil_pipelines.schedule_interval(1 / 60, done.set)
    try:
        assert done.wait(30)
    finally:
        eil_pipelines.cancel(handle)
    threads = [t.name for t in threading.enumerate()]
    assert threads.count("eil-jobs") == 1


def test_daily_kpi_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    reports = tmp_path / "reports"
    ledger = Ledger(ledger_path(reports))
    day = datetime(2026, 11, 28, 7, tzinfo=UTC)
    report = reports / "daily_sales" / "2026-11-28.md"
    ledger.claim("daily_sales", day, run_id="a", now=day)
    ledger.finish(
        "daily_sales",
        day,
        status="succeeded",
        now=day + timedelta(seconds=2),
        files=[report, reports / "daily_sales" / "latest.md"],
        summary={"metrics": [{"label": "Revenue", "text": "$1.2M", "change_text": "▲ +3.0%"}]},
    )
    ledger.claim("hourly", day, run_id="b", now=day)
    ledger.finish("hourly", day, status="failed", now=day, error="query failed: no such table")
    ledger.claim("hourly", day - timedelta(days=1), run_id="c", now=day)  # yesterday: not listed
    ledger.close()

    path = eil_pipelines.daily_kpi_summary(reports, now=day + timedelta(hours=3))
    assert path == reports / "daily" / "20261128_summary.md"
    assert path.read_text().splitlines() == [
        "# Daily summary, 2026-11-28",
        "",
        "1 failed, 1 succeeded.",
        "",
        "| pipeline | scheduled | status | headline | reports |",
        "| --- | --- | --- | --- | --- |",
        "| daily_sales | 07:00 | succeeded | Revenue $1.2M (▲ +3.0%) | [md](../daily_sales/2026-11-28.md) |",
        "| hourly | 07:00 | failed | query failed: no such table | – |",
    ]


def test_daily_kpi_summary_without_ledger(tmp_path):
    path = eil_pipelines.daily_kpi_summary(
        tmp_path / "reports", now=datetime(2026, 1, 2, tzinfo=UTC)
    )
    assert path.name == "20260102_summary.md"
    assert "No pipeline runs are recorded for this day." in path.read_text()
