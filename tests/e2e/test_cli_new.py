"""``eil-run new NAME``: a scaffold that is valid, runs at once, and never overwrites."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from clirun import eil as run_eil

from eil_pipelines.app.new import scaffold_spec, scaffold_toml
from eil_pipelines.cli import main
from eil_pipelines.spec.models import PipelineSpec

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "orders.parquet"


def eil(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``eil-run`` in Berlin time, so the scaffold's dates are predictable."""
    return run_eil(*args, cwd=cwd, env={"TZ": "Europe/Berlin"})


def with_sample_data(root: Path) -> None:
    (root / "data").mkdir(exist_ok=True)
    # A hard link or a copy: queries read files only inside the project, and a
    # symbolic link out of it is refused.
    try:
        os.link(SAMPLE, root / "data" / "orders.parquet")
    except OSError:  # another file system
        shutil.copy(SAMPLE, root / "data" / "orders.parquet")


def test_the_scaffold_runs_at_once_on_the_sample_data(project):
    with_sample_data(project.root)
    made = eil("new", "sales_brief", cwd=project.root)
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[:4] == [
        "Created pipelines/sales_brief.toml and templates/sales_brief.md.j2.",
        "",
        "Next steps:",
        "  1. Edit the queries in pipelines/sales_brief.toml (they read the sample data, "
        "data/orders.parquet)",
    ]
    assert "eil-run validate --deep pipelines/sales_brief.toml" in made.stdout
    assert "eil-run --once --only sales_brief pipelines" in made.stdout
    assert "eil-run explain pipelines/sales_brief.toml" in made.stdout

    text = (project.pipelines / "sales_brief.toml").read_text()
    raw = tomllib.loads(text)
    assert raw["schedule"] == {"daily": "07:00", "timezone": "Europe/Berlin", "period": "day"}
    assert "FROM 'data/orders.parquet'" in raw["queries"]["kpis"]["sql"]
    assert raw["report"] == {"template": "templates/sales_brief.md.j2"}
    assert "# When it runs." in text  # the guiding comments survive

    checked = eil("validate", "--deep", "pipelines/sales_brief.toml", cwd=project.root)
    assert checked.returncode == 0, checked.stderr

    ran = eil(
        "--once", "--only", "sales_brief", "pipelines", "--at", "2026-11-27T07:00", cwd=project.root
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = (project.root / "reports/sales_brief/2026-11-27.md").read_text()
    assert report.startswith("# Sales Brief\n")
    assert "*26 Nov 2026*" in report  # period = "day": the run at 07:00 covers yesterday
    assert "- **Revenue:** $" in report and "- **Orders:** " in report
    assert "(2026-11-27_charts/revenue_trend.png)" in report
    assert (project.root / "reports/sales_brief/2026-11-27.html").exists()


def test_without_sample_data_the_scaffold_runs_on_placeholder_numbers(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    assert main(["new", "brief"]) == 0
    assert "(they hold placeholder numbers)" in capsys.readouterr().out
    ran = eil(
        "--once", "--only", "brief", "pipelines", "--at", "2026-11-27T07:00", cwd=project.root
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = (project.root / "reports/brief/2026-11-27.md").read_text()
    assert "- **Revenue:** $1,250.00 (▲ +13.6% vs $1,100.00)" in report


def test_new_refuses_to_overwrite(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    project.pipeline("sales", "title = 'Mine'\n[queries.q]\nsql = 'SELECT 1 AS x'\n")
    assert main(["new", "sales"]) == 2
    assert capsys.readouterr().err == (
        "eil-run new: pipelines/sales.toml already exists; pick another name, or edit that file\n"
    )
    assert (project.pipelines / "sales.toml").read_text().startswith("title = 'Mine'")
    assert not (project.root / "templates").exists()


def test_new_refuses_to_overwrite_a_template_either(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    project.write("templates/sales.md.j2", "# mine\n")
    assert main(["new", "sales"]) == 2
    assert capsys.readouterr().err == (
        "eil-run new: templates/sales.md.j2 already exists; pick another name, or edit that file\n"
    )
    assert not (project.pipelines / "sales.toml").exists()


def test_new_refuses_a_name_another_file_claims(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    project.pipeline("old", "name = 'sales'\ntitle = 'x'\n[queries.q]\nsql = 'SELECT 1'\n")
    assert main(["new", "sales"]) == 2
    assert capsys.readouterr().err == (
        'eil-run new: the pipeline name "sales" is already used by pipelines/old.toml '
        "(its name key); pick another name\n"
    )


@pytest.mark.parametrize("name", ["Sales", "daily sales", "_x", "sales.toml", "é"])
def test_new_rejects_an_invalid_name(name, project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    assert main(["new", name]) == 2
    assert capsys.readouterr().err == (
        f'eil-run new: invalid name "{name}": use lowercase letters, digits, "_" and "-", '
        "starting with a letter or digit (such as daily_sales)\n"
    )
    assert list(project.pipelines.iterdir()) == []


def test_new_rejects_an_invalid_cron(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    assert main(["new", "sales", "--cron", "61 * * * *"]) == 2
    assert capsys.readouterr().err == (
        'eil-run new: --cron: invalid cron expression "61 * * * *": minute 61 is out of range 0-59\n'
    )
    assert list(project.pipelines.iterdir()) == []


def test_new_rejects_a_missing_query_file(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    assert main(["new", "sales", "--query-file", "sql/nope.sql"]) == 2
    assert capsys.readouterr().err == "eil-run new: --query-file: no such file: sql/nope.sql\n"


def test_cron_and_query_file(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    project.write("sql/weekly.sql", "SELECT 42 AS answer, $period_start AS since\n")
    assert main(["new", "weekly", "--cron", "0 8 * * MON", "--query-file", "sql/weekly.sql"]) == 0
    assert "  1. Edit the SQL in sql/weekly.sql" in capsys.readouterr().out
    raw = tomllib.loads((project.pipelines / "weekly.toml").read_text())
    assert raw["schedule"]["cron"] == "0 8 * * MON"
    assert raw["schedule"]["period"] == "week"  # a weekly schedule reports on the week
    assert raw["queries"] == {"main": {"file": "sql/weekly.sql"}}
    assert "metrics" not in raw and "charts" not in raw
    template = (project.root / "templates/weekly.md.j2").read_text()
    assert "{{ data.main | table(max_rows=10) }}" in template
    assert main(["validate", "--deep", "pipelines/weekly.toml"]) == 0


def test_the_schema_directive_is_written_when_the_schema_is_beside(project, monkeypatch):
    monkeypatch.chdir(project.root)
    assert main(["schema", "--output", "pipelines/pipeline.schema.json"]) == 0
    assert main(["new", "sales"]) == 0
    first = (project.pipelines / "sales.toml").read_text().splitlines()[0]
    assert first == "#:schema ./pipeline.schema.json"


@pytest.mark.parametrize(
    ("cron", "period"),
    [(None, "day"), ("*/15 * * * *", "interval"), ("0 7 * * *", "day"), ("0 6 1 * *", "month")],
)
def test_the_toml_reads_back_as_the_same_spec(cron, period):
    spec = scaffold_spec("x", cron=cron, timezone="America/New_York", template="templates/x.md.j2")
    again = PipelineSpec.model_validate(tomllib.loads(scaffold_toml(spec, "x")))
    assert again == spec
    assert again.schedule.period == period
