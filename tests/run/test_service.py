"""SchedulerService in-process: exactly-once claims, restarts, recovery, retries,
timeouts, overlap and hot reload, on a temporary project.

Time is a :class:`ManualClock`; the tests step the scheduler with ``run_due``
and wait for its workers with ``wait_idle`` instead of sleeping.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eil_pipelines.app import ledger_path
from eil_pipelines.app import ledgered as ledgered_module
from eil_pipelines.app import service as service_module
from eil_pipelines.app.service import SchedulerService
from eil_pipelines.ledger import Ledger
from eil_pipelines.schedule.testing import ManualClock

START = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    """2026-03-02 at this UTC time."""
    return datetime(2026, 3, 2, hour, minute, second, tzinfo=UTC)


def pipeline_text(*, every: str = "1h", schedule: str = "", sql: str = "SELECT 1 AS x") -> str:
    return (
        'title = "Report"\n'
        "[schedule]\n"
        f'every = "{every}"\n'
        'timezone = "UTC"\n'
        f"{schedule}\n"
        "[queries.q]\n"
        f'sql = "{sql}"\n'
    )


SLOW_SQL = "SELECT count(*) AS n FROM range(100000000000)"  # minutes, unless interrupted


@pytest.fixture
def make_service(project):
    """Build (and by default start, without loop or watcher) services that are stopped after."""
    made: list[SchedulerService] = []

    def make(clock, *, start: bool = True, **options) -> SchedulerService:
        service = SchedulerService(
            project.pipelines, reports_dir=project.reports, clock=clock, **options
        )
        made.append(service)
        if start:
            service.start(watch=False, loop=False)
        return service

    yield make
    for service in made:
        service.stop(grace=5)


def step(service: SchedulerService) -> int:
    """Dispatch what is due at the clock's time and wait for the runs to end."""
    started = service.scheduler.run_due(service.clock.now())
    # A generous deadline, reached only when the test fails: on a loaded machine the
    # first run with charts waits for matplotlib to load in the chart processes.
    assert service.scheduler.wait_idle(300)
    return started


def rows_by_hour(service: SchedulerService) -> dict[int, tuple[str, int]]:
    return {r.scheduled_at.hour: (r.status, r.attempt) for r in service.ledger.history(limit=None)}


def reports(project, name: str) -> list[str]:
    folder = project.reports / name
    return sorted(p.name for p in folder.glob("*.md") if p.name != "latest.md")


@pytest.fixture
def gate(monkeypatch):
    """Hold every run before it starts its pipeline until ``gate.set()``."""
    event = threading.Event()
    real = ledgered_module.run_pipeline

    def held(*args, **kwargs):
        assert event.wait(10), "the test never opened the gate"
        return real(*args, **kwargs)

    monkeypatch.setattr(ledgered_module, "run_pipeline", held)
    yield event
    event.set()


def wait_for(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- exactly once -----------------------------------------------------------------------


def test_a_fire_time_runs_once_and_is_recorded(project, make_service, caplog):
    caplog.set_level(logging.INFO, logger="eil_pipelines")
    project.pipeline("hourly", pipeline_text())
    clock = ManualClock(START)
    service = make_service(clock)
    assert service.scheduler.get("hourly").next_fire == at(13)
    assert step(service) == 0  # 12:30: nothing due yet
    assert service.ledger.history() == []

    clock.set(at(13))
    assert step(service) == 1
    [row] = service.ledger.history()
    assert (row.pipeline, row.scheduled_at, row.status, row.attempt) == (
        "hourly",
        at(13),
        "succeeded",
        1,
    )
    report = project.reports / "hourly" / "2026-03-02T1300.md"
    assert report.read_text(encoding="utf-8").startswith("# Report")
    assert str(report) in row.files
    assert str(report.with_suffix(".html")) in row.files
    written = report.stat().st_mtime_ns

    assert step(service) == 0  # the same moment again: nothing to do
    assert service.ledger.history() == [row]
    assert report.stat().st_mtime_ns == written
    assert caplog.text.count("started: hourly at 2026-03-02T13:00:00+00:00") == 1
    assert service.scheduler.get("hourly").next_fire == at(14)


def test_two_services_on_one_folder_run_each_time_once(project, make_service, caplog):
    caplog.set_level(logging.INFO, logger="eil_pipelines")
    project.pipeline("hourly", pipeline_text())
    clock = ManualClock(START)
    first, second = make_service(clock), make_service(clock)
    for hour in (13, 14, 15):
        clock.set(at(hour))
        started = first.scheduler.run_due(clock.now()) + second.scheduler.run_due(clock.now())
        assert started == 2  # both try ...
        assert first.scheduler.wait_idle(60) and second.scheduler.wait_idle(60)
    # ... and the ledger lets one of them run each time.
    assert rows_by_hour(first) == {13: ("succeeded", 1), 14: ("succeeded", 1), 15: ("succeeded", 1)}
    assert len(first.ledger.history(limit=None)) == 3
    for hour in (13, 14, 15):
        assert caplog.text.count(f"started: hourly at 2026-03-02T{hour}:00:00+00:00") == 1
    assert caplog.text.count("is already in the ledger") == 3
    assert reports(project, "hourly") == [
        "2026-03-02T1300.md",
        "2026-03-02T1400.md",
        "2026-03-02T1500.md",
    ]


# -- restarts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "ran", "skipped"),
    [
        ('catch_up = "latest"', [18], [14, 15, 16, 17]),
        ('catch_up = "none"', [], [14, 15, 16, 17, 18]),
        ('catch_up = "all"\noverlap = "queue"', [14, 15, 16, 17, 18], []),
        ('catch_up = "all"', [14, 15, 16, 17, 18], []),
    ],
)
def test_restart_catches_up_by_policy(project, make_service, schedule, ran, skipped):
    project.pipeline("hourly", pipeline_text(schedule=schedule))
    clock = ManualClock(START)
    first = make_service(clock)
    clock.set(at(13))
    assert step(service=first) == 1
    assert first.stop(grace=5)

    clock.set(at(18, 5))  # down for 14:00 … 18:00
    second = make_service(clock)
    step(second)
    rows = rows_by_hour(second)
    assert sorted(h for h, (status, _) in rows.items() if status == "succeeded") == [13, *ran]
    assert sorted(h for h, (status, _) in rows.items() if status == "skipped") == skipped
    policy = schedule.split('"')[1]
    for record in second.ledger.history(limit=None):
        if record.status == "skipped":
            assert record.attempt == 0
            assert record.error == (
                f"missed while the scheduler was not running (catch_up = {policy})"
            )
    assert reports(project, "hourly") == [f"2026-03-02T{h}00.md" for h in [13, *ran]]
    assert second.scheduler.get("hourly").next_fire == at(19)
    assert step(second) == 0  # the catch-up happens once


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def leave_running_row(project, scheduled_at: datetime) -> None:
    """What a killed process leaves: a ``running`` row owned by a pid that is gone."""
    path = ledger_path(project.reports)
    with Ledger(path) as ledger:
        assert ledger.claim("hourly", scheduled_at, run_id="killed", now=scheduled_at)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE runs SET pid = ?, owner_token = 'gone' WHERE run_id = 'killed'", (dead_pid(),)
        )
    conn.close()


def test_abandoned_run_is_recovered_and_rerun_when_latest(project, make_service, caplog):
    caplog.set_level(logging.INFO, logger="eil_pipelines")
    project.pipeline("hourly", pipeline_text())
    clock = ManualClock(START)
    first = make_service(clock)
    clock.set(at(13))
    step(first)
    first.stop(grace=5)
    leave_running_row(project, at(14))

    clock.set(at(14, 10))
    second = make_service(clock)
    assert "abandoned: hourly at 2026-03-02T14:00:00+00:00 (the process running it stopped)" in (
        caplog.text
    )
    assert second.scheduler.get("hourly").next_fire == at(14)  # the abandoned time is due
    assert step(second) == 1
    row = second.ledger.get("hourly", at(14))
    assert (row.status, row.attempt, row.error) == ("succeeded", 2, None)
    assert row.run_id != "killed"
    assert "started: hourly at 2026-03-02T14:00:00+00:00 (attempt 2)" in caplog.text
    assert len(second.ledger.history(limit=None)) == 2
    assert reports(project, "hourly") == ["2026-03-02T1300.md", "2026-03-02T1400.md"]


def test_abandoned_run_that_is_not_the_latest_stays_abandoned(project, make_service):
    project.pipeline("hourly", pipeline_text())
    leave_running_row(project, at(14))
    clock = ManualClock(at(16, 10))
    service = make_service(clock)
    assert step(service) == 1
    assert rows_by_hour(service) == {
        14: ("abandoned", 1),
        15: ("skipped", 0),
        16: ("succeeded", 1),
    }
    assert service.ledger.get("hourly", at(14)).error.startswith(
        "the process running it stopped (pid "
    )


# -- failures ---------------------------------------------------------------------------


def test_failed_run_is_retried_after_the_delay(project, make_service, caplog):
    caplog.set_level(logging.INFO, logger="eil_pipelines")
    project.pipeline(
        "hourly",
        pipeline_text(
            schedule='retries = 2\nretry_delay = "1m"',
            sql="SELECT count(*) AS n FROM 'data/late.csv'",
        ),
    )
    clock = ManualClock(START)
    service = make_service(clock)
    clock.set(at(13))
    assert step(service) == 1
    row = service.ledger.get("hourly", at(13))
    assert (row.status, row.attempt) == ("failed", 1)
    assert "late.csv" in row.error
    assert not (project.reports / "hourly").exists()

    project.write("data/late.csv", "a\n1\n2\n")
    clock.set(at(13, 0, 59))
    assert step(service) == 0  # not before the delay
    clock.set(at(13, 1))
    assert step(service) == 1
    row = service.ledger.get("hourly", at(13))
    assert (row.status, row.attempt, row.error) == ("succeeded", 2, None)
    assert reports(project, "hourly") == ["2026-03-02T1300.md"]

    clock.set(at(13, 30))
    assert step(service) == 0  # no third attempt
    assert service.ledger.get("hourly", at(13)).attempt == 2
    assert "attempt 3" not in caplog.text


def test_a_fix_saved_while_a_retry_waits_is_what_the_retry_runs(project, make_service):
    broken = pipeline_text(
        schedule='retries = 1\nretry_delay = "5m"', sql="SELECT nope FROM range(3) t(x)"
    )
    project.pipeline("hourly", broken)
    clock = ManualClock(START)
    service = make_service(clock)
    clock.set(at(13))
    assert step(service) == 1
    assert service.ledger.get("hourly", at(13)).status == "failed"

    project.pipeline("hourly", broken.replace("SELECT nope", "SELECT x"))  # the fix
    clock.set(at(13, 2))
    assert service.reload() == ["rescheduled hourly, next run 2026-03-02T14:00:00+00:00"]
    clock.set(at(13, 5))
    assert step(service) == 1  # the retry, with the fixed query
    row = service.ledger.get("hourly", at(13))
    assert (row.status, row.attempt, row.error) == ("succeeded", 2, None)
    assert reports(project, "hourly") == ["2026-03-02T1300.md"]


TIMEOUT_ERROR = re.compile(
    r'stopped after the timeout of 1s: pipeline "hourly", query "q": '
    r"(the query was interrupted|not started: the run was stopped \(timeout\))"
)


def test_timeout_interrupts_the_query_with_the_loop_thread(project, make_service):
    project.pipeline("hourly", pipeline_text(schedule='timeout = "1s"', sql=SLOW_SQL))
    clock = ManualClock(START)
    service = make_service(clock, start=False)
    service.start(watch=False, loop=True)
    t0 = time.monotonic()
    clock.set(at(13))
    assert wait_for(lambda: service.ledger.get("hourly", at(13)) is not None)
    assert service.ledger.get("hourly", at(13)).status == "running"
    time.sleep(0.2)  # let the query get going
    clock.advance(1)  # the loop thread sees the timeout
    assert wait_for(lambda: service.ledger.get("hourly", at(13)).status != "running", 5)
    row = service.ledger.get("hourly", at(13))
    assert row.status == "timed_out"
    assert TIMEOUT_ERROR.fullmatch(row.error), row.error
    assert time.monotonic() - t0 < 4  # interrupted, not run for minutes
    assert not (project.reports / "hourly").exists()
    # The report site says what the ledger says, not "Failed".
    from eil_pipelines.outputs.site import read_status

    assert wait_for(
        lambda: (read_status(project.reports, "hourly") or {}).get("status") == "timed_out"
    )
    assert read_status(project.reports, "hourly")["error"] == row.error
    index = (project.reports / "index.html").read_text()
    assert "Timed out" in index and "Failed" not in index


def test_timeout_before_the_query_starts_still_stops_it(project, make_service, gate):
    # The first run of a process can spend its whole timeout importing DuckDB:
    # the query it opens afterwards must not run past the timeout unchecked.
    project.pipeline("hourly", pipeline_text(schedule='timeout = "1s"', sql=SLOW_SQL))
    clock = ManualClock(START)
    service = make_service(clock)
    clock.set(at(13))
    assert service.scheduler.run_due(clock.now()) == 1
    assert wait_for(lambda: service.ledger.get("hourly", at(13)) is not None)
    clock.advance(1)
    service.scheduler.run_due(clock.now())  # the timeout, while the run is held
    gate.set()
    assert service.scheduler.wait_idle(60)
    row = service.ledger.get("hourly", at(13))
    assert row.status == "timed_out"
    assert row.error == (
        'stopped after the timeout of 1s: pipeline "hourly", query "q": '
        "not started: the run was stopped (timeout)"
    )


@pytest.mark.parametrize("overlap", ["skip", "queue"])
def test_fire_time_during_a_run_is_skipped_or_queued(project, make_service, gate, overlap):
    project.pipeline("hourly", pipeline_text(schedule=f'overlap = "{overlap}"'))
    clock = ManualClock(START)
    service = make_service(clock)
    clock.set(at(13))
    assert service.scheduler.run_due(clock.now()) == 1  # held by the gate
    clock.set(at(14))
    assert service.scheduler.run_due(clock.now()) == 0
    if overlap == "skip":
        row = service.ledger.get("hourly", at(14))
        assert (row.status, row.attempt, row.error) == (
            "skipped",
            0,
            "the previous run was still going (overlap = skip)",
        )
    else:
        assert service.ledger.get("hourly", at(14)) is None
    gate.set()
    assert service.scheduler.wait_idle(60)
    expected = {13: ("succeeded", 1), 14: ("skipped", 0) if overlap == "skip" else ("succeeded", 1)}
    assert rows_by_hour(service) == expected


def test_stop_after_grace_abandons_and_interrupts_the_run(project, make_service, caplog):
    caplog.set_level(logging.INFO, logger="eil_pipelines")
    project.pipeline("hourly", pipeline_text(sql=SLOW_SQL))
    clock = ManualClock(START)
    service = make_service(clock)
    clock.set(at(13))
    assert service.scheduler.run_due(clock.now()) == 1
    assert wait_for(lambda: service.ledger.get("hourly", at(13)) is not None)
    time.sleep(0.2)  # the query is going
    assert service.stop(grace=0.2) is False
    row = service.ledger.get("hourly", at(13))
    assert row.status == "abandoned"
    assert row.error == f"the process running it stopped (pid {row.pid})"
    assert service.scheduler.wait_idle(
        30
    )  # its query was interrupted, not left running for minutes
    assert service.ledger.get("hourly", at(13)).status == "abandoned"
    assert "not recorded: hourly at 2026-03-02T13:00:00+00:00" in caplog.text
    assert "LedgerStateError" not in caplog.text  # no traceback from the worker
    assert not (project.reports / "hourly").exists()


# -- hot reload -------------------------------------------------------------------------


def test_reload_schedules_reschedules_unschedules_and_keeps_last_good(
    project, make_service, caplog, monkeypatch
):
    monkeypatch.chdir(project.root)
    caplog.set_level(logging.INFO, logger="eil_pipelines")
    project.pipeline("a", pipeline_text())
    clock = ManualClock(START)
    service = make_service(clock)
    assert service.reload() == []

    project.pipeline("b", pipeline_text(every="15m"))
    assert service.reload() == ["scheduled b, next run 2026-03-02T12:45:00+00:00"]
    assert service.scheduler.get("b").next_fire == at(12, 45)

    project.pipeline("a", pipeline_text(every="2h"))
    assert service.reload() == ["rescheduled a, next run 2026-03-02T14:00:00+00:00"]
    assert service.scheduler.get("a").next_fire == at(14)

    (project.pipelines / "b.toml").unlink()
    assert service.reload() == ["unscheduled b: b.toml was deleted"]
    assert service.scheduler.get("b") is None
    assert [p.name for p in service.pipelines()] == ["a"]

    project.pipeline("a", pipeline_text(every="soon"))
    assert service.reload() == ["invalid a.toml"]
    assert (
        'pipelines/a.toml: schedule.every: invalid duration "soon": expected a number and a '
        'unit, such as "90s", "15m", "2h", "1d" or "1h30m"'
    ) in caplog.text
    assert "keeping the last good version" in caplog.text
    assert service.reload() == []  # the same problem is logged once
    assert service.scheduler.get("a").next_fire == at(14)
    clock.set(at(14))
    assert step(service) == 1  # the last good version still runs
    assert service.ledger.get("a", at(14)).status == "succeeded"

    project.pipeline("a", pipeline_text(every="30m"))
    assert service.reload() == ["rescheduled a, next run 2026-03-02T14:30:00+00:00"]
    assert service.scheduler.get("a").next_fire == at(14, 30)


def test_watcher_schedules_a_new_file(project, make_service):
    project.pipeline("a", pipeline_text())
    clock = ManualClock(START)
    service = make_service(clock, start=False, reload_interval=0.1)
    service.start(watch=True, loop=False)
    assert service.scheduler.get("b") is None
    project.pipeline("b", pipeline_text(every="15m"))
    assert wait_for(lambda: service.scheduler.get("b") is not None, 2)
    assert service.scheduler.get("b").next_fire == at(12, 45)
    (project.pipelines / "b.toml").unlink()
    assert wait_for(lambda: service.scheduler.get("b") is None, 2)


def test_watcher_sees_a_file_saved_while_it_reloads(project, make_service, monkeypatch):
    project.pipeline("a", pipeline_text())
    clock = ManualClock(START)
    service = make_service(clock, start=False, reload_interval=0.1)
    service.start(watch=True, loop=False)
    real = service_module.load_pipeline
    saved = []

    def load_then_edit(file, **kwargs):
        pipeline = real(file, **kwargs)
        if file.name == "b.toml" and not saved:
            # The user saves again while the reload is still reading the folder.
            saved.append(project.pipeline("b", pipeline_text(every="2h")))  # another size
        return pipeline

    monkeypatch.setattr(service_module, "load_pipeline", load_then_edit)
    project.pipeline("b", pipeline_text(every="15m"))
    assert wait_for(lambda: service.scheduler.get("b") is not None, 2)
    assert wait_for(lambda: service.scheduler.get("b").next_fire == at(14), 2)


# -- chart processes ------------------------------------------------------------------

CHARTED = (
    pipeline_text(sql="SELECT * FROM (VALUES ('EMEA', 3.0), ('APAC', 5.0)) t(region, revenue)")
    + '[[charts]]\nname = "by_region"\nquery = "q"\ntype = "bar"\nx = "region"\ny = "revenue"\n'
    + '[[charts]]\nname = "share"\nquery = "q"\ntype = "pie"\nx = "region"\ny = "revenue"\n'
)


def test_charts_are_drawn_in_chart_processes_that_stop_with_the_service(project, make_service):
    from eil_pipelines.run import make_context, run_pipeline
    from eil_pipelines.spec.loader import load_pipeline

    path = project.pipeline("charted", CHARTED)
    clock = ManualClock(at(12, 59, 59))
    service = make_service(clock, chart_processes=2)
    assert service.charts is not None and service.charts.processes == 2
    clock.set(at(13))
    assert step(service) == 1
    assert rows_by_hour(service) == {13: ("succeeded", 1)}
    # Both were started (in the background) with the service, since a pipeline has charts.
    assert wait_for(lambda: len(service.charts.pids) == 2, timeout=300)
    pids = service.charts.pids

    # The same bytes as a run that draws its charts in its own thread.
    here = project.root / "inline-reports"
    pipeline = load_pipeline(path, root=project.root)
    assert run_pipeline(pipeline, make_context(pipeline, at(13)), here).ok
    for name in ("by_region.png", "share.png"):
        drawn = next((project.reports / "charted").glob(f"*/{name}")).read_bytes()
        assert drawn == next((here / "charted").glob(f"*/{name}")).read_bytes(), name
    html = next(p for p in (project.reports / "charted").glob("*.html") if p.stem != "latest")
    assert html.read_bytes() == (here / "charted" / html.name).read_bytes()

    assert service.stop(grace=5)
    assert service.charts.pids == []
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_chart_processes_start_when_a_pipeline_with_charts_first_runs(project, make_service):
    project.pipeline("charted", pipeline_text())  # no charts yet
    clock = ManualClock(at(12, 59, 59))
    service = make_service(clock, chart_processes=1)
    assert service.charts is None
    project.pipeline("charted", CHARTED)
    service.reload()
    clock.set(at(13))
    assert step(service) == 1
    assert rows_by_hour(service) == {13: ("succeeded", 1)}
    assert service.charts is not None and len(service.charts.pids) == 1
    assert service.stop(grace=5)
    assert service.charts.pids == []


def test_chart_processes_zero_draws_charts_in_the_runs_threads(project, make_service):
    project.pipeline("charted", CHARTED)
    clock = ManualClock(at(12, 59, 59))
    service = make_service(clock, chart_processes=0)
    assert service.charts is None
    clock.set(at(13))
    assert step(service) == 1
    assert rows_by_hour(service) == {13: ("succeeded", 1)}


def test_a_long_outage_is_recorded_in_batches_and_runs_the_latest(project, make_service, caplog):
    """Two days down on an ``every = "5s"`` pipeline: 34,559 skipped rows written in
    batches (one log line and one transaction each), and one run of the latest time."""
    caplog.set_level(logging.INFO, logger="eil_pipelines")
    project.pipeline("ticker", pipeline_text(every="5s", schedule='catch_up = "latest"'))
    clock = ManualClock(START)
    first = make_service(clock)
    first_fire = first.scheduler.get("ticker").next_fire
    clock.set(first_fire)
    assert step(first) == 1
    assert first.stop(grace=5)

    down_until = first_fire + timedelta(days=2)
    clock.set(down_until)
    second = make_service(clock)
    expected_rows = 2 * 24 * 720 + 1  # every 5 s for two days, and the first run
    for _ in range(200):  # the loop hands skips over one batch per turn
        step(second)
        if len(second.ledger.history(pipeline="ticker", limit=None)) == expected_rows:
            break
    rows = second.ledger.history(pipeline="ticker", limit=None)
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + 1
    assert by_status == {"succeeded": 2, "skipped": 2 * 24 * 720 - 1}
    latest = max(rows, key=lambda r: r.scheduled_at)
    assert latest.status == "succeeded" and latest.scheduled_at == down_until
    skip_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped:")]
    assert 1 <= len(skip_lines) <= 40, len(skip_lines)  # batches, not one line per time
    assert all(" fire times from " in line for line in skip_lines)
