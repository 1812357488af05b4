"""Runs that wait for upstream pipelines (``after``) and freshness gates (``require``),
in the scheduler service with a :class:`ManualClock`: nothing sleeps; the tests step
the loop with ``run_due`` and the waiter with ``check()``.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from eil_pipelines.app.service import SchedulerService
from eil_pipelines.app.waiting import Waiter
from eil_pipelines.ledger import Ledger
from eil_pipelines.run.context import make_context
from eil_pipelines.schedule.loop import Firing
from eil_pipelines.schedule.testing import ManualClock
from eil_pipelines.spec.loader import load_pipelines_lenient


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def text(schedule: str, sql: str = "SELECT 1 AS x", extra: str = "") -> str:
    return (
        f'title = "T"\n{extra}[schedule]\ntimezone = "UTC"\n{schedule}\n'
        f'[queries.q]\nsql = "{sql}"\n'
    )


@pytest.fixture
def make_service(project):
    made: list[SchedulerService] = []

    def make(clock) -> SchedulerService:
        service = SchedulerService(project.pipelines, reports_dir=project.reports, clock=clock)
        made.append(service)
        service.start(watch=False, loop=False)
        return service

    yield make
    for service in made:
        service.stop(grace=5)


def step(service: SchedulerService, moment: datetime | None = None) -> None:
    if moment is not None:
        service.clock.set(moment)  # type: ignore[attr-defined]
    service.scheduler.run_due(service.clock.now())
    assert service.scheduler.wait_idle(300)
    assert service.waiter is not None
    while service.waiter.check():  # a waiting run that starts ends, and may free another
        assert service.scheduler.wait_idle(300)


def rows(service: SchedulerService) -> dict[tuple[str, datetime], tuple[str, str | None]]:
    return {
        (r.pipeline, r.scheduled_at): (r.status, r.error)
        for r in service.ledger.history(limit=None)
    }


def test_a_daily_weekly_monthly_chain_over_a_month(project, make_service):
    project.pipeline("daily", text('daily = "06:00"'))
    project.pipeline("weekly", text('cron = "0 6 * * MON"\nafter = ["daily"]'))
    project.pipeline("monthly", text('cron = "0 6 1 * *"\nafter = ["weekly"]\nperiod = "month"'))
    clock = ManualClock(utc(2026, 6, 1, 0))
    service = make_service(clock)
    day = utc(2026, 6, 1, 6)
    while day <= utc(2026, 7, 1, 6):
        step(service, day)
        day += timedelta(days=1)
    got = rows(service)
    assert all(status == "succeeded" for status, _ in got.values()), got
    assert sum(1 for p, _ in got if p == "daily") == 31
    assert sorted(t.day for p, t in got if p == "weekly") == [1, 8, 15, 22, 29]
    assert sorted(t for p, t in got if p == "monthly") == [utc(2026, 6, 1, 6), utc(2026, 7, 1, 6)]


def test_a_diamond_starts_when_both_sides_have_run(project, make_service):
    project.pipeline("load", text('daily = "06:00"'))
    project.pipeline("left", text('daily = "06:00"\nafter = ["load"]'))
    project.pipeline("right", text('daily = "06:00"\nafter = ["load"]'))
    project.pipeline("top", text('daily = "06:00"\nafter = ["left", "right"]'))
    service = make_service(ManualClock(utc(2026, 6, 3, 5)))
    step(service, utc(2026, 6, 3, 6))
    assert {p: s for (p, _), (s, _) in rows(service).items()} == {
        "load": "succeeded",
        "left": "succeeded",
        "right": "succeeded",
        "top": "succeeded",
    }


def test_an_upstream_that_fails_then_succeeds_on_retry(project, make_service):
    data = project.root / "load.sqlite"
    with sqlite3.connect(data) as conn:
        conn.execute("CREATE TABLE other (x INTEGER)")
    project.pipeline(
        "load",
        text(
            'daily = "06:00"\nretries = 1\nretry_delay = "10m"',
            sql="SELECT x FROM staged",  # no such table until the test makes it
            extra='[source]\nkind = "sqlite"\npath = "load.sqlite"\n',
        ),
    )
    project.pipeline("report", text('daily = "06:00"\nafter = ["load"]\nwait_for = "2h"'))
    service = make_service(ManualClock(utc(2026, 6, 3, 5)))
    step(service, utc(2026, 6, 3, 6))
    got = rows(service)
    assert got[("load", utc(2026, 6, 3, 6))][0] == "failed"
    assert got[("report", utc(2026, 6, 3, 6))] == (
        "waiting",
        "waiting for load 2026-06-03 06:00 (failed)",
    )
    with sqlite3.connect(data) as conn:
        conn.execute("CREATE TABLE staged (x INTEGER)")
    step(service, utc(2026, 6, 3, 6, 10))  # the retry
    got = rows(service)
    assert got[("load", utc(2026, 6, 3, 6))][0] == "succeeded"
    assert got[("report", utc(2026, 6, 3, 6))] == ("succeeded", None)


def test_an_upstream_that_ends_while_a_run_is_put_on_hold_makes_it_due_at_once(project, tmp_path):
    # The upstream's end (its poke) comes between the hold's look at the ledger and
    # the run joining the held ones: the poke finds nothing to wake, so the hold
    # itself must make the run due now, not after the re-check interval.
    project.pipeline("load", text('daily = "06:00"'))
    project.pipeline("report", text('daily = "06:00"\nafter = ["load"]'))
    pipelines, errors = load_pipelines_lenient(project.pipelines)
    assert errors == []
    by_name = {p.name: p for p in pipelines}
    at = utc(2026, 6, 3, 6)
    poked: list[bool] = []

    def known():
        if not poked:  # the first look, inside hold(): the upstream ends now
            poked.append(True)
            waiter.poke()
        return by_name

    with Ledger(tmp_path / "l.sqlite3") as ledger:
        waiter = Waiter(
            ledger=ledger,
            now=lambda: at,
            known=known,
            start=lambda name, firing: None,
            fail=lambda name, firing, message: None,
        )
        report = by_name["report"]
        run_id = make_context(report, at).run_id
        assert waiter.hold(report, Firing("report", at), run_id) is False
        assert poked == [True]
        assert waiter.next_due() == at


def gate_project(project, flag_value: int | None) -> None:
    data = project.root / "etl.sqlite"
    with sqlite3.connect(data) as conn:
        conn.execute("CREATE TABLE etl_log (ready INTEGER)")
        if flag_value is not None:
            conn.execute("INSERT INTO etl_log VALUES (?)", (flag_value,))
    project.pipeline(
        "gated",
        (
            'title = "Gated"\n[source]\nkind = "sqlite"\npath = "etl.sqlite"\n'
            '[schedule]\ntimezone = "UTC"\ndaily = "07:00"\nwait_for = "1h"\n'
            '[schedule.require]\nquery = "fresh"\nevery = "5m"\n'
            '[queries.fresh]\nsql = "SELECT max(ready) AS ready FROM etl_log"\n'
        ),
    )


def test_a_gate_that_opens_after_three_checks(project, make_service):
    gate_project(project, 0)
    service = make_service(ManualClock(utc(2026, 6, 3, 6)))
    step(service, utc(2026, 6, 3, 7))  # check 1: shut
    step(service, utc(2026, 6, 3, 7, 5))  # check 2: shut
    [(status, note)] = rows(service).values()
    assert status == "waiting"
    assert note == 'waiting for the gate query "fresh" returned 0'
    summary = service.ledger.get("gated", utc(2026, 6, 3, 7)).summary
    assert summary == {"checks": 2}
    with sqlite3.connect(project.root / "etl.sqlite") as conn:
        conn.execute("UPDATE etl_log SET ready = 1")
    step(service, utc(2026, 6, 3, 7, 9))  # not due yet: still 2 checks
    assert rows(service)[("gated", utc(2026, 6, 3, 7))][0] == "waiting"
    step(service, utc(2026, 6, 3, 7, 10))  # check 3: open
    assert rows(service)[("gated", utc(2026, 6, 3, 7))] == ("succeeded", None)
    assert len(rows(service)) == 1  # one row per fire time, however many checks


def test_a_gate_that_never_opens_fails_with_its_words(project, make_service):
    gate_project(project, None)
    service = make_service(ManualClock(utc(2026, 6, 3, 6)))
    step(service, utc(2026, 6, 3, 7))
    moment = utc(2026, 6, 3, 7)
    while moment < utc(2026, 6, 3, 8):
        moment += timedelta(minutes=5)
        step(service, moment)
    [(status, error)] = rows(service).values()
    assert status == "failed"
    assert error == (
        "gave up waiting after 1h and 13 checks of the gate: "
        'waiting for the gate query "fresh" returned None'
    )


def test_two_services_on_one_ledger_run_a_waiting_time_once(project, make_service):
    project.pipeline("load", text('daily = "06:00"'))
    project.pipeline("report", text('daily = "06:00"\nafter = ["load"]'))
    clock = ManualClock(utc(2026, 6, 3, 5))
    first, second = make_service(clock), make_service(clock)
    clock.set(utc(2026, 6, 3, 6))
    for service in (first, second):
        service.scheduler.run_due(clock.now())
    for service in (first, second):
        assert service.scheduler.wait_idle(300)
        assert service.waiter is not None
        service.waiter.check()
        assert service.scheduler.wait_idle(300)
    # The service holding the report may not be the one whose upstream run ended (no
    # poke crosses processes): its re-check, 30 s on, finds the upstream done.
    clock.set(utc(2026, 6, 3, 6, 1))
    for service in (first, second):
        assert service.waiter is not None
        service.waiter.check()
        assert service.scheduler.wait_idle(300)
    got = rows(first)
    assert got[("report", utc(2026, 6, 3, 6))] == ("succeeded", None)
    assert len(got) == 2
    report_files = sorted((project.reports / "report").glob("2026-06-03*.md"))
    assert len(report_files) == 1


def test_once_checks_the_gate_once_and_says_when_it_is_shut(project):
    import subprocess
    import sys

    gate_project(project, 0)
    command = [sys.executable, "-m", "eil_pipelines", "--once", str(project.pipelines)]
    shut = subprocess.run(command, capture_output=True, text=True, check=False)
    assert shut.returncode == 1, shut.stderr
    assert 'its freshness gate is shut: the gate query "fresh" returned 0' in shut.stdout
    assert "--ignore-require runs it anyway" in shut.stdout
    assert not (project.reports / "gated").exists()
    forced = subprocess.run([*command, "--ignore-require"], capture_output=True, text=True)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert len(list((project.reports / "gated").glob("*.md"))) >= 1


def test_list_and_history_show_a_waiting_run_and_what_it_waits_for(project):
    import subprocess
    import sys

    project.pipeline("daily", text('daily = "06:00"'))
    project.pipeline("weekly", text('cron = "0 6 * * MON"\nafter = ["daily"]'))
    note = "waiting for daily 2026-12-07 06:00 (running)"
    with Ledger(project.reports / ".eil" / "ledger.sqlite3") as ledger:
        ledger.wait("weekly", utc(2026, 12, 7, 6), run_id="w1", note=note)
    command = [sys.executable, "-m", "eil_pipelines"]
    listed = subprocess.run(
        [*command, "list", str(project.pipelines)], capture_output=True, text=True, check=False
    )
    assert listed.returncode == 0, listed.stderr
    assert "last run: waiting (scheduled 2026-12-07" in listed.stdout
    history = subprocess.run(
        [*command, "history", str(project.pipelines)], capture_output=True, text=True, check=False
    )
    assert history.returncode == 0, history.stderr
    assert "weekly    waiting" in history.stdout and note in history.stdout


def test_a_run_whose_process_died_while_it_waited_waits_again_as_attempt_2(project, make_service):
    from eil_pipelines.app import ledger_path

    # load's 05:00 run is made elsewhere (catch_up = "none" here: this scheduler
    # never runs the missed one), so report's 06:00 run waits for it.
    project.pipeline("load", text('daily = "05:00"\ncatch_up = "none"'))
    project.pipeline("report", text('daily = "06:00"\nafter = ["load"]\nwait_for = "6h"'))
    five, six = utc(2026, 6, 3, 5), utc(2026, 6, 3, 6)
    # A scheduler held report's 06:00 run waiting for load, and was killed.
    with Ledger(ledger_path(project.reports)) as ledger:
        assert ledger.wait("report", six, run_id="dead", note="waiting for load", now=six)
        ledger.mark_abandoned(now=six, pids_alive=lambda pid: False)
    service = make_service(ManualClock(utc(2026, 6, 3, 6, 30)))
    step(service)  # the catch-up fires 06:00 again: load has not run, so it waits
    held = service.ledger.get("report", six)
    assert held is not None
    assert (held.status, held.attempt) == ("waiting", 2), (held.status, held.error)
    # Another process runs load's 05:00; the waiter's next re-check finds it.
    with Ledger(ledger_path(project.reports)) as other:
        other.claim("load", five, run_id="elsewhere", now=utc(2026, 6, 3, 6, 31))
        other.finish("load", five, status="succeeded", now=utc(2026, 6, 3, 6, 31))
    step(service, utc(2026, 6, 3, 6, 32))
    done = service.ledger.get("report", six)
    assert done is not None
    assert (done.status, done.attempt) == ("succeeded", 2), (done.status, done.error)
