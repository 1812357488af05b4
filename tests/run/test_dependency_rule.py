"""Which upstream runs a dependent run waits for: daily → weekly → monthly, and a diamond."""

from __future__ import annotations

from datetime import UTC, datetime

from eil_pipelines.app.dependencies import required_runs, unmet_upstreams
from eil_pipelines.ledger import Ledger
from eil_pipelines.run import make_context
from eil_pipelines.spec.loader import load_pipelines_lenient


def pipe(project, name: str, schedule: str, after: str = "", period: str = "interval") -> None:
    project.pipeline(
        name,
        f'title = "{name}"\n[schedule]\n{schedule}\ntimezone = "UTC"\nperiod = "{period}"\n'
        f'{after}\n[queries.q]\nsql = "SELECT 1 AS x"\n',
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def load(project):
    valid, errors = load_pipelines_lenient(project.pipelines)
    assert errors == []
    return {p.name: p for p in valid}


def test_a_weekly_waits_for_each_daily_of_its_week_and_a_monthly_for_each_weekly(project):
    pipe(project, "daily", 'daily = "06:00"')
    pipe(project, "weekly", 'cron = "0 8 * * MON"', 'after = ["daily"]')
    pipe(project, "monthly", 'cron = "0 9 1 * *"', 'after = ["weekly"]', period="month")
    known = load(project)
    week = make_context(known["weekly"], utc(2026, 6, 8, 8))
    assert (week.period_start, week.period_end) == (utc(2026, 6, 1, 8), utc(2026, 6, 8, 8))
    # Dailies at 06:00 from Tue 2 Jun to Mon 8 Jun: after the week's start (Mon 1 Jun 08:00),
    # not after the weekly's own fire time.
    days = required_runs(known["daily"], week.period_start, week.scheduled_at)
    assert days == [utc(2026, 6, d, 6) for d in range(2, 9)]
    month = make_context(known["monthly"], utc(2026, 7, 1, 9))
    weeks = required_runs(known["weekly"], month.period_start, month.scheduled_at)
    # June's weeklies; the one of 6 July is after the monthly's fire time.
    assert weeks == [utc(2026, 6, d, 8) for d in (1, 8, 15, 22, 29)]


def test_a_report_on_the_previous_day_waits_for_the_load_of_its_morning(project):
    pipe(project, "load", 'daily = "06:00"')
    pipe(project, "report", 'daily = "07:00"', 'after = ["load"]', period="day")
    known = load(project)
    ctx = make_context(known["report"], utc(2026, 6, 3, 7))
    assert required_runs(known["load"], ctx.period_start, ctx.scheduled_at) == [
        utc(2026, 6, 2, 6),
        utc(2026, 6, 3, 6),
    ]


def test_unmet_names_each_upstream_run_and_its_state(project, tmp_path):
    pipe(project, "load_a", 'daily = "06:00"')
    pipe(project, "load_b", 'daily = "06:30"')
    pipe(project, "left", 'daily = "07:00"', 'after = ["load_a"]')
    pipe(project, "right", 'daily = "07:00"', 'after = ["load_b"]')
    pipe(project, "top", 'daily = "08:00"', 'after = ["left", "right"]')  # a diamond
    known = load(project)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ctx = make_context(known["top"], utc(2026, 6, 3, 8))
    unmet = unmet_upstreams(ledger, known["top"], ctx, known)
    assert [u.describe() for u in unmet] == [
        "left 2026-06-03 07:00 (not run yet)",
        "right 2026-06-03 07:00 (not run yet)",
    ]
    for name, status in (("left", "succeeded"), ("right", "failed")):
        assert ledger.claim(name, utc(2026, 6, 3, 7), run_id=name) is not None
        ledger.finish(name, utc(2026, 6, 3, 7), status=status, attempt=1)
    assert [u.describe() for u in unmet_upstreams(ledger, known["top"], ctx, known)] == [
        "right 2026-06-03 07:00 (failed)"
    ]
    ledger.close()
