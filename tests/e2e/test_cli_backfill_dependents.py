"""``eil-run backfill --with-dependents``: after the upstream range, the pipelines that wait
for it, upstream first, each time only when its upstream runs for its period succeeded.

A real project (pipeline files, a CSV, DuckDB) and the real ledger, through the CLI.
"""

from __future__ import annotations

from argparse import Namespace
from collections import Counter
from datetime import UTC, datetime

import pytest

from eil_pipelines.app import ledger_path
from eil_pipelines.app.backfill_dependents import dependents_of
from eil_pipelines.cli import main
from eil_pipelines.cli.backfill_dependents import then_dependents
from eil_pipelines.cli.progress import resume_command
from eil_pipelines.ledger import Ledger
from eil_pipelines.spec.loader import load_pipeline, load_pipelines

# A daily sales report (period: the day before); a day with no rows fails its run.
DAILY = """
title = "Sales"
[schedule]
daily = "07:00"
timezone = "UTC"
period = "day"
[queries.kpis]
sql = "SELECT CASE WHEN count(*) = 0 THEN error('no sales rows') ELSE sum(v) END AS v FROM 'data/s.csv' WHERE d >= $period_start AND d < $period_end"
[[metrics]]
label = "Sales"
query = "kpis"
column = "v"
[report]
formats = ["md"]
"""


def waiting(title: str, cron: str, after: str) -> str:
    """A pipeline that waits for ``after``; its period is the interval since its last time."""
    return (
        f'title = "{title}"\n[schedule]\ncron = "{cron}"\ntimezone = "UTC"\n'
        f'period = "interval"\nafter = ["{after}"]\n'
        '[queries.q]\nsql = "SELECT 1 AS x"\n[report]\nformats = ["md"]\n'
    )


def csv(missing: str | None = None) -> str:
    days = [f"2025-03-{d:02d}" for d in range(1, 20)]
    return "d,v\n" + "".join(f"{d},{i}\n" for i, d in enumerate(days, 1) if d != missing)


@pytest.fixture
def chain(project):
    """sales (daily) -> weekly (Mondays 08:00) -> review (Mondays 09:00); other is alone."""
    project.write("data/s.csv", csv())
    project.pipeline("sales", DAILY)
    project.pipeline("weekly", waiting("Weekly", "0 8 * * MON", "sales"))
    project.pipeline("review", waiting("Review", "0 9 * * MON", "weekly"))
    project.pipeline("other", waiting("Other", "0 10 * * *", "unrelated"))
    project.pipeline("unrelated", waiting("Unrelated", "0 6 * * *", "upstream_of_unrelated"))
    project.pipeline(
        "upstream_of_unrelated",
        'title = "U"\n[schedule]\ndaily = "05:00"\ntimezone = "UTC"\n'
        '[queries.q]\nsql = "SELECT 1 AS x"\n[report]\nformats = ["md"]\n',
    )
    return project


# Tuesday 4 March to Monday 17 March 2025: fourteen dailies, two Mondays.
RANGE = ["--from", "2025-03-04", "--to", "2025-03-17"]


def records(project) -> list:
    with Ledger(ledger_path(project.reports)) as ledger:
        return ledger.history(limit=None)


def test_dependents_are_found_transitively_upstream_first(chain):
    pipelines = load_pipelines(chain.pipelines)
    assert [p.name for p in dependents_of("sales", pipelines)] == ["weekly", "review"]
    assert [p.name for p in dependents_of("upstream_of_unrelated", pipelines)] == [
        "unrelated",
        "other",
    ]
    assert dependents_of("review", pipelines) == []


def test_weeklies_run_after_the_dailies_once_per_fire_time(chain, capsys, monkeypatch):
    monkeypatch.chdir(chain.root)
    assert main(["backfill", "pipelines/sales.toml", *RANGE, "--with-dependents"]) == 0
    out = capsys.readouterr().out
    assert "Dependents of sales, upstream first: weekly, review." in out
    assert "Backfill of weekly (" in out and "after sales): 2 fire times; 2 to run" in out
    assert out.index("Backfill of sales") < out.index("Backfill of weekly")
    assert out.index("Backfill of weekly") < out.index("Backfill of review")
    found = records(chain)
    # Exactly one ledger row per fire time, and only for the chain.
    per_key = Counter((r.pipeline, r.scheduled_at.astimezone(UTC)) for r in found)
    assert set(per_key.values()) == {1}
    assert Counter(r.pipeline for r in found) == {"sales": 14, "weekly": 2, "review": 2}
    assert {r.status for r in found} == {"succeeded"}
    weekly = sorted(r.scheduled_at.astimezone(UTC) for r in found if r.pipeline == "weekly")
    assert weekly == [datetime(2025, 3, 10, 8, tzinfo=UTC), datetime(2025, 3, 17, 8, tzinfo=UTC)]
    # Upstream first: every weekly run started after the last daily run ended.
    last_daily = max(r.finished_at for r in found if r.pipeline == "sales")
    first_weekly = min(r.started_at for r in found if r.pipeline == "weekly")
    last_weekly = max(r.finished_at for r in found if r.pipeline == "weekly")
    first_review = min(r.started_at for r in found if r.pipeline == "review")
    assert last_daily <= first_weekly and last_weekly <= first_review
    assert (chain.reports / "weekly" / "2025-03-17.md").exists()
    # A second go has nothing left to run, for the dependents either.
    assert main(["backfill", "pipelines/sales.toml", *RANGE, "--with-dependents"]) == 0
    out = capsys.readouterr().out
    assert "after sales): 2 fire times; 0 to run, 2 skipped." in out
    assert len(records(chain)) == 18


def test_a_failed_upstream_day_fails_the_dependents_period_naming_it(chain, capsys, monkeypatch):
    chain.write("data/s.csv", csv(missing="2025-03-12"))  # the run of the 13th fails
    monkeypatch.chdir(chain.root)
    assert main(["backfill", "pipelines/sales.toml", *RANGE, "--with-dependents"]) == 1
    out = capsys.readouterr().out
    status = {
        (r.pipeline, r.scheduled_at.astimezone(UTC)): (r.status, r.error) for r in records(chain)
    }
    assert status[("sales", datetime(2025, 3, 13, 7, tzinfo=UTC))][0] == "failed"
    assert status[("weekly", datetime(2025, 3, 10, 8, tzinfo=UTC))] == ("succeeded", None)
    weekly_error = "not run: its upstream runs did not succeed: sales 2025-03-13 07:00 (failed)"
    assert status[("weekly", datetime(2025, 3, 17, 8, tzinfo=UTC))] == ("failed", weekly_error)
    # Transitively: the review of the 17th waits for that weekly, which failed.
    assert status[("review", datetime(2025, 3, 17, 9, tzinfo=UTC))] == (
        "failed",
        "not run: its upstream runs did not succeed: weekly 2025-03-17 08:00 (failed)",
    )
    assert status[("review", datetime(2025, 3, 10, 9, tzinfo=UTC))] == ("succeeded", None)
    assert f"failed: 2025-03-17 08:00 +00:00: {weekly_error}" in out
    # Once the day is there, --reprocess failed mends the chain, as attempt 2.
    chain.write("data/s.csv", csv())
    args = ["backfill", "pipelines/sales.toml", *RANGE, "--with-dependents"]
    assert main([*args, "--reprocess", "failed"]) == 0
    capsys.readouterr()
    again = {(r.pipeline, r.scheduled_at.astimezone(UTC)): r for r in records(chain)}
    mended = again[("weekly", datetime(2025, 3, 17, 8, tzinfo=UTC))]
    assert (mended.status, mended.attempt) == ("succeeded", 2)
    assert len(again) == 18


def test_dry_run_lists_the_dependents_plans_and_records_nothing(chain, capsys, monkeypatch):
    monkeypatch.chdir(chain.root)
    assert main(["backfill", "pipelines/sales.toml", *RANGE, "--with-dependents", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Dependents of sales, upstream first: weekly, review." in out
    weekly = out[out.index("Backfill of weekly") :]
    assert weekly.splitlines()[1:3] == [
        "  2025-03-10 08:00 +00:00  run",
        "  2025-03-17 08:00 +00:00  run",
    ]
    assert "Backfill of review (" in out
    assert out.count("(Dry run: nothing was run.)") == 3
    assert not ledger_path(chain.reports).exists()


def test_a_pipeline_with_no_dependents_says_so(chain, capsys, monkeypatch):
    monkeypatch.chdir(chain.root)
    args = ["backfill", "pipelines/review.toml", "--from", "2025-03-10", "--to", "2025-03-10"]
    assert main([*args, "--with-dependents", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "No pipeline waits for review ([schedule] after): no dependents to backfill." in out


def test_without_the_option_dependents_are_left_alone(chain, capsys, monkeypatch):
    monkeypatch.chdir(chain.root)
    assert main(["backfill", "pipelines/sales.toml", *RANGE]) == 0
    assert "Dependents" not in capsys.readouterr().out
    assert {r.pipeline for r in records(chain)} == {"sales"}


def test_a_disabled_dependent_is_left_out_and_said(chain, capsys, monkeypatch):
    chain.pipeline("review", "enabled = false\n" + waiting("Review", "0 9 * * MON", "weekly"))
    monkeypatch.chdir(chain.root)
    assert main(["backfill", "pipelines/sales.toml", *RANGE, "--with-dependents"]) == 0
    out = capsys.readouterr().out
    assert "(left out: review is disabled, so the scheduler does not run it)" in out
    assert "Dependents of sales, upstream first: weekly." in out
    assert {r.pipeline for r in records(chain)} == {"sales", "weekly"}


def test_the_resume_command_keeps_with_dependents():
    options = Namespace(
        file="pipelines/sales.toml",
        end="2025-03-17",
        reprocess="none",
        workers=1,
        reports=None,
        with_dependents=True,
    )
    moment = datetime(2025, 3, 4, 7, tzinfo=UTC)
    assert resume_command(options, moment) == (
        "eil-run backfill pipelines/sales.toml --from 2025-03-04T07:00:00+00:00 "
        "--to 2025-03-17 --with-dependents"
    )


def test_a_stop_as_the_upstream_ends_starts_no_dependent(chain, capsys, monkeypatch):
    monkeypatch.chdir(chain.root)
    options = Namespace(
        file="pipelines/sales.toml",
        end="2025-03-17",
        reprocess="none",
        workers=1,
        reports=None,
        with_dependents=True,
        dry_run=False,
    )
    sales = load_pipeline(chain.pipelines / "sales.toml")
    start, end = datetime(2025, 3, 4, tzinfo=UTC), datetime(2025, 3, 18, tzinfo=UTC)
    assert then_dependents(options, sales, start, end, chain.reports, 0, True) == 130
    assert capsys.readouterr().out == (
        "\nInterrupted: the dependents did not start.  Resume with:\n"
        "  eil-run backfill pipelines/sales.toml --from 2025-03-04T00:00:00+00:00 "
        "--to 2025-03-17 --with-dependents\n"
    )
    assert not ledger_path(chain.reports).exists()
