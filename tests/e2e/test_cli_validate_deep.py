"""``eil-run validate --deep`` and ``--format json``: what a run would trip over, without running."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import eil

from eil_pipelines.cli import main

GOOD = """
title = "Sales"
[schedule]
daily = "07:00"
timezone = "Europe/Berlin"
period = "day"
[params]
region = "EMEA"
[queries.kpis]
sql = '''
SELECT sum(v) FILTER (WHERE d >= $period_start) AS v,
       sum(v) FILTER (WHERE d < $prev_period_end) AS p
FROM 'data/s.csv' WHERE region = $region -- a trailing comment
'''
[queries.daily]
sql = '''
WITH days AS (SELECT * FROM 'data/s.csv')
SELECT d, region, v FROM days ORDER BY d;
'''
[[metrics]]
label = "Sales"
query = "kpis"
column = "v"
compare = "p"
[[charts]]
name = "trend"
query = "daily"
x = "d"
y = "v"
series = "region"
[report]
template = "templates/sales.md.j2"
"""

GOOD_TEMPLATE = """\
# {{ pipeline.title }} ({{ params.region }}, {{ run.date | date }})
{% for m in metrics %}- {{ m.label }}: {{ m.text }}
{% endfor %}
{{ charts.trend }}
{{ charts["trend"].title }}
{{ data.daily | table }}
{{ data.kpis.v.sum() | number }} {{ data.kpis.iloc[0].v }}
{% for name, df in data.items() %}{{ name }}: {{ df.shape[0] }}{% endfor %}
{% set rows = data.daily %}{{ rows.whatever_the_template_means }}
{{ sql.kpis | code("sql") }} {{ range(3) | list }} {{ format }}
"""

BAD = """
title = "Bad"
[queries.kpis]
sql = "SELECT sum(v) AS v FROM 'data/s.csv'"
[queries.broken]
sql = '''
SELECT nope FROM 'data/s.csv' -- comment
'''
[queries.syntax]
sql = '''
SELECT 1
FROM
'''
[queries.missing]
sql = "SELECT * FROM 'data/missing.csv'"
[queries.unknown_param]
sql = "SELECT $regio AS r"
[[metrics]]
label = "Sales"
query = "kpis"
column = "vv"
compare = "prev"
[[charts]]
name = "trend"
query = "kpis"
x = "v"
y = ["v", "w"]
[report]
template = "templates/bad.md.j2"
"""

BAD_TEMPLATE = """\
# {{ pipeline.titel }}
{{ data.kpi | table }}
{{ data.kpis.vv }}
{{ charts.trnd }}
{{ foo }}
{{ run.dat }} {{ params.region }}
"""


@pytest.fixture
def sales(project, monkeypatch):
    monkeypatch.chdir(project.root)
    project.write("data/s.csv", "d,region,v\n2026-11-25,EMEA,10\n2026-11-26,AMER,12\n")
    project.write("templates/sales.md.j2", GOOD_TEMPLATE)
    project.pipeline("sales", GOOD)
    return project


def test_a_good_pipeline_passes_the_deep_check(sales, capsys):
    assert main(["validate", "--deep"]) == 0
    assert capsys.readouterr().out == (
        "ok  pipelines/sales.toml\n"
        "\n1 pipeline valid (deep: queries prepared, columns and template names checked).\n"
    )


#: DuckDB's message goes on with candidate columns, which depend on its version.
BINDER = (
    'pipelines/bad.toml: queries.broken: Binder Error: Referenced column "nope" not found in '
    "FROM clause!"
)
BAD_LINES = [
    'pipelines/bad.toml: queries.syntax: Parser Error: syntax error at or near "FROM" (line 2 of the SQL)',
    "pipelines/bad.toml: queries.missing: IO Error: No files found that match the pattern "
    '"data/missing.csv"',
    "pipelines/bad.toml: queries.unknown_param: the SQL uses $regio, which is not a parameter "
    "(defined: period_end, period_start, prev_period_end, prev_period_start, run_date, run_time)",
    'pipelines/bad.toml: metrics[0].column: no column "vv" in the result of query "kpis"; '
    'did you mean "v"? (columns: v)',
    'pipelines/bad.toml: metrics[0].compare: no column "prev" in the result of query "kpis" '
    "(columns: v)",
    'pipelines/bad.toml: charts[0].y[1]: no column "w" in the result of query "kpis" (columns: v)',
    "pipelines/bad.toml: report.template: templates/bad.md.j2:1: pipeline.titel: no pipeline "
    'value named "titel"; did you mean "title"? (pipeline has: description, name, title)',
    'pipelines/bad.toml: report.template: templates/bad.md.j2:2: data.kpi: no query named "kpi"; '
    'did you mean "kpis"? (queries: broken, kpis, missing, syntax, unknown_param)',
    'pipelines/bad.toml: report.template: templates/bad.md.j2:3: data.kpis.vv: no column "vv" in '
    'the result of query "kpis"; did you mean "v"? (columns: v)',
    "pipelines/bad.toml: report.template: templates/bad.md.j2:4: charts.trnd: no chart named "
    '"trnd"; did you mean "trend"? (charts: trend)',
    'pipelines/bad.toml: report.template: templates/bad.md.j2:5: unknown variable "foo" (a report '
    "template sees: pipeline, run, params, data, charts, metrics, insights, sql, format)",
    "pipelines/bad.toml: report.template: templates/bad.md.j2:6: run.dat: no run value named "
    '"dat"; did you mean "date"? (run has: attempt, date, id, period, period_end, period_start, '
    "prev_period_end, prev_period_start, scheduled_at, time, timezone)",
    "pipelines/bad.toml: report.template: templates/bad.md.j2:6: params.region: no parameter "
    'named "region" (parameters: none)',
]


@pytest.fixture
def bad(sales):
    sales.write("templates/bad.md.j2", BAD_TEMPLATE)
    sales.pipeline("bad", BAD)
    return sales


def test_every_problem_is_listed_with_its_key(bad, capsys):
    assert main(["validate", "--deep"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(BINDER)
    assert lines[1:-2] == BAD_LINES
    assert lines[-2:] == ["", f"{len(BAD_LINES) + 1} problems in 1 file."]


def test_json_lists_each_problem_for_ci_annotations(bad, capsys):
    assert main(["validate", "--deep", "--format", "json"]) == 2
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(BAD_LINES) + 1
    assert rows[4] == {
        "file": "pipelines/bad.toml",
        "key": "metrics[0].column",
        "message": 'no column "vv" in the result of query "kpis"; did you mean "v"? (columns: v)',
    }
    assert [f"{r['file']}: {r['key']}: {r['message']}" for r in rows[1:]] == BAD_LINES


def test_json_is_an_empty_list_when_all_is_valid(sales, capsys):
    assert main(["validate", "--deep", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_json_without_deep_reports_plain_problems(sales, capsys):
    sales.pipeline("typo", 'titel = "x"\n[queries.q]\nsql = "SELECT 1"\n')
    assert main(["validate", "--format", "json"]) == 2
    assert json.loads(capsys.readouterr().out) == [
        {"file": "pipelines/typo.toml", "key": "title", "message": "required key is missing"},
        {
            "file": "pipelines/typo.toml",
            "key": "titel",
            "message": 'unknown key "titel"; did you mean "title"?',
        },
    ]


def test_json_for_a_path_that_does_not_exist(sales, capsys):
    assert main(["validate", "nope", "--format", "json"]) == 2
    assert json.loads(capsys.readouterr().out) == [
        {"file": "nope", "key": "", "message": "nope: no such file or folder"}
    ]


def test_a_plainly_invalid_file_does_not_stop_the_deep_check_of_the_others(bad, capsys):
    bad.pipeline("typo", 'titel = "x"\n[queries.q]\nsql = "SELECT 1"\n')
    assert main(["validate", "--deep", "--format", "json"]) == 2
    files = [row["file"] for row in json.loads(capsys.readouterr().out)]
    assert files.count("pipelines/typo.toml") == 2
    assert files.count("pipelines/bad.toml") == len(BAD_LINES) + 1


def test_the_deep_check_reads_no_rows(sales, capsys):
    # error() fails the query as soon as a row is computed: preparing it must not.
    sales.pipeline(
        "lazy",
        'title = "Lazy"\n[queries.q]\n'
        "sql = \"SELECT d, CASE WHEN v > 0 THEN error('a row was read') END AS x FROM 'data/s.csv'\"\n",
    )
    assert main(["validate", "--deep", "pipelines/lazy.toml"]) == 0


def test_subject_templates_are_checked(sales, capsys):
    sales.pipeline(
        "mailed",
        'title = "Mailed"\n[queries.q]\nsql = "SELECT 1 AS x"\n'
        '[[deliver]]\nto = "ceo@example.com"\nsubject = "{{ pipeline.titl }} {{ data.q }}"\n',
    )
    assert main(["validate", "--deep", "pipelines/mailed.toml"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        "pipelines/mailed.toml: deliver[0].subject: pipeline.titl: no pipeline value named "
        '"titl"; did you mean "title"? (pipeline has: description, name, title)'
    )


def test_a_sqlite_source_is_prepared_too(sales, capsys):
    db = sales.root / "data" / "shop.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE orders (day TEXT, revenue REAL)")
    conn.close()
    sales.pipeline(
        "lite",
        'title = "Lite"\n[source]\nkind = "sqlite"\npath = "data/shop.sqlite"\n'
        '[queries.q]\nsql = "SELECT day, sum(revenu) AS revenue FROM orders WHERE day >= date($period_start)"\n',
    )
    assert main(["validate", "--deep", "pipelines/lite.toml"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        "pipelines/lite.toml: queries.q: no such column: revenu"
    )


def test_a_missing_database_is_reported_at_source_path(sales, capsys):
    sales.pipeline(
        "nodb",
        'title = "No DB"\n[source]\npath = "data/none.duckdb"\n[queries.q]\nsql = "SELECT 1"\n',
    )
    assert main(["validate", "--deep", "pipelines/nodb.toml"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith(
        "pipelines/nodb.toml: source.path: DuckDB database not found: "
    )


def test_plain_validate_imports_no_heavy_library_and_deep_does(sales):
    probe = (
        "import sys; from eil_pipelines.cli import main; code = main(sys.argv[1:]); "
        "print(code, sorted(m for m in ('duckdb', 'pandas', 'matplotlib') if m in sys.modules))"
    )
    plain = subprocess.run(
        [sys.executable, "-c", probe, "validate"], cwd=sales.root, capture_output=True, text=True
    )
    assert plain.stdout.splitlines()[-1] == "0 []"
    deep = subprocess.run(
        [sys.executable, "-c", probe, "validate", "--deep"],
        cwd=sales.root,
        capture_output=True,
        text=True,
    )
    assert deep.stdout.splitlines()[-1].startswith("0 ['duckdb'")


def test_deep_as_a_subprocess_exits_2(bad):
    result = eil("validate", "--deep", "pipelines/bad.toml", cwd=bad.root)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(BINDER)


def test_the_pre_commit_hook_runs_validate_on_pipeline_files():
    text = (Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml").read_text()
    hook = text.split("- id: eil-validate\n", 1)[1].split("\n- id:", 1)[0]
    fields = dict(line.strip().split(": ", 1) for line in hook.splitlines() if ": " in line)
    assert fields["entry"] == "eil-run validate"
    assert fields["language"] == "python"
    assert fields["files"] == r"^pipelines/.*\.toml$"
    assert fields["pass_filenames"] == "false"
