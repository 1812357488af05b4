"""Issue 14, item 6: pyarrow and openpyxl are extras, and a pipeline asking for their
export formats without them fails ``validate`` (and its run) naming the extra."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from deploykit import REPO, run, tool_env

from eil_pipelines.outputs import exports

SALES = """
title = "Sales"
[queries.kpis]
sql = "SELECT 15 AS v"
[[metrics]]
label = "Sales"
query = "kpis"
column = "v"
[report]
exports = {exports}
"""

PARQUET_HINT = (
    "the \"parquet\" export needs pyarrow: pip install 'eil-pipelines[parquet]' "
    "(or [exports] for every export format)"
)
XLSX_HINT = (
    "the \"xlsx\" export needs openpyxl: pip install 'eil-pipelines[xlsx]' "
    "(or [exports] for every export format)"
)


def test_the_core_install_has_neither_library_and_the_extras_do():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = " ".join(project["dependencies"])
    assert "pyarrow" not in core and "openpyxl" not in core
    extras = project["optional-dependencies"]
    assert extras["parquet"] == ["pyarrow>=15"]
    assert extras["xlsx"] == ["openpyxl>=3.1"]
    assert sorted(extras["exports"]) == ["openpyxl>=3.1", "pyarrow>=15"]
    # The tests exercise every export format.
    assert {"pyarrow>=15", "openpyxl>=3.1"} <= set(extras["test"])


def without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment in which ``modules`` cannot be imported, as without their extra."""
    site = tmp_path / "site"
    site.mkdir()
    blocked = "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    (site / "sitecustomize.py").write_text(f"import sys\n{blocked}", encoding="utf-8")
    return tool_env(PYTHONPATH=str(site))


@pytest.mark.parametrize(
    ("fmt", "module", "hint"),
    [("parquet", "pyarrow", PARQUET_HINT), ("xlsx", "openpyxl", XLSX_HINT)],
)
def test_validate_and_the_run_name_the_missing_extra(project, tmp_path, fmt, module, hint):
    project.pipeline("sales", SALES.format(exports=f'["csv", "{fmt}"]'))
    env = without(tmp_path, module)

    result = run(["eil-run", "validate", "pipelines"], cwd=project.root, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"pipelines/sales.toml: report.exports: {hint}" in result.stderr
    assert "Traceback" not in result.stderr

    result = run(["eil-run", "--once", "pipelines"], cwd=project.root, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f'sales failed: pipeline "sales": {hint}' in result.stdout
    assert not (project.reports / "sales").exists()  # known before any query ran


def test_with_the_extras_installed_the_same_pipeline_is_valid_and_exports(project):
    project.pipeline("sales", SALES.format(exports='["csv", "parquet", "xlsx"]'))
    result = run(["eil-run", "validate", "pipelines"], cwd=project.root)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(["eil-run", "--once", "pipelines", "--at", "2026-11-27"], cwd=project.root)
    assert result.returncode == 0, result.stdout + result.stderr
    data = project.reports / "sales" / "2026-11-27_data"
    assert sorted(p.name for p in data.iterdir()) == ["kpis.csv", "kpis.parquet", "kpis.xlsx"]


def test_a_csv_export_needs_no_extra(project, tmp_path):
    project.pipeline("sales", SALES.format(exports='["csv"]'))
    env = without(tmp_path, "pyarrow", "openpyxl")
    result = run(
        ["eil-run", "--once", "pipelines", "--at", "2026-11-27"], cwd=project.root, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project.reports / "sales" / "2026-11-27_data" / "kpis.csv").read_text() == "v\n15\n"


def test_export_unavailable_reason_reads_the_installed_modules(monkeypatch):
    monkeypatch.setattr(exports, "_installed", lambda module: module != "pyarrow")
    assert exports.export_unavailable_reason("parquet") == PARQUET_HINT
    assert exports.export_unavailable_reason("xlsx") is None
    assert exports.export_unavailable_reason("csv") is None
