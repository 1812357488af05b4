"""``eil-run`` as a user runs it: a subprocess on a temporary project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clirun import eil

REPO = Path(__file__).resolve().parents[2]


GOOD = """
title = "Sales"
description = "How much did we sell?"
[schedule]
cron = "0 7 * * *"
timezone = "Europe/Berlin"
period = "day"
[queries.kpis]
sql = "SELECT sum(v) FILTER (WHERE d >= $period_start AND d < $period_end) AS v, sum(v) FILTER (WHERE d >= $prev_period_start AND d < $prev_period_end) AS p FROM 'data/s.csv'"
[queries.daily]
sql = "SELECT d, v FROM 'data/s.csv' ORDER BY d"
[[metrics]]
label = "Sales"
query = "kpis"
column = "v"
compare = "p"
format = "currency"
[[charts]]
name = "trend"
query = "daily"
x = "d"
y = "v"
"""

BROKEN_SQL = """
title = "Broken"
[queries.kpis]
sql = "SELECT nope FROM 'data/s.csv'"
"""


@pytest.fixture
def sales_project(project):
    project.write("data/s.csv", "d,v\n2026-11-25,10\n2026-11-26,12\n2026-11-27,15\n")
    project.pipeline("sales", GOOD)
    return project


def test_once_writes_dated_reports_from_any_working_folder(sales_project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = eil("--once", str(sales_project.pipelines), "--at", "2026-11-28T07:00", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    folder = sales_project.root / "reports" / "sales"
    assert sorted(p.name for p in folder.iterdir()) == [
        "2026-11-28.html",
        "2026-11-28.json",
        "2026-11-28.md",
        "2026-11-28_charts",
        "index.html",
        "latest.html",
        "latest.md",
    ]
    md = (folder / "2026-11-28.md").read_text()
    assert "# Sales" in md
    assert "$15.00" in md  # yesterday (27th) in Berlin
    assert "![" in md and "(2026-11-28_charts/trend.png)" in md
    assert (folder / "2026-11-28_charts" / "trend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (folder / "2026-11-28.html").read_text()
    assert "<svg" in html and "<style" in html
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["pipeline", "status", "duration", "files", "written"]
    assert lines[1].split()[:2] == ["sales", "succeeded"]
    assert "1 succeeded, 0 failed." in result.stdout


def test_chart_processes_write_the_same_reports_as_the_runs_threads(sales_project):
    root = sales_project.root
    at = ("--at", "2026-11-28T07:00")
    assert eil("--once", "pipelines", *at, "--reports", "inline", cwd=root).returncode == 0
    result = eil(
        "--once", "pipelines", *at, "--chart-processes", "2", "--reports", "procs", cwd=root
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for name in ("2026-11-28.md", "2026-11-28.html", "2026-11-28_charts/trend.png"):
        made = (root / "procs/sales" / name).read_bytes()
        assert made == (root / "inline/sales" / name).read_bytes(), name


def test_one_failing_pipeline_does_not_stop_the_others(sales_project):
    sales_project.pipeline("broken", BROKEN_SQL)
    result = eil("--once", "pipelines", cwd=sales_project.root)
    assert result.returncode == 1
    assert (sales_project.root / "reports/sales/latest.md").exists()
    assert not (sales_project.root / "reports/broken").exists()
    assert (
        'broken failed: pipeline "broken", query "kpis": Binder Error: Referenced column "nope" not found'
        in result.stdout
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_failed_rerun_keeps_the_earlier_report(sales_project):
    assert eil("--once", "pipelines", "--at", "2026-11-28", cwd=sales_project.root).returncode == 0
    report = sales_project.root / "reports/sales/2026-11-28.md"
    before = report.read_bytes()
    (sales_project.root / "data/s.csv").write_text(
        "d,x\n2026-11-27,1\n"
    )  # the column the SQL needs is gone
    result = eil("--once", "pipelines", "--at", "2026-11-28", cwd=sales_project.root)
    assert result.returncode == 1
    assert report.read_bytes() == before


def test_invalid_configuration_exits_2_with_every_problem(sales_project):
    """A bad file never stops the good ones: the valid pipeline runs, then every
    problem of the invalid file is printed, and the exit status is 2."""
    sales_project.pipeline(
        "bad", 'titel = "x"\n[queries.q]\nsql = "SELECT 1"\n[schedule]\ncron = "0 25 * * *"\n'
    )
    result = eil("--once", "pipelines", cwd=sales_project.root)
    assert result.returncode == 2
    assert "pipelines/bad.toml: title: required key is missing" in result.stderr
    assert 'pipelines/bad.toml: titel: unknown key "titel"; did you mean "title"?' in result.stderr
    assert (
        'pipelines/bad.toml: schedule.cron: invalid cron expression "0 25 * * *"' in result.stderr
    )
    assert result.stderr.rstrip().endswith("3 problems in 1 file.")
    assert "Traceback" not in result.stderr
    assert (sales_project.root / "reports/sales/latest.md").exists()
    assert not (sales_project.root / "reports/bad").exists()


def test_once_with_only_invalid_files_runs_nothing(sales_project):
    (sales_project.pipelines / "sales.toml").unlink()
    sales_project.pipeline("bad", "title = 3\n")
    result = eil("--once", "pipelines", cwd=sales_project.root)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "pipelines/bad.toml: title: expected a string, got integer 3",
        "pipelines/bad.toml: queries: required key is missing",
        "",
        "2 problems in 1 file.",
    ]
    assert not (sales_project.root / "reports").exists()


def test_once_exit_2_wins_over_a_failed_run_which_still_shows(sales_project):
    sales_project.pipeline("broken", BROKEN_SQL)
    sales_project.pipeline(
        "bad", 'title = "Bad"\n[schedule]\nevery = "1ms"\n[queries.q]\nsql = "SELECT 1"\n'
    )
    result = eil("--once", "pipelines", cwd=sales_project.root)
    assert result.returncode == 2, result.stderr
    assert 'broken failed: pipeline "broken", query "kpis"' in result.stdout
    assert result.stderr.splitlines()[-3:] == [
        'pipelines/bad.toml: schedule.every: invalid duration "1ms": must be at least 1s',
        "",
        "1 problem in 1 file.",
    ]
    assert (sales_project.root / "reports/sales/latest.md").exists()
    assert "internal error" not in result.stderr


def test_only_a_valid_pipeline_ignores_other_files_problems(sales_project):
    sales_project.pipeline("bad", "title = 3\n")
    result = eil("--once", "pipelines", "--only", "sales", cwd=sales_project.root)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "note: 1 other pipeline file has problems (eil-run validate shows them)"
    ]
    assert (sales_project.root / "reports/sales/latest.md").exists()
    sales_project.pipeline("worse", "title = 4\n")
    two = eil("--once", "pipelines", "--only", "sales", cwd=sales_project.root)
    assert two.returncode == 0
    assert two.stderr.splitlines() == [
        "note: 2 other pipeline files have problems (eil-run validate shows them)"
    ]
    # Naming the invalid pipeline (or any name not among the valid ones) shows the problems.
    named = eil("--once", "pipelines", "--only", "bad", cwd=sales_project.root)
    assert named.returncode == 2
    assert "pipelines/bad.toml: title: expected a string, got integer 3" in named.stderr
    assert "4 problems in 2 files." in named.stderr


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0001-01-01T00:00", "0001-01-01T00:00"),
        ("9999-12-31", "9999-12-31"),
        ("1899-12-31T23:59", "1899-12-31T23:59"),
        ("9000-12-31T23:00-05:00", "9000-12-31T23:00-05:00"),
    ],
)
def test_at_out_of_range_is_a_usage_error(sales_project, value, shown):
    result = eil("--once", "pipelines", "--at", value, cwd=sales_project.root)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f'eil-run: --at: "{shown}" is out of range: the year must be 1900 to 9000'
    )
    assert not (sales_project.root / "reports").exists()


def test_list_shows_an_invalid_file_as_a_row_with_its_problem(sales_project):
    sales_project.pipeline(
        "bad", 'title = "Bad"\n[schedule]\nevery = "3000000d"\n[queries.q]\nsql = "SELECT 1"\n'
    )
    result = eil("list", "pipelines", cwd=sales_project.root)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "bad (invalid): pipelines/bad.toml",
        '  problem:  schedule.every: invalid duration "3000000d": must be at most 366d',
    ]
    assert "sales: Sales" in lines
    as_json = eil("list", "pipelines", "--format", "json", cwd=sales_project.root)
    assert as_json.returncode == 2
    import json

    rows = {row["pipeline"]: row for row in json.loads(as_json.stdout)}
    assert rows["bad"]["problems"] == [
        'schedule.every: invalid duration "3000000d": must be at most 366d'
    ]
    assert (rows["bad"]["schedule"], rows["bad"]["next"]) == ("invalid", [])
    assert rows["sales"]["problems"] == [] and len(rows["sales"]["next"]) == 3


def test_validate_ok_and_bad(sales_project):
    ok = eil("validate", "pipelines", cwd=sales_project.root)
    assert ok.returncode == 0
    assert ok.stdout.splitlines() == ["ok  pipelines/sales.toml", "", "1 pipeline valid."]
    sales_project.pipeline("bad", "title = 3\n")
    bad = eil("validate", "pipelines", cwd=sales_project.root)
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[:2] == [
        "pipelines/bad.toml: title: expected a string, got integer 3",
        "pipelines/bad.toml: queries: required key is missing",
    ]


def test_only_and_unknown_only(sales_project):
    sales_project.pipeline("other", 'title = "Other"\n[queries.q]\nsql = "SELECT 1 AS x"\n')
    result = eil("--once", "pipelines", "--only", "other", cwd=sales_project.root)
    assert result.returncode == 0
    assert (sales_project.root / "reports/other/latest.md").exists()
    assert not (sales_project.root / "reports/sales").exists()
    unknown = eil("--once", "pipelines", "--only", "nope", cwd=sales_project.root)
    assert unknown.returncode == 2
    assert (
        unknown.stderr.strip()
        == "eil-run: --only: no pipeline named nope (pipelines: other, sales)"
    )


def test_disabled_pipeline_is_skipped_unless_named(sales_project):
    sales_project.pipeline(
        "off", 'title = "Off"\nenabled = false\n[queries.q]\nsql = "SELECT 1 AS x"\n'
    )
    eil("--once", "pipelines", cwd=sales_project.root)
    assert not (sales_project.root / "reports/off").exists()
    assert eil("--once", "pipelines", "--only", "off", cwd=sales_project.root).returncode == 0
    assert (sales_project.root / "reports/off/latest.md").exists()


def test_bad_at_and_bad_path(sales_project):
    bad_at = eil("--once", "pipelines", "--at", "yesterday", cwd=sales_project.root)
    assert bad_at.returncode == 2
    assert bad_at.stderr.strip() == (
        'eil-run: --at: invalid date-time "yesterday": expected ISO 8601 such as 2026-11-27T07:00 or 2026-11-27'
    )
    missing = eil("--once", "nowhere", cwd=sales_project.root)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "eil-run: nowhere: no such file or folder"


def test_single_file_path_and_reports_option(sales_project, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    result = eil(
        "--once",
        "pipelines/sales.toml",
        "--reports",
        str(out),
        "--at",
        "2026-11-28",
        cwd=sales_project.root,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "sales" / "2026-11-28.md").exists()


def test_help_and_validate_do_not_import_heavy_libraries(sales_project):
    probe = (
        "import sys\n"
        "from eil_pipelines.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "heavy = sorted(m for m in ('pandas', 'matplotlib', 'duckdb', 'numpy') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    for args in (["--help"], ["validate", "pipelines"]):
        result = subprocess.run(
            [sys.executable, "-c", probe, *args],
            cwd=sales_project.root,
            capture_output=True,
            text=True,
        )
        assert "HEAVY []" in result.stdout, (args, result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--once", "pipelines", "--workers", "0"], "eil-run: --workers must be at least 1"),
        (["pipelines", "--workers", "0"], "eil-run: --workers must be at least 1"),
        (["pipelines", "--grace", "-1"], "eil-run: --grace must be 0 or more seconds"),
        (
            ["--once", "pipelines", "--chart-processes", "-1"],
            "eil-run: --chart-processes must be 0 or more",
        ),
        (["pipelines", "--chart-processes", "-2"], "eil-run: --chart-processes must be 0 or more"),
        (
            ["--once", "pipelines", "--workers", "two"],
            "eil-run: argument --workers: invalid int value: 'two'",
        ),
    ],
)
def test_bad_numeric_options(sales_project, args, message):
    result = eil(*args, cwd=sales_project.root)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == message
    assert not (sales_project.root / "reports").exists()


PARAMS = """
title = "Top"
[params]
min_v = 11
[queries.big]
sql = "SELECT d, v FROM 'data/s.csv' WHERE v >= $min_v ORDER BY d"
"""


def test_param_overrides_a_value_for_one_run_and_the_manifest_says_so(sales_project):
    import json

    sales_project.pipeline("top", PARAMS)
    at = ("--at", "2026-11-28T07:00")
    result = eil("--once", "--only", "top", "--param", "min_v=12", *at, cwd=sales_project.root)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((sales_project.reports / "top" / "2026-11-28.json").read_text())
    assert manifest["queries"]["big"]["rows"] == 2
    assert (manifest["params"], manifest["params_overridden"]) == ({"min_v": 12}, ["min_v"])

    bad = eil("--once", "--only", "top", "--param", "min_v=lots", *at, cwd=sales_project.root)
    assert bad.returncode == 2
    assert (
        'pipelines/top.toml: params.min_v: --param min_v="lots": expected a whole number '
        "(like the file's 11)"
    ) in bad.stderr
    assert "Traceback" not in bad.stderr
    typo = eil("--once", "--param", "min=1", *at, cwd=sales_project.root)
    assert typo.returncode == 2
    assert 'eil-run: --param: no pipeline run here declares "min" in [params]' in typo.stderr
    backfill = eil(
        "backfill", "pipelines/top.toml", "--from", "2026-11-01", "--to", "2026-11-02",
        "--param", "min_v=x", cwd=sales_project.root,
    )  # fmt: skip
    assert backfill.returncode == 2, backfill.stderr
    assert 'params.min_v: --param min_v="x": expected a whole number' in backfill.stderr
