"""One run end to end, in-process: each contract key has an effect, each bad input a clear failure."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.run import make_context, run_pipeline
from eil_pipelines.spec import load_pipeline

BERLIN = ZoneInfo("Europe/Berlin")
AT = datetime(2026, 11, 28, 7, 0, tzinfo=BERLIN)

SALES_CSV = "d,region,v\n2026-11-26,EMEA,10\n2026-11-27,EMEA,15\n2026-11-27,APAC,5\n"

BASE = """
title = "Sales"
description = "How much did we sell?"
[schedule]
cron = "0 7 * * *"
timezone = "Europe/Berlin"
period = "day"
[params]
region = "EMEA"
[queries.kpis]
sql = '''
SELECT sum(v) FILTER (WHERE d >= $period_start AND d < $period_end AND region = $region) AS v,
       sum(v) FILTER (WHERE d >= $prev_period_start AND d < $prev_period_end AND region = $region) AS p
FROM 'data/s.csv'
'''
[queries.by_region]
sql = "SELECT region, sum(v) AS v FROM 'data/s.csv' WHERE d >= $period_start GROUP BY 1 ORDER BY 2 DESC"
[[metrics]]
label = "Sales"
query = "kpis"
column = "v"
compare = "p"
format = "currency"
decimals = 1
[[charts]]
name = "regions"
query = "by_region"
type = "bar"
x = "region"
y = "v"
"""


def run(project, text: str, name: str = "sales", at: datetime = AT):
    """Write the pipeline, load it and run it once at ``at``; returns (pipeline, result)."""
    project.write("data/s.csv", SALES_CSV)
    path = project.pipeline(name, text)
    pipeline = load_pipeline(path, root=project.root)
    return pipeline, run_pipeline(pipeline, make_context(pipeline, at), project.reports)


def test_a_full_run_writes_both_formats_with_every_part(project):
    _pipeline, result = run(project, BASE)
    assert result.ok, result.error
    folder = project.reports / "sales"
    assert result.stamp == "2026-11-28"
    md = (folder / "2026-11-28.md").read_text()
    assert md.startswith("# Sales\n\nHow much did we sell?")
    assert "**Sales** €" not in md  # currency default is $
    assert "$15.0" in md and "$10.0" in md  # decimals = 1; yesterday vs the day before
    assert "Sales rose 50.0% to $15.0 against the previous day." in md
    assert "EMEA led " in md
    assert "](2026-11-28_charts/regions.png)" in md
    assert "SELECT sum(v) FILTER" in md  # the SQL section
    html = (folder / "2026-11-28.html").read_text()
    # report.data = "summary" (the default): the chart and the metric show every
    # query, so there is no data table; the SQL is still there.
    assert html.count("<svg") == 1 and "<table" not in html and "<details" in html
    assert "## Data" not in md
    assert [p.name for p in result.files if p.suffix == ".png"] == ["regions.png"]
    assert result.metrics[0].value == 15.0
    assert result.stages.query > 0 and result.stages.charts > 0


def test_params_are_bound_and_change_the_result(project):
    _, result = run(project, BASE.replace('region = "EMEA"', 'region = "APAC"'))
    assert result.metrics[0].value == 5.0
    assert result.metrics[0].previous is None


def test_formats_currency_and_max_rows(project):
    text = BASE + '[report]\nformats = ["md"]\ncurrency = "€"\nmax_rows = 1\ndata = "full"\n'
    _, _result = run(project, text)
    folder = project.reports / "sales"
    assert sorted(p.name for p in folder.iterdir()) == [
        "2026-11-28.json",
        "2026-11-28.md",
        "2026-11-28_charts",
        "index.html",
        "latest.md",
    ]
    md = (folder / "2026-11-28.md").read_text()
    assert "€15.0" in md
    assert "Showing 1 of 2 rows." in md


def test_html_only_draws_no_png(project):
    _, _result = run(project, BASE + '[report]\nformats = ["html"]\n')
    assert sorted(p.name for p in (project.reports / "sales").iterdir()) == [
        "2026-11-28.html",
        "2026-11-28.json",
        "index.html",
        "latest.html",
    ]


def test_name_key_overrides_file_stem(project):
    pipeline, _result = run(project, 'name = "renamed"\n' + BASE)
    assert pipeline.name == "renamed"
    assert (project.reports / "renamed" / "latest.md").exists()


def test_sql_from_file_and_custom_template(project):
    project.write(
        "sql/regions.sql", "SELECT region, sum(v) AS v FROM 'data/s.csv' GROUP BY 1 ORDER BY 1"
    )
    project.write(
        "templates/t.md.j2",
        "# {{ pipeline.title }} for {{ params.region }}\n\n{{ data.by_region | table }}\n\n"
        "Period {{ run.period_start }} to {{ run.period_end }}; id {{ run.id }}\n",
    )
    text = (
        BASE.replace(
            '''sql = "SELECT region, sum(v) AS v FROM 'data/s.csv' WHERE d >= $period_start GROUP BY 1 ORDER BY 2 DESC"''',
            'file = "sql/regions.sql"',
        )
        + '[report]\ntemplate = "templates/t.md.j2"\n'
    )
    _, result = run(project, text)
    assert result.ok, result.error
    md = (project.reports / "sales" / "2026-11-28.md").read_text()
    assert md.startswith("# Sales for EMEA\n")
    assert "| APAC | 5 |" in md
    assert "Period 2026-11-27 00:00:00 to 2026-11-28 00:00:00; id 20261128T060000Z-" in md


def test_sqlite_source(project):
    db = project.root / "data" / "w.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t(day TEXT, v REAL)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [("2026-11-27", 3.0), ("2026-11-26", 2.0)])
    con.commit()
    con.close()
    text = """
title = "Lite"
[schedule]
daily = "07:00"
timezone = "Europe/Berlin"
period = "day"
[source]
kind = "sqlite"
path = "data/w.sqlite"
[queries.k]
sql = "SELECT sum(v) AS v FROM t WHERE day >= date($period_start) AND day < date($period_end)"
[[metrics]]
label = "V"
query = "k"
column = "v"
"""
    _, result = run(project, text, name="lite")
    assert result.ok, result.error
    assert result.metrics[0].value == 3.0


def test_stamp_has_minutes_for_hourly_schedules(project):
    text = BASE.replace('cron = "0 7 * * *"', 'every = "1h"').replace(
        'period = "day"', 'period = "interval"'
    )
    _, result = run(project, text)
    assert result.stamp == "2026-11-28T0700"
    assert (project.reports / "sales" / "2026-11-28T0700.html").exists()


def test_empty_result_still_renders(project):
    text = BASE + '[report]\ndata = "full"\n'
    _, result = run(project, text, at=datetime(2030, 1, 1, 7, tzinfo=BERLIN))
    assert result.ok, result.error
    md = (project.reports / "sales" / "2030-01-01.md").read_text()
    assert "No data for this period." in md
    assert "Sales: no data for this day." in md


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('y = "v"', 'y = "value"'),
            'pipeline "sales", chart "regions": column "value" (y) is not in the result of query "by_region"; available columns: region, v',
        ),
        (
            ('y = "v"', 'y = "region"'),
            'pipeline "sales", chart "regions": column "region" (y) is not numeric (it holds text); choose a numeric column for y',
        ),
        (
            ("FROM 'data/s.csv'\n'''", "FROM 'data/missing.csv'\n'''"),
            'pipeline "sales", query "kpis": IO Error: No files found that match the pattern "data/missing.csv"',
        ),
        (
            ('column = "v"', 'column = "vv"'),
            'metric "Sales": column "vv" is not in the result of query "kpis"; available columns: v, p',
        ),
    ],
)
def test_bad_data_fails_the_run_with_a_clear_message(project, change, expected):
    _, result = run(project, BASE.replace(*change))
    assert result.status == "failed"
    assert result.error.startswith(expected), result.error
    assert not (project.reports / "sales").exists()


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "# {{ pipeline.title }}\n\n{{ nothing_here }}\n",
            "templates/t.md.j2:3: undefined template variable: 'nothing_here' is undefined",
        ),
        (
            "# x\n{{ ''.__class__.__mro__ }}\n",
            "templates/t.md.j2:2: sandbox violation: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "# x\n{{ data.kpis.to_csv('/tmp/leak.csv') }}\n",
            "templates/t.md.j2:2: sandbox violation: ",
        ),
    ],
)
def test_template_errors_fail_the_run_and_keep_earlier_reports(
    project, monkeypatch, template, expected
):
    monkeypatch.chdir(project.root)
    _, _first = run(project, BASE)
    before = (project.reports / "sales" / "latest.md").read_bytes()
    project.write("templates/t.md.j2", template)
    _, result = run(project, BASE + '[report]\ntemplate = "templates/t.md.j2"\n')
    assert result.status == "failed"
    assert result.error.startswith(expected), result.error
    assert (project.reports / "sales" / "latest.md").read_bytes() == before
