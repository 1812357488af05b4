"""The shipped examples, run as a user would, produce the reports we promise.

The Markdown of each example at a fixed scheduled time is compared with a
golden file (it depends only on the sample data and the templates); the HTML
is checked structurally.  Regenerate the golden files after an intended
change with ``EIL_UPDATE_GOLDEN=1 python -m pytest tests/e2e/test_examples_output.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "fixtures" / "golden"
AT = "2026-11-23T09:00"  # a Monday: the weekly summary covers a whole ISO week

EXAMPLES = {
    "daily_sales": "2026-11-23",
    "weekly_executive_summary": "2026-11-23",
    "hourly_operations": "2026-11-23T0900",
}


class Structure(HTMLParser):
    """Counts the tags and collects the text of an HTML report."""

    def __init__(self):
        super().__init__()
        self.tags: dict[str, int] = {}
        self.attrs: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.attrs.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    """Run every example once at AT into a temporary reports folder."""
    out = tmp_path_factory.mktemp("reports")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "eil_pipelines",
            "--once",
            str(REPO / "pipelines"),
            "--at",
            AT,
            "--reports",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TZ": "UTC"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.parametrize(("name", "stamp"), EXAMPLES.items())
def test_markdown_matches_golden(reports, name, stamp):
    produced = (reports / name / f"{stamp}.md").read_text()
    golden = GOLDEN / f"{name}.md"
    if os.environ.get("EIL_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(produced)
    assert produced == golden.read_text()


@pytest.mark.parametrize(("name", "stamp"), EXAMPLES.items())
def test_markdown_links_every_chart_relatively(reports, name, stamp):
    md = (reports / name / f"{stamp}.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links, "every example has at least one chart"
    for link in links:
        assert link.startswith(f"{stamp}_charts/") and link.endswith(".png")
        image = reports / name / link
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("name", "stamp"), EXAMPLES.items())
def test_html_is_self_contained_with_inline_charts(reports, name, stamp):
    html = (reports / name / f"{stamp}.html").read_text()
    parser = Structure()
    parser.feed(html)
    md = (reports / name / f"{stamp}.md").read_text()
    assert parser.tags.get("svg", 0) == md.count("](" + stamp + "_charts/")
    assert parser.tags.get("h1") == 1
    assert html.split("<body")[0].count("<style") == 1  # the page's CSS is inline in <head>
    assert "script" not in parser.tags and "link" not in parser.tags
    for tag, attrs in parser.attrs:
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not value.startswith(("http:", "https:", "//")), (tag, attrs)
    assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")


def test_daily_sales_content(reports):
    md = (reports / "daily_sales" / "2026-11-23.md").read_text()
    assert md.startswith("# Daily Sales\n\nHow did we sell yesterday, by region and channel?")
    for label in ("Revenue", "Orders", "Average order value", "Cancellation rate"):
        assert f"**{label}**" in md
    assert "## Key insights" in md and "against the previous day." in md
    assert "<details>" in md and "SQL used" in md
    html = (reports / "daily_sales" / "2026-11-23.html").read_text()
    assert html.count('class="kpi"') == 4
    assert re.search(r'class="delta (up|down|flat) (good|bad|neutral)"', html)


def test_weekly_summary_uses_its_custom_template(reports):
    md = (reports / "weekly_executive_summary" / "2026-11-23.md").read_text()
    template = (REPO / "templates" / "weekly_executive_summary.md.j2").read_text()
    assert "Weekly Executive Summary" in md
    assert "16–23 Nov 2026" in md or "16–22 Nov 2026" in md
    assert "## Key figures" in template  # the custom template, not the built-in one
    assert "## Key figures" in md


def test_latest_copies_equal_the_dated_reports(reports):
    for name, stamp in EXAMPLES.items():
        for fmt in ("md", "html"):
            assert (reports / name / f"latest.{fmt}").read_bytes() == (
                reports / name / f"{stamp}.{fmt}"
            ).read_bytes()


def test_rerun_is_byte_identical(reports, tmp_path):
    """Same data, same scheduled time: the same bytes, so reports can live in git."""
    again = tmp_path / "again"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "eil_pipelines",
            "--once",
            str(REPO / "pipelines"),
            "--at",
            AT,
            "--reports",
            str(again),
            "--only",
            "daily_sales",
        ],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "TZ": "UTC"},
    )
    first = sorted(
        p.relative_to(reports / "daily_sales")
        for p in (reports / "daily_sales").rglob("*")
        if p.is_file()
    )
    second = sorted(
        p.relative_to(again / "daily_sales")
        for p in (again / "daily_sales").rglob("*")
        if p.is_file()
    )
    assert first == second
    assert Path("2026-11-23.json") in first  # the run manifest
    for rel in first:
        before = (reports / "daily_sales" / rel).read_bytes()
        after = (again / "daily_sales" / rel).read_bytes()
        if rel.suffix == ".json":
            # The manifest records wall-clock start, end and durations by nature;
            # every other field (hashes, files, period, metrics) must be equal.
            from eil_pipelines.outputs.manifest import VOLATILE_KEYS, stable_view

            assert set(VOLATILE_KEYS) <= json.loads(before).keys()
            assert stable_view(json.loads(before)) == stable_view(json.loads(after)), rel
            continue
        assert before == after, rel
    shutil.rmtree(again)
