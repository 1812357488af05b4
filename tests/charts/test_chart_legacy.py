"""The previous version's ``chart_sales_trend`` keeps working."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from eil_pipelines.charts import chart_sales_trend
from eil_pipelines.errors import ChartError

DF = pd.DataFrame(
    {"date": pd.date_range("2026-11-01", periods=5, freq="D"), "sales": [5.0, 6, 7, 6, 8]}
)


def test_writes_a_png_named_after_y_and_x_and_returns_its_path(tmp_path):
    path = chart_sales_trend(DF, "date", "sales", reports_dir=tmp_path)
    assert path == tmp_path / "charts" / "sales_date.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path / "charts") == ["sales_date.png"]  # no temp file left behind


def test_title_names_the_file_and_positional_arguments_still_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = chart_sales_trend(DF, "date", "sales", "Sales Trend (EU)")
    assert path == __import__("pathlib").Path("reports/charts/sales-trend-eu_date.png")
    assert (tmp_path / path).is_file()


def test_rewriting_replaces_the_file(tmp_path):
    first = chart_sales_trend(DF, "date", "sales", reports_dir=tmp_path)
    first.write_bytes(b"old")
    second = chart_sales_trend(DF, "date", "sales", reports_dir=tmp_path)
    assert second == first
    assert second.read_bytes()[:4] == b"\x89PNG"


def test_errors_name_the_data_frame(tmp_path):
    with pytest.raises(ChartError) as info:
        chart_sales_trend(DF, "date", "revenue", reports_dir=tmp_path)
    assert info.value.detail == (
        'column "revenue" (y) is not in the data frame; available columns: date, sales'
    )
    assert not (tmp_path / "charts").exists()
