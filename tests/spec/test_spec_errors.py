"""Every kind of bad pipeline file gets an exact, actionable message: file, key path, what was expected."""

from __future__ import annotations

import pytest

from eil_pipelines.errors import ConfigError, ConfigErrors
from eil_pipelines.spec import load_pipeline, load_pipelines


def problems(project, text: str, name: str = "p") -> list[str]:
    """Load one pipeline file and return its problems as ``key: message`` lines."""
    path = project.pipeline(name, text)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path, root=project.root)
    assert info.value.file == path
    return [f"{k}: {m}" if k else m for k, m in info.value.problems]


BASE = '[queries.q]\nsql = "SELECT 1 AS x"\n'


def test_toml_syntax_error_names_line_and_column(project):
    assert problems(project, 'title = "x"\nenabled = = true\n') == [
        "TOML syntax error at line 2, column 11: invalid value"
    ]


def test_unknown_key_suggests_the_right_one(project):
    assert problems(project, 'titel = "x"\n' + BASE) == [
        "title: required key is missing",
        'titel: unknown key "titel"; did you mean "title"?',
    ]


def test_unknown_nested_key_gives_dotted_path(project):
    text = 'title = "x"\n' + BASE + '[schedule]\ncron = "0 7 * * *"\ntimezon = "UTC"\n'
    assert problems(project, text) == [
        'schedule.timezon: unknown key "timezon"; did you mean "timezone"?'
    ]


def test_unknown_key_in_list_item(project):
    text = (
        'title = "x"\n'
        + BASE
        + '[[charts]]\nname = "c"\nquery = "q"\nx = "x"\ny = "x"\ncolour = "red"\n'
    )
    assert problems(project, text) == [
        'charts[0].colour: unknown key "colour" (allowed: name, query, type, x, y, series, title, '
        "format, target, target_label, sort, limit, y_zero)"
    ]


def test_missing_required_keys(project):
    assert problems(project, 'description = "d"\n') == [
        "title: required key is missing",
        "queries: required key is missing",
    ]


def test_missing_required_key_in_metric(project):
    text = 'title = "x"\n' + BASE + '[[metrics]]\nlabel = "Revenue"\nquery = "q"\n'
    assert problems(project, text) == ["metrics[0].column: required key is missing"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('enabled = "yes"', 'enabled: expected true or false, got string "yes"'),
        ("title = 5", "title: expected a string, got integer 5"),
        ('[report]\nmax_rows = "ten"', 'report.max_rows: expected an integer, got string "ten"'),
        ("[report]\nmax_rows = 0", "report.max_rows: must be at least 1, got integer 0"),
        (
            '[report]\nformats = ["docx"]',
            'report.formats[0]: expected one of "md", "html" or "pdf", got string "docx"',
        ),
        (
            '[source]\nkind = "postgres"',
            'source.kind: expected one of "duckdb" or "sqlite", got string "postgres"',
        ),
        (
            "[params]\nregion = [1, 2]",
            (
                "params.region: expected true or false, an integer, a number, a string or a date "
                "(such as 2026-01-31), got a list"
            ),
        ),
        (
            "[params]\nwhen = 2026-01-01T08:00:00",
            (
                "params.when: expected true or false, an integer, a number, a string or a date "
                "(such as 2026-01-31), got date-time 2026-01-01T08:00:00"
            ),
        ),
        ('[params]\nrun_date = "x"', 'params: parameter "run_date" is built in and cannot be set'),
        ("queries = 3", "queries: expected a table, got integer 3"),
    ],
)
def test_wrong_types(project, line, expected):
    title = "" if line.startswith("title") else 'title = "x"\n'
    base = "" if line.startswith("queries") else BASE
    # Top-level keys must come before the first table.
    text = (
        (title + line + "\n" + base) if not line.startswith("[") else (title + base + line + "\n")
    )
    assert problems(project, text) == [expected]


def test_query_needs_exactly_one_of_sql_or_file(project):
    text = 'title = "x"\n[queries.both]\nsql = "SELECT 1"\nfile = "q.sql"\n[queries.neither]\n'
    assert problems(project, text) == [
        'queries.both: give exactly one of "sql" or "file" (got both)',
        'queries.neither: give exactly one of "sql" or "file" (got neither)',
    ]


def test_chart_and_metric_naming_missing_query(project):
    text = (
        'title = "x"\n[queries.daily]\nsql = "SELECT 1 AS x"\n'
        '[[metrics]]\nlabel = "R"\nquery = "kpis"\ncolumn = "x"\n'
        '[[charts]]\nname = "c"\nquery = "dayly"\nx = "x"\ny = "x"\n'
    )
    assert problems(project, text) == [
        'metrics[0].query: no query named "kpis" (queries defined: daily)',
        'charts[0].query: no query named "dayly"; did you mean "daily"? (queries defined: daily)',
    ]


def test_all_problems_reported_at_once(project):
    text = 'title = 5\nenabled = "no"\n[queries.q]\n[[charts]]\nname = "Bad Name"\nquery = "nope"\ny = "v"\n'
    found = problems(project, text)
    assert len(found) == 5
    assert found[0] == "title: expected a string, got integer 5"
    assert 'charts[0].name: invalid name "Bad Name"' in found[3]


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ('cron = "61 * * * *"', 'schedule.cron: invalid cron expression "61 * * * *"'),
        ('cron = "0 7 * *"', 'schedule.cron: invalid cron expression "0 7 * *"'),
        ('every = "15 minutes"', 'schedule.every: invalid duration "15 minutes"'),
        ('every = "0s"', 'schedule.every: invalid duration "0s": must be greater than zero'),
        (
            'daily = "25:00"',
            'schedule.daily: invalid time "25:00": hour must be 0-23 and minute 0-59',
        ),
        (
            'daily = "8am"',
            'schedule.daily: invalid time \'8am\': expected "HH:MM", such as "08:00"',
        ),
        (
            'daily = "08:00"\ntimezone = "Mars/Olympus"',
            (
                'schedule.timezone: unknown time zone "Mars/Olympus": expected an IANA name such as '
                '"Europe/Berlin" or "UTC"'
            ),
        ),
        (
            'cron = "0 7 * * *"\nevery = "1h"',
            ('schedule: give exactly one of "cron", "every" or "daily", not "cron" and "every"'),
        ),
        ('timezone = "UTC"', 'schedule: give exactly one of "cron", "every" or "daily"'),
        (
            'cron = "0 7 * * *"\ndays = ["mon"]',
            ('schedule: "days" goes with "daily"; for cron use the day-of-week field'),
        ),
        (
            'daily = "08:00"\ndays = ["monday"]',
            (
                'schedule.days[0]: expected one of "mon", "tue", "wed", "thu", "fri", "sat" or "sun", '
                'got string "monday"; did you mean "mon"?'
            ),
        ),
        (
            'cron = "0 7 * * *"\nperiod = "quarter"',
            (
                'schedule.period: expected one of "interval", "day", "week" or "month", got string "quarter"'
            ),
        ),
    ],
)
def test_bad_schedules(project, schedule, expected):
    found = problems(project, 'title = "x"\n' + BASE + "[schedule]\n" + schedule + "\n")
    assert len(found) == 1
    assert found[0].startswith(expected), found[0]


def test_missing_sql_file(project):
    found = problems(project, 'title = "x"\n[queries.q]\nfile = "sql/missing.sql"\n')
    assert found == [
        f"queries.q.file: SQL file not found: sql/missing.sql (looked for {project.root / 'sql/missing.sql'})"
    ]


def test_missing_template_file(project):
    found = problems(
        project, 'title = "x"\n' + BASE + '[report]\ntemplate = "templates/nope.md.j2"\n'
    )
    assert found == [
        "report.template: template not found: templates/nope.md.j2 "
        f"(looked for {project.root / 'templates/nope.md.j2'})"
    ]


def test_template_syntax_error_names_template_and_line(project, monkeypatch):
    monkeypatch.chdir(project.root)
    project.write("templates/t.md.j2", "# {{ pipeline.title }}\n\n{% if x %}\nno end\n")
    found = problems(project, 'title = "x"\n' + BASE + '[report]\ntemplate = "templates/t.md.j2"\n')
    assert len(found) == 1
    assert found[0].startswith("report.template: templates/t.md.j2:")
    assert "template syntax error: " in found[0]


def test_environment_variable_not_set(project):
    path = project.pipeline(
        "p", 'title = "x"\n' + BASE + '[source]\npath = "${WAREHOUSE_DIR}/w.duckdb"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_pipeline(path, root=project.root, env={})
    assert info.value.problems == [
        ("source.path", 'environment variable "WAREHOUSE_DIR" is not set')
    ]


def test_environment_variable_expanded(project):
    path = project.pipeline(
        "p", 'title = "x"\n' + BASE + '[source]\npath = "${WH:-data}/w.duckdb"\n'
    )
    assert load_pipeline(path, root=project.root, env={}).spec.source.path == "data/w.duckdb"
    assert (
        load_pipeline(path, root=project.root, env={"WH": "/srv"}).spec.source.path
        == "/srv/w.duckdb"
    )


def test_sqlite_source_needs_path(project):
    assert problems(project, 'title = "x"\n' + BASE + '[source]\nkind = "sqlite"\n') == [
        'source: a "sqlite" source needs a "path"'
    ]


def test_chart_shape_errors(project):
    text = (
        'title = "x"\n' + BASE + '[[charts]]\nname = "a"\nquery = "q"\ntype = "bar"\ny = "x"\n'
        '[[charts]]\nname = "a"\nquery = "q"\nx = "x"\ny = ["x", "y"]\nseries = "s"\n'
    )
    assert problems(project, text) == [
        'charts[0]: a "bar" chart needs an "x" column',
        'charts[1]: use either "series" or a list of "y" columns, not both',
        'charts[1].name: chart name "a" is already used by charts[0]',
    ]


def test_bad_file_name_without_name_key(project):
    assert problems(project, 'title = "x"\n' + BASE, name="Daily Sales") == [
        'the file name "Daily Sales" is not a valid pipeline name: use lowercase letters, digits, '
        '"_" and "-", starting with a letter or digit (or set a "name" key)'
    ]


def test_duplicate_pipeline_names_in_folder(project):
    project.pipeline("a", 'title = "A"\nname = "sales"\n' + BASE)
    project.pipeline("sales", 'title = "B"\n' + BASE)
    with pytest.raises(ConfigErrors) as info:
        load_pipelines(project.pipelines)
    [error] = info.value.errors
    assert error.file.name == "sales.toml"
    assert error.problems[0][1].startswith('duplicate pipeline name "sales": ')
    assert error.problems[0][1].endswith("a.toml has the same name")


def test_every_file_reported_not_just_the_first(project):
    project.pipeline("a", "title = 1\n" + BASE)
    project.pipeline("b", 'title = "ok"\n' + BASE)
    project.pipeline("c", 'title = "x"\n')
    with pytest.raises(ConfigErrors) as info:
        load_pipelines(project.pipelines)
    assert [e.file.name for e in info.value.errors] == ["a.toml", "c.toml"]
    assert info.value.problem_count == 2


def test_empty_folder_and_missing_path(project):
    from eil_pipelines.errors import EilError

    with pytest.raises(EilError, match=r"no pipeline files \(\*\.toml\) in this folder"):
        load_pipelines(project.pipelines)
    with pytest.raises(EilError, match="no such file or folder"):
        load_pipelines(project.root / "nowhere")


CHART = '[[charts]]\nname = "c"\nquery = "q"\nx = "x"\ny = "x"\n'


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            'type = "pie"\ntarget = 5',
            'charts[0]: "target" is for line, bar, barh and area charts, not "pie"',
        ),
        (
            'type = "line"\nsort = "desc"',
            'charts[0]: "sort" is for bar and barh charts, not "line"',
        ),
        (
            'type = "line"\nlimit = 5',
            'charts[0]: "limit" is for bar, barh and pie charts, not "line"',
        ),
        ('type = "bar"\nlimit = 0', "charts[0].limit: must be at least 1, got integer 0"),
        (
            'type = "bar"\nsort = "up"',
            'charts[0].sort: expected one of "asc" or "desc", got string "up"',
        ),
        ('target = "high"', ('charts[0].target: expected a number, got string "high"')),
    ],
)
def test_bad_chart_options(project, extra, expected):
    found = problems(project, 'title = "x"\n' + BASE + CHART + extra + "\n")
    assert found == [expected]


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ('exports = ["csv", "csv"]', "report.exports: each entry may appear once"),
        (
            'exports = ["json"]',
            'report.exports[0]: expected one of "csv", "xlsx" or "parquet", got string "json"',
        ),
        ("keep = 0", "report.keep: must be at least 1, got integer 0"),
        ('keep = "all"', 'report.keep: expected an integer, got string "all"'),
    ],
)
def test_bad_report_outputs(project, report, expected):
    found = problems(project, 'title = "x"\n' + BASE + "[report]\n" + report + "\n")
    assert found == [expected]
