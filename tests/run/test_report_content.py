"""What the built-in report holds (issue 16): the data section under the author's
control (``report.data``, ``show``, ``[queries.x.columns]``), and ``--param``
values for one run, recorded in the manifest.  Real runs on a real DuckDB."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.errors import ConfigError
from eil_pipelines.run import make_context, run_pipeline
from eil_pipelines.spec import load_pipeline
from eil_pipelines.spec.overrides import parse_param_options, with_params, with_params_each

AT = datetime(2026, 11, 28, 7, 0, tzinfo=ZoneInfo("UTC"))
ROWS = "region,revenue,change_pct,customer_key\n" + "".join(
    f"R{i:02d},{1000 + i * 250.5},{(i - 10) / 100},{123300 + i}\n" for i in range(30)
)

PIPELINE = """
title = "Regions"
[params]
top_n = 3
label = "x"
since = 2026-01-01
strict = false
[schedule]
cron = "0 7 * * *"
timezone = "UTC"
[queries.kpis]
sql = "SELECT sum(revenue) AS revenue, sum(revenue) / 2 AS prev FROM 'data/r.csv'"
[queries.regions]
sql = "SELECT * FROM 'data/r.csv' ORDER BY revenue DESC LIMIT $top_n"
[queries.detail]
sql = "SELECT * FROM 'data/r.csv' ORDER BY region"
{detail}
[[metrics]]
label = "Revenue"
query = "kpis"
column = "revenue"
compare = "prev"
format = "currency"
[[charts]]
name = "by_region"
query = "regions"
type = "bar"
x = "region"
y = "revenue"
[report]
formats = ["md"]
exports = ["csv"]
{report}
"""


def make(project, *, detail: str = "", report: str = ""):
    project.write("data/r.csv", ROWS)
    path = project.pipeline("regions", PIPELINE.format(detail=detail, report=report))
    return load_pipeline(path, root=project.root)


def markdown(project, pipeline) -> str:
    result = run_pipeline(pipeline, make_context(pipeline, AT), project.reports)
    assert result.ok, result.error
    return (project.reports / "regions" / "2026-11-28.md").read_text()


def data_section(text: str) -> str:
    return text.partition("## Data")[2].partition("<details>")[0]


def test_summary_shows_only_what_no_chart_or_metric_shows_with_a_link(project):
    text = markdown(project, make(project))
    section = data_section(text)
    assert "### Detail" in section
    assert "### Regions" not in section and "### Kpis" not in section  # chart, metric
    assert "Showing 10 of 30 rows. [Full data (CSV)](<2026-11-28_data/detail.csv>)" in section
    # Columns by name: an ID without separators, a change with its sign, money.
    assert "| R00 | $1,000.00 | −10.0% | 123300 |" in section


def test_columns_labels_and_formats_and_show_false(project):
    columns = """[queries.detail.columns]
change_pct = { label = "Change", format = "percent", decimals = 0 }
revenue = { label = "Revenue", format = "compact_currency" }
"""
    section = data_section(markdown(project, make(project, detail=columns)))
    assert "| region | Revenue | Change | customer_key |" in section
    assert "| R00 | $1K | -10% | 123300 |" in section
    hidden = data_section(markdown(project, make(project, detail="show = false")))
    assert hidden == ""


@pytest.mark.parametrize(
    ("mode", "headings"),
    [("none", []), ("full", ["Kpis", "Regions", "Detail"]), ("summary", ["Detail"])],
)
def test_report_data_modes(project, mode, headings, tmp_path):
    text = markdown(project, make(project, report=f'data = "{mode}"\nmax_rows = 12'))
    found = [line[4:] for line in data_section(text).splitlines() if line.startswith("### ")]
    assert found == headings
    if mode == "full":
        assert "Showing 12 of 30 rows." in data_section(text)


def test_param_override_is_typed_bound_and_recorded(project):
    pipeline = with_params(make(project), parse_param_options(["top_n=5", "strict=yes"]))
    assert pipeline.spec.params["top_n"] == 5 and pipeline.spec.params["strict"] is True
    result = run_pipeline(pipeline, make_context(pipeline, AT), project.reports)
    assert result.ok, result.error
    assert result.row_counts["regions"] == 5
    manifest = json.loads(result.manifest.read_text())
    assert manifest["params"] == {"top_n": 5, "label": "x", "since": "2026-01-01", "strict": True}
    assert manifest["params_overridden"] == ["strict", "top_n"]


def test_param_override_errors_name_the_file_key_and_type(project):
    pipeline = make(project)
    with pytest.raises(ConfigError) as info:
        with_params(pipeline, {"top_n": "five", "since": "soon", "nope": "1", "strict": "maybe"})
    lines = str(info.value).splitlines()
    assert all(line.startswith(str(pipeline.display_path) + ": params.") for line in lines)
    assert (
        'params.top_n: --param top_n="five": expected a whole number (like the file\'s 3)'
        in str(info.value)
    )
    assert (
        'params.since: --param since="soon": expected a date YYYY-MM-DD (like the file\'s 2026-01-01)'
        in str(info.value)
    )
    assert (
        "params.nope: --param: the file declares no such parameter (parameters: label, since, strict, top_n)"
        in str(info.value)
    )
    assert "expected true or false (like the file's false)" in str(info.value)
    assert with_params(pipeline, {"since": "2026-03-01"}).spec.params["since"] == date(2026, 3, 1)
    with pytest.raises(ValueError, match='expected name=value, such as top_n=5, got "top_n"'):
        parse_param_options(["top_n"])
    with pytest.raises(ValueError, match='no pipeline run here declares "typo"'):
        with_params_each([pipeline], {"typo": "1"})
