"""The report site: built from disk, links that resolve, newest first, failures shown, safe
under concurrent rebuilds (threads and processes)."""

from __future__ import annotations

import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from eil_pipelines.outputs import ReportFiles, write_report
from eil_pipelines.outputs.site import (
    build_site,
    read_status,
    stamp_label,
    update_site,
    write_status,
)


class Page(HTMLParser):
    """Links, headings, table headers and the text of a page; checks tags balance."""

    VOID = frozenset({"meta", "br", "img", "link", "input", "hr"})

    def __init__(self, text: str):
        super().__init__()
        self.links: list[str] = []
        self.headings: list[int] = []
        self.th_scopes: list[str | None] = []
        self.tags: dict[str, int] = {}
        self.stack: list[str] = []
        self.lang = None
        self.text = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "html":
            self.lang = attrs.get("lang")
        if tag == "a":
            self.links.append(attrs["href"])
        if tag in ("h1", "h2", "h3", "h4"):
            self.headings.append(int(tag[1]))
        if tag == "th":
            self.th_scopes.append(attrs.get("scope"))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data):
        self.text += data


def manifest(name: str, stamp: str, revenue: str = "$1,000", **extra) -> dict:
    return {
        "manifest_version": 1,
        "pipeline": name,
        "title": extra.pop("title", name.replace("_", " ").title()),
        "description": "What happened?",
        "schedule": "every day at 07:00 Europe/Berlin",
        "timezone": "Europe/Berlin",
        "scheduled_at": f"{stamp[:10]}T07:00:00+01:00",
        "stamp": stamp,
        "status": "succeeded",
        "metrics": [
            {
                "label": "Revenue",
                "text": revenue,
                "previous_text": "$900",
                "change_text": "▲ +11.1%",
                "direction": "up",
                "sentiment": "good",
            }
        ],
        **extra,
    }


def report(reports: Path, name: str, stamp: str, *, data: bool = False, **extra) -> None:
    files = ReportFiles(
        stamp=stamp,
        documents={"md": f"# {stamp}\n", "html": f"<p>{stamp}</p>", "pdf": b"%PDF-1.7 fake"},
        images={"trend.png": b"png"},
        data={"orders.csv": b"a\n1\n"} if data else {},
        manifest=manifest(name, stamp, **extra),
    )
    write_report(reports / name, files)


def assert_links_resolve(page_path: Path) -> list[str]:
    page = Page(page_path.read_text())
    for link in page.links:
        target = (page_path.parent / unquote(link)).resolve()
        assert target.is_file(), f"{page_path.name}: {link} -> {target}"
    return page.links


def assert_accessible_structure(text: str) -> Page:
    page = Page(text)
    assert page.lang == "en" and page.tags.get("title") == 1 and page.tags.get("main") == 1
    assert page.headings[0] == 1 and page.headings.count(1) == 1
    for before, after in zip(page.headings, page.headings[1:], strict=False):
        assert after <= before + 1, page.headings  # no skipped heading level
    assert all(scope in ("col", "row") for scope in page.th_scopes)
    assert "script" not in page.tags and "link" not in page.tags
    assert "Content-Security-Policy" in text
    return page


def test_index_lists_pipelines_with_figures_and_every_report_newest_first(tmp_path):
    for stamp in ("2026-11-26", "2026-11-27", "2026-11-28"):
        report(tmp_path, "daily_sales", stamp, revenue=f"${stamp[-2:]}0")
    report(tmp_path, "hourly_ops", "2026-11-28T0900", data=True, title="Hourly Ops")
    build_site(tmp_path)
    index = (tmp_path / "index.html").read_text()
    page = assert_accessible_structure(index)
    assert "2 pipelines · 4 reports" in page.text
    assert "Daily Sales" in page.text and "Hourly Ops" in page.text
    assert "every day at 07:00 Europe/Berlin" in page.text
    assert "$280" in page.text and "$260" not in page.text  # the newest report's figures
    links = assert_links_resolve(tmp_path / "index.html")
    dated = [link for link in links if link.startswith("daily_sales/2026")]
    assert dated[:3] == [
        "daily_sales/2026-11-28.html",
        "daily_sales/2026-11-28.pdf",
        "daily_sales/2026-11-28.md",
    ]
    htmls = [link for link in dated if link.endswith(".html")]
    assert htmls == [f"daily_sales/2026-11-{d}.html" for d in ("28", "27", "26")]
    assert "hourly_ops/2026-11-28T0900.html" in links
    assert stamp_label("2026-11-23T0900")[1] == "Mon 23 Nov 2026, 09:00"


def test_pipeline_page_has_the_whole_history_with_data_and_manifests(tmp_path):
    for stamp in ("2026-11-27", "2026-11-28"):
        report(tmp_path, "daily_sales", stamp, data=True)
    build_site(tmp_path)
    path = tmp_path / "daily_sales" / "index.html"
    page = assert_accessible_structure(path.read_text())
    links = assert_links_resolve(path)
    assert links[0] == "../index.html"
    assert "2026-11-28_data/orders.csv" in links and "2026-11-28.json" in links
    assert links.index("2026-11-28.html") < links.index("2026-11-27.html")
    assert page.th_scopes.count("row") == 2
    assert "Revenue" in page.text and "$1,000" in page.text


def test_many_reports_fold_older_ones_into_details(tmp_path):
    for day in range(1, 16):
        report(tmp_path, "daily_sales", f"2026-11-{day:02d}")
    build_site(tmp_path)
    index = (tmp_path / "index.html").read_text()
    assert "<details><summary>5 older reports</summary>" in index
    assert index.count('href="daily_sales/2026-11-') == 15 * 3  # html, pdf, md of each
    assert_links_resolve(tmp_path / "index.html")


def test_a_failed_run_shows_with_its_error_and_the_earlier_reports(tmp_path):
    report(tmp_path, "daily_sales", "2026-11-27")
    write_status(
        tmp_path,
        {
            "pipeline": "daily_sales",
            "title": "Daily Sales",
            "schedule": "every day at 07:00 Europe/Berlin",
            "timezone": "Europe/Berlin",
            "status": "failed",
            "scheduled_at": "2026-11-28T07:00:00+01:00",
            "stamp": "2026-11-28",
            "error": 'query "kpis": <boom> & more',
        },
    )
    write_status(
        tmp_path,
        {
            "pipeline": "never_ok",
            "title": "Never OK",
            "status": "failed",
            "scheduled_at": "2026-11-28T07:00:00+00:00",
            "timezone": "UTC",
            "error": "no data",
        },
    )
    build_site(tmp_path)
    index = (tmp_path / "index.html").read_text()
    page = assert_accessible_structure(index)
    assert "Failed" in page.text and 'query "kpis": <boom> & more' in page.text
    assert "&lt;boom&gt; &amp; more" in index  # escaped
    assert "Never OK" in page.text and "No report yet." in page.text
    assert not (tmp_path / "never_ok").exists()  # no page without reports
    assert "daily_sales/2026-11-27.html" in assert_links_resolve(tmp_path / "index.html")
    detail = (tmp_path / "daily_sales" / "index.html").read_text()
    assert "The last run failed" in detail and "Sat 28 Nov 2026, 07:00 CET" in detail
    assert read_status(tmp_path, "daily_sales")["status"] == "failed"


def test_site_ignores_foreign_files_and_reports_from_older_versions(tmp_path):
    (tmp_path / "README.md").write_text("not a pipeline")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "x.txt").write_text("nor this")
    old = tmp_path / "legacy"
    old.mkdir()
    (old / "2026-01-02.md").write_text("# before manifests existed\n")
    (old / "2026-01-02.json").write_text("{not json")
    build_site(tmp_path)
    index = (tmp_path / "index.html").read_text()
    assert "legacy/2026-01-02.md" in index and "notes" not in index
    assert_links_resolve(tmp_path / "index.html")
    assert_links_resolve(tmp_path / "legacy" / "index.html")


def test_empty_reports_folder_gets_a_valid_index(tmp_path):
    build_site(tmp_path)
    page = assert_accessible_structure((tmp_path / "index.html").read_text())
    assert "No reports yet." in page.text


def test_rebuild_is_deterministic_and_skips_unchanged_pages(tmp_path):
    report(tmp_path, "daily_sales", "2026-11-28")
    assert len(build_site(tmp_path)) == 2
    first = (tmp_path / "index.html").read_bytes()
    assert build_site(tmp_path) == []  # nothing changed on disk: nothing rewritten
    assert (tmp_path / "index.html").read_bytes() == first


@pytest.mark.parametrize("rebuild", [build_site, update_site], ids=["build_site", "update_site"])
def test_concurrent_rebuilds_from_8_threads_leave_a_complete_index(tmp_path, rebuild):
    names = [f"p{i}" for i in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(names))

    def one(name: str) -> None:
        try:
            barrier.wait()
            for day in (27, 28):
                report(tmp_path, name, f"2026-11-{day}")
                rebuild(tmp_path, [name])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    index = (tmp_path / "index.html").read_text()
    assert_accessible_structure(index)
    # The last rebuild ran after every report was written: it lists them all.
    for name in names:
        assert f'href="{name}/2026-11-28.html"' in index
        assert f'href="{name}/2026-11-27.html"' in index
    assert "8 pipelines · 16 reports" in index
    assert not list(tmp_path.rglob(".index.html.*"))
    for name in names:  # every pipeline's own page is complete too
        assert 'href="2026-11-27.html"' in (tmp_path / name / "index.html").read_text()


def test_concurrent_rebuilds_from_two_processes(tmp_path):
    code = (
        f"import sys; from pathlib import Path; sys.path.insert(0, {str(Path(__file__).parent)!r});"
        "from test_site import report; from eil_pipelines.outputs.site import build_site;"
        "root = Path(sys.argv[1]); name = sys.argv[2]\n"
        "for day in range(1, 11):\n"
        "    report(root, name, f'2026-11-{day:02d}'); build_site(root, [name])\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), name])
        for name in ("alpha", "beta")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    index = (tmp_path / "index.html").read_text()
    assert "2 pipelines · 20 reports" in index
    assert_links_resolve(tmp_path / "index.html")


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-11-23", ("2026-11-23", "Mon 23 Nov 2026")),
        ("2026-11-23T0905", ("2026-11-23T09:05", "Mon 23 Nov 2026, 09:05")),
        ("2026-11-23T090530", ("2026-11-23T09:05:30", "Mon 23 Nov 2026, 09:05:30")),
    ],
)
def test_stamp_labels(stamp, expected):
    assert stamp_label(stamp) == expected


@pytest.mark.parametrize(
    ("scheduled_at", "stamp", "shown", "not_shown"),
    [
        # --once without --at: the time the command ran, to the microsecond.
        ("2026-12-07T07:49:50.313636+01:00", "2026-12-07", "Mon 7 Dec 2026, 07:49 CET", ":50"),
        # A schedule that fires every 30 s: the seconds tell its runs apart.
        ("2026-12-07T07:49:30+01:00", "2026-12-07T074930", "Mon 7 Dec 2026, 07:49:30 CET", None),
    ],
    ids=["ad-hoc-minutes", "sub-minute-seconds"],
)
def test_last_run_time_shows_minutes_unless_the_stamp_has_seconds(
    tmp_path, scheduled_at, stamp, shown, not_shown
):
    write_status(
        tmp_path,
        {
            "pipeline": "daily_sales",
            "title": "Daily Sales",
            "timezone": "Europe/Berlin",
            "status": "failed",
            "scheduled_at": scheduled_at,
            "stamp": stamp,
            "error": "no data",
        },
    )
    build_site(tmp_path)
    text = Page((tmp_path / "index.html").read_text()).text
    assert shown in text
    if not_shown is not None:
        assert f"07:49{not_shown}" not in text
