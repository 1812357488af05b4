"""``eil-run explain``: fire times, periods and daylight-saving warnings, against times worked out by hand.

2026 transitions used below:
* Europe/Berlin: Sun 29 March 02:00 CET → 03:00 CEST (01:00 UTC); Sun 25 October
  03:00 CEST → 02:00 CET (01:00 UTC), so 02:00–02:59 happens twice.
* America/New_York: Sun 8 March 02:00 EST → 03:00 EDT (07:00 UTC); Sun 1 November
  02:00 EDT → 01:00 EST (06:00 UTC), so 01:00–01:59 happens twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from eil_pipelines.cli import main

BERLIN_GAP = (
    "the schedule names 02:30, which does not exist on 2026-03-29 in Europe/Berlin "
    "(clocks jump from 02:00 to 03:00): it runs at the first valid instant, 03:00"
)
BERLIN_OVERLAP_ONCE = (
    "02:30 occurs twice on 2026-10-25 in Europe/Berlin (clocks go back from 03:00 to 02:00): "
    "it runs once, at the first occurrence (+02:00)"
)
NY_GAP = (
    "the schedule names 02:30, which does not exist on 2026-03-08 in America/New_York "
    "(clocks jump from 02:00 to 03:00): it runs at the first valid instant, 03:00"
)
NY_OVERLAP_ONCE = (
    "01:30 occurs twice on 2026-11-01 in America/New_York (clocks go back from 02:00 to 01:00): "
    "it runs once, at the first occurrence (-04:00)"
)


def pipeline_text(schedule: str, zone: str, period: str = "interval") -> str:
    return (
        f'title = "T"\n[schedule]\n{schedule}\ntimezone = "{zone}"\nperiod = "{period}"\n'
        '[queries.q]\nsql = "SELECT 1 AS x"\n'
    )


@pytest.fixture
def explain(project, capsys, monkeypatch):
    """Write a pipeline with ``schedule`` in ``zone``; return its ``explain --format json``."""
    monkeypatch.chdir(project.root)

    def run(schedule: str, zone: str, start: str, count: int, period: str = "interval") -> dict:
        project.pipeline("t", pipeline_text(schedule, zone, period))
        args = ["explain", "pipelines/t.toml", "--from", start, "--next", str(count)]
        assert main([*args, "--format", "json"]) == 0
        return json.loads(capsys.readouterr().out)

    return run


def fires(result: dict) -> list[tuple[str, str, list[str]]]:
    """(local, utc, warning kinds) of each fire time."""
    return [(f["local"], f["utc"], [w["kind"] for w in f["warnings"]]) for f in result["fires"]]


@pytest.mark.parametrize("schedule", ['cron = "30 2 * * *"', 'daily = "02:30"'])
def test_berlin_spring_forward_runs_at_the_end_of_the_gap(explain, schedule):
    result = explain(schedule, "Europe/Berlin", "2026-03-28T00:00", 3)
    assert fires(result) == [
        ("2026-03-28T02:30:00+01:00", "2026-03-28T01:30:00+00:00", []),
        ("2026-03-29T03:00:00+02:00", "2026-03-29T01:00:00+00:00", ["gap"]),
        ("2026-03-30T02:30:00+02:00", "2026-03-30T00:30:00+00:00", []),
    ]
    assert result["fires"][1]["warnings"][0]["message"] == BERLIN_GAP
    # period = "interval": previous fire → this fire, across the jump
    assert result["fires"][1]["period_start"] == "2026-03-28T02:30:00+01:00"
    assert result["fires"][1]["period_end"] == "2026-03-29T03:00:00+02:00"


@pytest.mark.parametrize("schedule", ['cron = "30 2 * * *"', 'daily = "02:30"'])
def test_berlin_fall_back_runs_once_at_the_first_occurrence(explain, schedule):
    result = explain(schedule, "Europe/Berlin", "2026-10-24T12:00", 2)
    assert fires(result) == [
        ("2026-10-25T02:30:00+02:00", "2026-10-25T00:30:00+00:00", ["overlap"]),
        ("2026-10-26T02:30:00+01:00", "2026-10-26T01:30:00+00:00", []),
    ]
    assert result["fires"][0]["warnings"][0]["message"] == BERLIN_OVERLAP_ONCE


def test_berlin_day_period_across_the_jump(explain):
    result = explain('daily = "02:30"', "Europe/Berlin", "2026-03-29T00:00", 1, period="day")
    assert result["period"] == "day"
    [fire] = result["fires"]
    assert fire["local"] == "2026-03-29T03:00:00+02:00"
    assert (fire["period_start"], fire["period_end"]) == (
        "2026-03-28T00:00:00+01:00",
        "2026-03-29T00:00:00+01:00",
    )


def test_berlin_every_hour_through_fall_back_runs_in_both_occurrences(explain):
    result = explain('every = "1h"', "Europe/Berlin", "2026-10-25T00:30", 4)
    assert fires(result) == [
        ("2026-10-25T01:00:00+02:00", "2026-10-24T23:00:00+00:00", []),
        ("2026-10-25T02:00:00+02:00", "2026-10-25T00:00:00+00:00", ["overlap"]),
        ("2026-10-25T02:00:00+01:00", "2026-10-25T01:00:00+00:00", ["overlap"]),
        ("2026-10-25T03:00:00+01:00", "2026-10-25T02:00:00+00:00", []),
    ]
    clocks = (
        "02:00 occurs twice on 2026-10-25 in Europe/Berlin (clocks go back from 03:00 to 02:00)"
    )
    assert [f["warnings"][0]["message"] for f in result["fires"][1:3]] == [
        f"{clocks}: it runs at both; this is the first occurrence (+02:00)",
        f"{clocks}: it runs at both; this is the second occurrence (+01:00)",
    ]


def test_berlin_every_hour_through_spring_forward_counts_real_time(explain):
    result = explain('every = "1h"', "Europe/Berlin", "2026-03-29T00:30", 3)
    assert fires(result) == [
        ("2026-03-29T01:00:00+01:00", "2026-03-29T00:00:00+00:00", []),
        ("2026-03-29T03:00:00+02:00", "2026-03-29T01:00:00+00:00", ["gap"]),
        ("2026-03-29T04:00:00+02:00", "2026-03-29T02:00:00+00:00", []),
    ]
    assert result["fires"][1]["warnings"][0]["message"] == (
        "the clocks jump forward 1 hour in Europe/Berlin (02:00 → 03:00) after the previous run "
        "at 01:00+01:00: an interval counts real time, so this run comes 1 hour after it, at "
        "03:00 on the clock"
    )


def test_berlin_hourly_cron_skips_the_missing_hour_and_repeats_the_doubled_one(explain):
    spring = explain('cron = "0 * * * *"', "Europe/Berlin", "2026-03-29T00:30", 3)
    assert fires(spring) == [
        ("2026-03-29T01:00:00+01:00", "2026-03-29T00:00:00+00:00", []),
        ("2026-03-29T03:00:00+02:00", "2026-03-29T01:00:00+00:00", ["gap"]),
        ("2026-03-29T04:00:00+02:00", "2026-03-29T02:00:00+00:00", []),
    ]
    assert spring["fires"][1]["warnings"][0]["message"] == (
        "02:00 does not exist on 2026-03-29 in Europe/Berlin (clocks jump from 02:00 to 03:00): "
        "no run of its own; this 03:00 run is the first after the gap"
    )
    fall = explain('cron = "0 * * * *"', "Europe/Berlin", "2026-10-25T01:30", 3)
    assert fires(fall) == [
        ("2026-10-25T02:00:00+02:00", "2026-10-25T00:00:00+00:00", ["overlap"]),
        ("2026-10-25T02:00:00+01:00", "2026-10-25T01:00:00+00:00", ["overlap"]),
        ("2026-10-25T03:00:00+01:00", "2026-10-25T02:00:00+00:00", []),
    ]


def test_berlin_hourly_cron_at_half_past_loses_the_run_in_the_gap(explain):
    result = explain('cron = "30 * * * *"', "Europe/Berlin", "2026-03-29T01:00", 2)
    assert fires(result) == [
        ("2026-03-29T01:30:00+01:00", "2026-03-29T00:30:00+00:00", []),
        ("2026-03-29T03:30:00+02:00", "2026-03-29T01:30:00+00:00", ["gap"]),
    ]
    assert result["fires"][1]["warnings"][0]["message"] == (
        "02:30 does not exist on 2026-03-29 in Europe/Berlin (clocks jump from 02:00 to 03:00): "
        "that run does not happen (a schedule that runs every hour follows real time)"
    )


def test_berlin_several_missing_times_collapse_into_one_run(explain):
    result = explain('cron = "*/30 2 * * *"', "Europe/Berlin", "2026-03-29T00:00", 2)
    assert fires(result) == [
        ("2026-03-29T03:00:00+02:00", "2026-03-29T01:00:00+00:00", ["gap"]),
        ("2026-03-30T02:00:00+02:00", "2026-03-30T00:00:00+00:00", []),
    ]
    assert result["fires"][0]["warnings"][0]["message"] == (
        "the schedule names 02:00 and 02:30, which do not exist on 2026-03-29 in Europe/Berlin "
        "(clocks jump from 02:00 to 03:00): it runs at the first valid instant, 03:00"
    )


@pytest.mark.parametrize("schedule", ['cron = "30 2 * * *"', 'daily = "02:30"'])
def test_new_york_spring_forward(explain, schedule):
    result = explain(schedule, "America/New_York", "2026-03-07T12:00", 2)
    assert fires(result) == [
        ("2026-03-08T03:00:00-04:00", "2026-03-08T07:00:00+00:00", ["gap"]),
        ("2026-03-09T02:30:00-04:00", "2026-03-09T06:30:00+00:00", []),
    ]
    assert result["fires"][0]["warnings"][0]["message"] == NY_GAP


@pytest.mark.parametrize("schedule", ['cron = "30 1 * * *"', 'daily = "01:30"'])
def test_new_york_fall_back(explain, schedule):
    result = explain(schedule, "America/New_York", "2026-10-31T12:00", 2)
    assert fires(result) == [
        ("2026-11-01T01:30:00-04:00", "2026-11-01T05:30:00+00:00", ["overlap"]),
        ("2026-11-02T01:30:00-05:00", "2026-11-02T06:30:00+00:00", []),
    ]
    assert result["fires"][0]["warnings"][0]["message"] == NY_OVERLAP_ONCE


def test_new_york_every_90_minutes_through_spring_forward(explain):
    # The grid is anchored at 2000-01-01 00:00 EST: 05:00 UTC plus multiples of 90 minutes.
    result = explain('every = "90m"', "America/New_York", "2026-03-08T00:00", 3)
    assert fires(result) == [
        ("2026-03-08T01:30:00-05:00", "2026-03-08T06:30:00+00:00", []),
        ("2026-03-08T04:00:00-04:00", "2026-03-08T08:00:00+00:00", ["gap"]),
        ("2026-03-08T05:30:00-04:00", "2026-03-08T09:30:00+00:00", []),
    ]
    assert result["fires"][1]["warnings"][0]["message"] == (
        "the clocks jump forward 1 hour in America/New_York (02:00 → 03:00) after the previous "
        "run at 01:30-05:00: an interval counts real time, so this run comes 1 hour 30 minutes "
        "after it, at 04:00 on the clock"
    )


def test_new_york_every_30_minutes_through_fall_back(explain):
    result = explain('every = "30m"', "America/New_York", "2026-11-01T00:45", 5)
    assert fires(result) == [
        ("2026-11-01T01:00:00-04:00", "2026-11-01T05:00:00+00:00", ["overlap"]),
        ("2026-11-01T01:30:00-04:00", "2026-11-01T05:30:00+00:00", ["overlap"]),
        ("2026-11-01T01:00:00-05:00", "2026-11-01T06:00:00+00:00", ["overlap"]),
        ("2026-11-01T01:30:00-05:00", "2026-11-01T06:30:00+00:00", ["overlap"]),
        ("2026-11-01T02:00:00-05:00", "2026-11-01T07:00:00+00:00", []),
    ]


def test_a_value_with_an_offset_is_that_instant(explain):
    # 00:30 UTC is 01:30 CET: the next 02:30 is that same night.
    result = explain('daily = "02:30"', "Europe/Berlin", "2026-01-10T00:30:00+00:00", 1)
    assert result["from"] == "2026-01-10T01:30:00+01:00"
    assert result["fires"][0]["local"] == "2026-01-10T02:30:00+01:00"


def test_text_output(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    project.pipeline("nightly", pipeline_text('daily = "02:30"', "Europe/Berlin", "day"))
    assert main(["explain", "pipelines/nightly.toml", "--from", "2026-03-28", "--next", "2"]) == 0
    assert capsys.readouterr().out == (
        "nightly: T\n"
        "  schedule: every day at 02:30 Europe/Berlin\n"
        "  zone:     Europe/Berlin\n"
        "  period:   day: each run covers the previous calendar day\n"
        "\n"
        "Next 2 fire times after Sat 2026-03-28 00:00 +01:00:\n"
        "  Sat 2026-03-28 02:30 +01:00   = 2026-03-28 01:30 UTC   "
        "covers 2026-03-27 00:00 to 2026-03-28 00:00\n"
        "  Sun 2026-03-29 03:00 +02:00   = 2026-03-29 01:00 UTC   "
        "covers 2026-03-28 00:00 to 2026-03-29 00:00\n"
        f"      warning (gap): {BERLIN_GAP}\n"
    )


def test_a_pipeline_without_a_schedule(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    project.pipeline("adhoc", 'title = "Ad hoc"\n[queries.q]\nsql = "SELECT 1"\n')
    assert main(["explain", "pipelines/adhoc.toml"]) == 0
    assert capsys.readouterr().out == (
        "adhoc: Ad hoc\n  schedule: none: it runs only on demand (eil-run --once)\n"
    )
    assert main(["explain", "pipelines/adhoc.toml", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["schedule"], result["fires"]) == (None, [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pipelines/nope.toml"], "eil-run explain: pipelines/nope.toml: no such pipeline file"),
        (
            ["pipelines"],
            "eil-run explain: pipelines is a folder; give one pipeline file, such as "
            "pipelines/daily_sales.toml",
        ),
        (["pipelines/t.toml", "--next", "0"], "eil-run explain: --next must be at least 1"),
        (
            ["pipelines/t.toml", "--from", "soon"],
            'eil-run explain: --from: invalid date-time "soon": expected ISO 8601 such as '
            "2026-03-29T07:00 or 2026-03-29",
        ),
    ],
)
def test_bad_arguments_exit_2(project, capsys, monkeypatch, args, message):
    monkeypatch.chdir(project.root)
    project.pipeline("t", pipeline_text('daily = "07:00"', "UTC"))
    assert main(["explain", *args]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_an_invalid_pipeline_file_exits_2_with_its_problems(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    project.pipeline(
        "t", 'title = "T"\n[schedule]\ncron = "0 25 * * *"\n[queries.q]\nsql = "SELECT 1"\n'
    )
    assert main(["explain", "pipelines/t.toml"]) == 2
    assert capsys.readouterr().err.startswith(
        'pipelines/t.toml: schedule.cron: invalid cron expression "0 25 * * *": hour 25 is out of '
        "range 0-23\n"
    )


def test_explain_as_a_subprocess(project):
    project.pipeline("t", pipeline_text('cron = "30 2 * * *"', "Europe/Berlin"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "eil_pipelines",
            "explain",
            "pipelines/t.toml",
            "--from",
            "2026-03-29T00:00",
            "--next",
            "1",
            "--format",
            "json",
        ],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["fires"][0]["utc"] == "2026-03-29T01:00:00+00:00"
