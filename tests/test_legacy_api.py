"""The previous version's report API still works from the package root."""

from __future__ import annotations

from datetime import datetime
from html.parser import HTMLParser

import pandas as pd

import eil_pipelines


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_build_executive_report_with_chart(tmp_path):
    df = pd.DataFrame(
        {"day": pd.date_range("2026-11-01", periods=5), "revenue": [10.0, 12, 9, 14, 15]}
    )
    chart = eil_pipelines.chart_sales_trend(df, "day", "revenue", reports_dir=tmp_path)
    assert chart == tmp_path / "charts" / "revenue_day.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    paths = eil_pipelines.build_executive_report(
        "Sales <Trend>",
        "Are sales growing?",
        "SELECT day, revenue FROM sales",
        df,
        ["Revenue grew 50% over the month.", "The best day was the 5th."],
        charts=[chart],
        reports_dir=tmp_path,
        now=datetime(2026, 11, 28, 9, 30, 5),
    )
    assert [p.name for p in paths] == [
        "sales-trend_20261128_093005.md",
        "sales-trend_20261128_093005.html",
    ]
    md = paths[0].read_text()
    assert md.startswith("# Sales &lt;Trend>\n")  # a value is text in Markdown: "<" escaped
    assert "Are sales growing?" in md
    assert "SELECT day, revenue FROM sales" in md
    assert "- Revenue grew 50% over the month." in md
    assert "](charts/revenue_day.png)" in md
    assert "| 2026-11-05 | $15 |" in md  # a revenue column reads as money
    html = paths[1].read_text()
    assert "Sales &lt;Trend&gt;" in html and "<Trend>" not in html
    assert "data:image/png;base64," in html
    parser = Tags()
    parser.feed(html)
    assert {"table", "svg", "details", "h1"} <= set(parser.tags)


def test_insights_as_text_and_no_charts(tmp_path):
    paths = eil_pipelines.build_executive_report(
        "Plain",
        "Q?",
        "SELECT 1",
        pd.DataFrame({"a": [1]}),
        "- first\n- second\n",
        reports_dir=tmp_path,
    )
    md = paths[0].read_text()
    assert "- first" in md and "- second" in md
    assert "![" not in md


def test_chart_sales_trend_positional_title(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    df = pd.DataFrame({"month": [1, 2, 3], "sales": [3.0, 4.0, 5.0]})
    path = eil_pipelines.chart_sales_trend(df, "month", "sales", "Monthly Sales")
    assert (
        path == tmp_path / "reports" / "charts" / "monthly-sales_month.png"
        or path.resolve() == (tmp_path / "reports/charts/monthly-sales_month.png")
    )
