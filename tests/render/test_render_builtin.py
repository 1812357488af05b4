"""The built-in executive template, in both formats, and the HTML document."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from html.parser import HTMLParser

import pandas as pd
import pytest

from eil_pipelines.render import ChartAsset, load_template, render_report
from eil_pipelines.render.markdown import html_document, markdown_to_html, tidy_markdown

SVG = '<svg viewBox="0 0 10 10"><g id="figure_1"><rect width="10" height="10"/></g></svg>'


@dataclass
class Metric:
    label: str
    value: float
    previous: float | None
    change: float | None
    change_pct: float | None
    text: str
    previous_text: str
    change_text: str
    direction: str | None
    sentiment: str
    good: str = "up"
    format: str = "number"


def context(**changes) -> dict:
    weeks = pd.date_range("2026-11-02", periods=4, freq="W-MON")
    values = {
        "pipeline": {
            "title": "Weekly revenue",
            "description": "How did revenue move, and what drove it?",
        },
        "run": {
            "period_start": datetime(2026, 11, 1),
            "period_end": datetime(2026, 12, 1),
            "date": date(2026, 12, 1),
        },
        "params": {"region": "EMEA"},
        "sql": {
            "revenue": "SELECT week, sum(amount) AS revenue\nFROM orders\nWHERE ts < $period_end",
            "refunds": "SELECT * FROM refunds",
        },
        "data": {
            "revenue": pd.DataFrame({"week": weeks, "revenue": [110e3, 120e3, 118e3, 130e3]}),
            "refunds": pd.DataFrame({"order_id": pd.Series([], dtype="int64")}),
        },
        "charts": {
            "revenue": ChartAsset(
                "revenue", "Revenue by week", "Weekly revenue", "c/revenue.png", SVG
            ),
            "orders": ChartAsset("orders", "Orders by week", "Weekly orders", "c/orders.png", SVG),
        },
        "metrics": [
            Metric(
                "Revenue", 1.24e6, 1.1e6, 1.4e5, 0.124, "$1.24M", "$1.10M", "▲ +12.4%", "up", "good"
            ),
            Metric(
                "Churn", 0.031, 0.025, 0.006, 0.24, "3.1%", "2.5%", "▲ +24.0%", "up", "bad", "down"
            ),
            Metric("New customers", 310, None, None, None, "310", "–", "–", None, "neutral"),
        ],
        "insights": ["Revenue rose 12.4%, the best month this year.", "Churn is up <again>."],
    }
    values.update(changes)
    return values


class Outline(HTMLParser):
    """Tags, heading texts and class names of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.classes: Counter[str] = Counter()
        self.headings: list[tuple[str, str]] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self._heading: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        for key, value in attrs:
            self.attrs.append((tag, key, value))
            if key == "class" and value:
                self.classes.update(value.split())
        if re.fullmatch(r"h[1-6]|summary|title", tag):
            self._heading, self._text = tag, []

    def handle_endtag(self, tag):
        if tag == self._heading:
            self.headings.append((tag, "".join(self._text).strip()))
            self._heading = None

    def handle_data(self, data):
        if self._heading:
            self._text.append(data)


def outline(page: str) -> Outline:
    parser = Outline()
    parser.feed(page)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def builtin():
    return load_template(None)


def test_builtin_html_structure(builtin):
    page = render_report(builtin, context(), "html", max_rows=3)
    doc = outline(page)
    assert doc.headings == [
        ("title", "Weekly revenue"),
        ("h1", "Weekly revenue"),
        ("h2", "Key figures"),
        ("h2", "Key insights"),
        ("h2", "Charts"),
        ("h2", "Data"),
        ("h3", "revenue"),
        ("h3", "refunds"),
        ("summary", "SQL used"),
    ]
    assert doc.tags["figure"] == 2 and doc.tags["figcaption"] == 2 and doc.tags["svg"] == 2
    assert doc.tags["table"] == 1
    assert doc.tags["details"] == 1 and doc.tags["pre"] == 2
    assert doc.classes["kpi"] == 3
    assert doc.classes["delta"] == 2
    assert '<span class="delta up good">▲ +12.4%</span> vs $1.10M' in page
    assert '<span class="delta up bad">▲ +24.0%</span> vs 2.5%' in page
    assert '<p class="lead">How did revenue move, and what drove it?</p>' in page
    assert '<p class="meta">Period: 1–30 Nov 2026 · Prepared: 1 Dec 2026</p>' in page
    assert "<li>Churn is up &lt;again&gt;.</li>" in page
    assert '<p class="table-note">Showing 3 of 4 rows.</p>' in page
    assert "<p>No data for this period.</p>" in page
    assert "WHERE ts &lt; $period_end</code></pre>" in page


def test_builtin_markdown(builtin):
    text = render_report(builtin, context(), "md", max_rows=3)
    assert text.startswith(
        "# Weekly revenue\n\n"
        "How did revenue move, and what drove it?\n\n"
        "Period: 1–30 Nov 2026 · Prepared: 1 Dec 2026\n\n"
        "## Key figures\n\n"
        "- **Revenue** $1.24M ▲ +12.4% vs $1.10M\n"
        "- **Churn** 3.1% ▲ +24.0% vs 2.5%\n"
        "- **New customers** 310\n\n"
        "## Key insights\n\n"
        "- Revenue rose 12.4%, the best month this year.\n"
        "- Churn is up &lt;again>.\n\n"  # data is text, never HTML
        "## Charts\n\n"
        "### Revenue by week\n\n"
        "![Weekly revenue](c/revenue.png)\n\n"
        "### Orders by week\n\n"
        "![Weekly orders](c/orders.png)\n\n"
        "## Data\n\n"
        "### revenue\n\n"
        "| week | revenue |\n"
    )
    assert "\n\nShowing 3 of 4 rows.\n\n### refunds\n\nNo data for this period.\n\n" in text
    assert text.endswith(
        "<details>\n<summary>SQL used</summary>\n\n"
        "Query **revenue**:\n\n"
        "```sql\nSELECT week, sum(amount) AS revenue\nFROM orders\nWHERE ts < $period_end\n```\n\n"
        "Query **refunds**:\n\n"
        "```sql\nSELECT * FROM refunds\n```\n\n"
        "</details>\n"
    )
    assert_clean_markdown(text)


def assert_clean_markdown(text: str) -> None:
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert not re.search(r"[ \t]$", text, re.MULTILINE)
    assert "\n\n\n" not in text
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#"):
            assert i == 0 or lines[i - 1] == "", f"no blank line before {line!r}"
            assert lines[i + 1] == "", f"no blank line after {line!r}"


def test_sections_without_content_are_left_out(builtin):
    bare = context(metrics=[], charts={}, insights=[], sql={}, run={}, pipeline={"title": "T"})
    text = render_report(builtin, bare, "md")
    assert "## Key figures" not in text
    assert "## Key insights" not in text
    assert "## Charts" not in text
    assert "<details>" not in text
    assert "Period:" not in text
    assert text.startswith("# T\n\n## Data\n\n")
    assert_clean_markdown(text)
    page = render_report(builtin, bare, "html")
    assert outline(page).headings[1:] == [
        ("h1", "T"),
        ("h2", "Data"),
        ("h3", "revenue"),
        ("h3", "refunds"),
    ]


def test_empty_query_says_no_data(builtin):
    empty = {"orders": pd.DataFrame({"n": pd.Series([], dtype="float64")})}
    for fmt in ("md", "html"):
        out = render_report(builtin, context(data=empty), fmt)
        assert "No data for this period." in out


def test_html_document_is_self_contained(builtin):
    page = render_report(builtin, context(), "html")
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n')
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<style>" in page
    assert "<link" not in page
    assert "<script" not in page
    assert "@import" not in page and "url(http" not in page
    doc = outline(page)
    external = [
        (tag, key, value)
        for tag, key, value in doc.attrs
        if key in ("src", "href", "xlink:href", "action", "srcset")
        and value
        and re.match(r"\s*(https?:)?//", value)
    ]
    assert external == []
    assert re.search(r"https?://", page) is None


def test_html_document_and_markdown_conversion():
    page = html_document("A < B", "<p>x</p>\n")
    assert "<title>A &lt; B</title>" in page
    assert '<main class="report">\n<p>x</p>\n</main>' in page
    assert "default-src 'none'" in page
    body = markdown_to_html("| a | b |\n| --- | ---: |\n| 1 | 2 |\n\n[x](javascript:alert(1))\n")
    assert "<table>" in body and '<td style="text-align:right">2</td>' in body
    assert "<a " not in body  # markdown-it refuses the javascript: link


def test_tidy_markdown_keeps_code_blocks():
    text = "\n\n# T  \n\n\n\ntext\t\n\n```sql\nSELECT 1\n\n\nFROM t\n```\n\n\n"
    assert tidy_markdown(text) == "# T\n\ntext\n\n```sql\nSELECT 1\n\n\nFROM t\n```\n"
