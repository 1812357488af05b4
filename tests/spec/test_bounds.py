"""Validation is total: schedule values outside their documented bounds are refused
with a message naming the file and key path, never accepted and crashed on later."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eil_pipelines.errors import ConfigError
from eil_pipelines.schedule.durations import check_duration, parse_duration
from eil_pipelines.schedule.zones import get_zone, is_zone_name, zone_problem
from eil_pipelines.spec import load_pipeline

BASE = 'title = "x"\n[queries.q]\nsql = "SELECT 1 AS x"\n[schedule]\ntimezone = "UTC"\n'


def problems(project, schedule: str, *, base: str = BASE) -> list[str]:
    """The problems of a pipeline with ``schedule`` lines added, as ``file: key: message``."""
    path = project.pipeline("daily_sales", base + schedule)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path, root=project.root)
    return str(info.value).splitlines()


def shown(project) -> str:
    return str(project.pipelines / "daily_sales.toml")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('every = "1ms"', 'schedule.every: invalid duration "1ms": must be at least 1s'),
        ('every = "999ms"', 'schedule.every: invalid duration "999ms": must be at least 1s'),
        (
            'every = "3000000d"',
            'schedule.every: invalid duration "3000000d": must be at most 366d',
        ),
        ('every = "367d"', 'schedule.every: invalid duration "367d": must be at most 366d'),
        (
            'every = "0.0000001s"',
            'schedule.every: invalid duration "0.0000001s": must be greater than zero',
        ),
        (
            'cron = "0 7 * * *"\nretry_delay = "99999999999d"',
            'schedule.retry_delay: invalid duration "99999999999d": must be at most 1d',
        ),
        (
            'cron = "0 7 * * *"\nretry_delay = "500ms"',
            'schedule.retry_delay: invalid duration "500ms": must be at least 1s',
        ),
        (
            'cron = "0 7 * * *"\ntimeout = "8d"',
            'schedule.timeout: invalid duration "8d": must be at most 7d',
        ),
        (
            'cron = "0 7 * * *"\ntimeout = "10ms"',
            'schedule.timeout: invalid duration "10ms": must be at least 1s',
        ),
        (
            'cron = "0 7 * * *"\njitter = "2d"',
            'schedule.jitter: invalid duration "2d": must be at most 1d',
        ),
        (
            'cron = "0 7 * * *"\nretries = 11',
            "schedule.retries: must be at most 10, got integer 11",
        ),
        (
            'cron = "0 7 * * *"\ncatch_up = "all"\nmax_catch_up = 1001',
            "schedule.max_catch_up: must be at most 1000, got integer 1001",
        ),
        (
            'every = "1h"\nstart = 0001-01-01T00:00:00',
            "schedule.start: start 0001-01-01T00:00:00 is out of range: "
            "the year must be 1900 to 9000",
        ),
        (
            'every = "1h"\nstart = 9999-12-31T23:00:00',
            "schedule.start: start 9999-12-31T23:00:00 is out of range: "
            "the year must be 1900 to 9000",
        ),
    ],
)
def test_out_of_bounds_values_name_file_key_and_bound(project, line, message):
    assert problems(project, line + "\n") == [f"{shown(project)}: {message}"]


def test_a_long_time_zone_is_refused_by_length(project):
    base = BASE.replace('timezone = "UTC"\n', "")
    name = "A" * 300
    assert problems(project, f'cron = "0 7 * * *"\ntimezone = "{name}"\n', base=base) == [
        f'{shown(project)}: schedule.timezone: unknown time zone "{"A" * 32}…": '
        "the name has 300 characters, at most 64; "
        'expected an IANA name such as "Europe/Berlin" or "UTC"'
    ]


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe", "../../etc/passwd", "/etc/localtime"])
def test_unknown_time_zones_are_refused_by_name(project, name):
    base = BASE.replace('timezone = "UTC"\n', "")
    assert problems(project, f'cron = "0 7 * * *"\ntimezone = "{name}"\n', base=base) == [
        f'{shown(project)}: schedule.timezone: unknown time zone "{name}": '
        'expected an IANA name such as "Europe/Berlin" or "UTC"'
    ]


def test_values_at_the_bounds_are_accepted(project):
    path = project.pipeline(
        "edge",
        BASE + 'every = "366d"\nstart = 1900-01-01T00:00:00\nretries = 10\nretry_delay = "1d"\n'
        'timeout = "7d"\njitter = "1d"\ncatch_up = "all"\nmax_catch_up = 1000\n',
    )
    schedule = load_pipeline(path, root=project.root).spec.schedule
    assert schedule is not None
    assert (schedule.every, schedule.retry_delay, schedule.timeout, schedule.jitter) == (
        timedelta(days=366),
        timedelta(days=1),
        timedelta(days=7),
        timedelta(days=1),
    )
    low = project.pipeline("low", BASE + 'every = "1s"\ntimeout = "1s"\njitter = "1ms"\n')
    assert load_pipeline(low, root=project.root).spec.schedule.every == timedelta(seconds=1)


def test_parse_duration_bounds_and_overflow():
    with pytest.raises(ValueError, match=r'invalid duration "99999999999d": must be at most 3660d'):
        parse_duration("99999999999d")
    huge = "9" * 400 + "d"
    with pytest.raises(ValueError, match=r"must be at most 3660d") as info:
        parse_duration(huge)
    assert huge not in str(info.value)  # shortened, not echoed whole
    assert parse_duration("3660d") == timedelta(days=3660)
    with pytest.raises(ValueError, match=r'invalid duration "2s": must be at least 1m'):
        parse_duration("2s", minimum=timedelta(minutes=1))
    with pytest.raises(ValueError, match=r'invalid duration "2h": must be at most 1h'):
        check_duration(timedelta(hours=2), maximum=timedelta(hours=1))
    with pytest.raises(ValueError, match=r'invalid duration "0s": must be greater than zero'):
        check_duration(timedelta(0))


def test_zone_checks_never_reach_the_file_system_with_a_long_name():
    assert not is_zone_name("x" * 5000)
    assert zone_problem("Europe/Berlin") is None
    assert zone_problem("") == (
        'unknown time zone "": expected an IANA name such as "Europe/Berlin" or "UTC"'
    )
    assert zone_problem("Europe/Ber\nlin") == (
        "unknown time zone 'Europe/Ber\\nlin': it holds control characters; "
        'expected an IANA name such as "Europe/Berlin" or "UTC"'
    )
    with pytest.raises(ValueError, match="the name has 5000 characters, at most 64"):
        get_zone("x" * 5000)


def test_file_names_with_control_characters_are_problems_not_crashes(project):
    path = project.pipeline(
        "p",
        'title = "x"\n[queries.q]\nfile = "a\\u0000b.sql"\n[report]\ntemplate = "t\\nx.md"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_pipeline(path, root=project.root)
    assert info.value.problems == [
        (
            "queries.q.file",
            'the SQL file name "a\\x00b.sql" holds a control character or a line break: '
            "rename the file",
        ),
        (
            "report.template",
            'the template name "t\\x0ax.md" holds a control character or a line break: '
            "rename the file",
        ),
    ]
