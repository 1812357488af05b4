"""The report site and the reports in a real browser: headless Chromium.

Driven with Python Playwright (the ``playwright`` pip package, whose wheel
ships its own driver) launching Debian's ``/usr/bin/chromium``: no browser
is ever downloaded.  Every page is opened twice, over ``eil-run serve`` and
from disk (``file://``), and checked for what a reader would notice: the
index lists the example pipelines, its links lead to the reports, every
chart is visible with a size, nothing goes wrong in the console, no request
leaves the page, and axe-core finds no serious or critical accessibility
problem.  Screenshots of the index and of a report go to ``test-artifacts/``.

One browser serves the whole module.  Tools are installed by
``bash scripts/setup-test-env.sh``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import pytest
import toolchain

pytestmark = pytest.mark.slow

ARTIFACTS = toolchain.REPO / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MODES = ["served", "file"]

# Every element a reader should see as a chart, with its box and visibility.
CHARTS_JS = """() => [...document.querySelectorAll('figure, svg[role="img"]')].map(e => {
    const r = e.getBoundingClientRect();
    return {
        tag: e.tagName.toLowerCase(), id: e.id || (e.closest('[id]') || {}).id || '',
        width: r.width, height: r.height, right: r.right,
        visible: e.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}),
        label: e.getAttribute('aria-label') || '',
    };
})"""
AXE_JS = """async () => {
    const result = await axe.run(document, {resultTypes: ['violations']});
    return result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')),
    }));
}"""


# --- the site, served and from disk ------------------------------------------------


@dataclass
class Site:
    """The reports folder as the browser reaches it."""

    mode: str
    base: str  # ends with "/"
    reports: Path

    def url(self, relative: str) -> str:
        return urljoin(self.base, relative)

    def allowed(self, url: str) -> bool:
        """A request that stays with the page: the site itself, or inline data."""
        if url.startswith(("data:", "about:blank")):
            return True
        if self.mode == "file":
            return url.startswith("file://")
        return url == self.base[:-1] or url.startswith(self.base)

    def internal(self, url: str) -> bool:
        return not url.startswith(("data:", "about:")) and self.allowed(url)

    def file_for(self, url: str) -> Path:
        """The file a site URL shows.

        Served, a folder shows its ``index.html``; from disk it shows a bare
        folder listing, so a link to a folder counts as leading nowhere.
        """
        path = unquote(urlparse(url).path)
        if self.mode == "file":
            return Path(path)
        target = self.reports / path.lstrip("/")
        return target / "index.html" if target.is_dir() else target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def reports() -> Path:
    return toolchain.example_reports()


@pytest.fixture(scope="module")
def server(reports) -> Iterator[str]:
    """``eil-run serve`` on a free port; yields the URL it printed."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "eil_pipelines",
        "serve",
        str(toolchain.REPO / "pipelines"),
        "--port",
        str(port),
        "--reports",
        str(reports),
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    url = None
    try:
        while url is None:
            try:
                line = lines.get(timeout=20)
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            m = re.search(r"https?://[^\s'\"<>]+", line)
            if m:
                url = m.group(0)
        if url is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)  # for its exit code
            pytest.fail(
                f"`eil-run serve PATH --port {port} --reports DIR` printed no URL "
                f"(exit code {proc.returncode}); it printed:\n{''.join(seen)}",
                pytrace=False,
            )
        host = urlparse(url).hostname
        assert host == "127.0.0.1", f"eil-run serve should bind to loopback, printed {url}"
        assert urlparse(url).port == port, f"eil-run serve ignored --port {port}: {url}"
        yield url if url.endswith("/") else url + "/"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")
def served(reports, server) -> Site:
    return Site("served", server, reports)


@pytest.fixture(scope="module")
def from_disk(reports) -> Site:
    return Site("file", reports.resolve().as_uri() + "/", reports)


@pytest.fixture(scope="module", params=MODES)
def site(request) -> Site:
    return request.getfixturevalue("served" if request.param == "served" else "from_disk")


# --- the browser ---------------------------------------------------------------------


@dataclass
class Browser:
    """The browser context, and the origins its requests may go to."""

    context: object
    origins: set[str]

    def guard(self, route) -> None:
        """Let requests to the site through; answer any other one with an error."""
        url = route.request.url
        if any(url.startswith(origin) for origin in self.origins):
            route.continue_()
        else:
            route.abort("blockedbyclient")


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    """One headless Chromium for the module, with a fresh profile."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        toolchain.missing("the Python package playwright", "it drives Chromium")
    executable = toolchain.chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=executable,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        shared = Browser(context, set())
        # Nothing may leave the machine, even when a page asks: requests to
        # anywhere but the site are recorded by the visit and answered here.
        context.route(re.compile(r"^(?!file:|data:).*"), shared.guard)
        try:
            yield shared
        finally:
            context.close()


@pytest.fixture(scope="module")
def axe_js() -> str:
    return toolchain.axe_script()


@dataclass
class Visit:
    """What one page load did."""

    url: str
    status: int | None = None
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)
    title: str = ""
    h1: str = ""
    text: str = ""
    overflow: int = 0  # how far the page scrolls sideways, in CSS pixels

    def problems(self, site: Site) -> list[str]:
        out = [f"console {c}" for c in self.console]
        if self.overflow > 0:
            out.append(f"the page scrolls sideways by {self.overflow}px")
        for chart in self.charts:
            if not chart["visible"] or chart["width"] <= 0 or chart["height"] <= 0:
                out.append(f"{chart['tag']}#{chart['id']} is not visible: {chart}")
        out += [f"request leaving the page: {r}" for r in self.requests if not site.allowed(r)]
        if site.mode == "served" and self.status != 200:
            out.append(f"HTTP status {self.status}")
        return out


def visit(
    browser: Browser,
    site: Site,
    url: str,
    *,
    axe_js: str | None = None,
    shot: Path | None = None,
) -> tuple[Visit, list[dict] | None]:
    """Open ``url`` in a new tab; record the console, requests, links and charts.

    With ``axe_js``, also run axe-core and return its violations; with
    ``shot``, save a full-page screenshot there.
    """
    if site.mode == "served":
        browser.origins.add(site.base)
    page = browser.context.new_page()
    record = Visit(url)
    page.on(
        "console",
        lambda m: record.console.append(f"{m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: record.console.append(f"uncaught: {e}"))
    page.on("request", lambda r: record.requests.append(r.url))
    try:
        response = page.goto(url, wait_until="load")
        record.status = response.status if response is not None else None
        record.title = page.title()
        record.h1 = (
            page.eval_on_selector("h1", "e => e.textContent.trim()")
            if page.query_selector("h1")
            else ""
        )
        record.text = page.inner_text("body")
        record.links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        record.charts = page.evaluate(CHARTS_JS)
        record.overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        violations = None
        if axe_js is not None:
            page.evaluate(axe_js)
            violations = page.evaluate(AXE_JS)
        if shot is not None:
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        return record, violations
    finally:
        page.close()


# --- the tests -----------------------------------------------------------------------


def test_the_guards_catch_what_they_look_for(browser, axe_js, tmp_path):
    """The checks below can fail: a bad page trips each of them."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>bad</title></head><body>"
        '<img src="https://example.invalid/pixel.png">'
        '<figure style="display:none"><svg role="img" aria-label="hidden chart"></svg></figure>'
        '<div style="width: 3000px">wide</div>'
        "<script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    site = Site("file", tmp_path.as_uri() + "/", tmp_path)
    record, violations = visit(browser, site, bad.as_uri(), axe_js=axe_js)
    problems = record.problems(site)
    assert "console error: boom" in problems
    assert "request leaving the page: https://example.invalid/pixel.png" in problems
    assert any(p.startswith("the page scrolls sideways by") for p in problems), problems
    assert {v["id"] for v in violations} >= {"image-alt"}, violations
    assert [(c["tag"], c["visible"], c["width"]) for c in record.charts] == [
        ("figure", False, 0),
        ("svg", False, 0),
    ]
    assert sum("is not visible" in p for p in problems) == 2, problems


def test_index_lists_every_example_pipeline(browser, site):
    index = site.reports / "index.html"
    assert index.is_file(), (
        "reports/index.html was not written by eil-run --once: the report site is missing"
    )
    record, _ = visit(browser, site, site.url("index.html"))
    assert record.problems(site) == []
    missing = [title for title in toolchain.titles().values() if title not in record.text]
    assert missing == [], f"the index does not name {missing}"
    for name in toolchain.EXAMPLES:
        linked = [u for u in record.links if f"/{name}/" in urlparse(u).path]
        assert linked, f"the index has no link into {name}/"


def test_index_links_lead_to_the_reports(browser, site):
    """Follow the links from the index, two clicks deep: every dated report is reached,
    every link leads to a file, and no page has a problem."""
    assert (site.reports / "index.html").is_file(), "reports/index.html is missing"
    start = site.url("index.html")
    pages: dict[str, Visit] = {}
    dead: list[str] = []
    frontier = [start]
    for _depth in range(3):  # the index, the pipeline pages, the reports
        following = []
        for url in frontier:
            if url in pages:
                continue
            record, _ = visit(browser, site, url)
            pages[url] = record
            for link in record.links:
                link = urldefrag(link).url
                if not site.internal(link):
                    continue
                target = site.file_for(link)
                if not target.is_file():
                    dead.append(f"{url} → {link} (no file {target})")
                elif target.suffix == ".html" and link not in pages:
                    following.append(link)
        frontier = following
    assert dead == [], "links lead nowhere:\n" + "\n".join(dead)
    problems = {u: p for u, r in pages.items() if (p := r.problems(site))}
    assert problems == {}
    reached = {site.file_for(u).resolve() for u in pages}
    expected = [p.resolve() for p in toolchain.report_html(site.reports)]
    not_reached = [str(p.relative_to(site.reports.resolve())) for p in expected if p not in reached]
    assert not_reached == [], f"no link path from the index to {not_reached}"


@pytest.mark.parametrize(("name", "stamp"), toolchain.EXAMPLES.items())
def test_report_shows_every_chart(browser, site, name, stamp):
    record, _ = visit(browser, site, site.url(f"{name}/{stamp}.html"))
    assert record.problems(site) == []
    assert record.h1 == toolchain.titles()[name]
    svgs = [c for c in record.charts if c["tag"] == "svg"]
    figures = [c for c in record.charts if c["tag"] == "figure"]
    assert len(svgs) == len(figures) == toolchain.chart_count(name), record.charts
    for chart in record.charts:
        where = f"{chart['tag']}#{chart['id']}"
        assert chart["visible"], f"{where} is hidden"
        assert chart["width"] > 100 and chart["height"] > 50, f"{where} is {chart}"
        assert chart["right"] <= 1280, f"{where} runs off the page: {chart}"
    for svg in svgs:
        assert len(svg["label"]) > 20, f"svg#{svg['id']} has no text alternative"


def pages_to_scan() -> list[tuple[str, str]]:
    """Every site page and report over eil-run serve; from disk, the entry pages.

    The files are the same bytes either way; scanning each once keeps the
    module fast.
    """
    site_pages = ["index.html", *(f"{n}/index.html" for n in toolchain.EXAMPLES)]
    reports = [f"{n}/{s}.html" for n, s in toolchain.EXAMPLES.items()]
    return [
        *(("served", p) for p in site_pages + reports),
        ("from_disk", "index.html"),
        ("from_disk", f"daily_sales/{toolchain.EXAMPLES['daily_sales']}.html"),
    ]


@pytest.mark.parametrize(("mode", "page"), pages_to_scan())
def test_axe_finds_no_serious_or_critical_problem(request, browser, axe_js, mode, page):
    site: Site = request.getfixturevalue(mode)
    assert (site.reports / page).is_file(), f"{page} was not written by eil-run --once"
    record, violations = visit(browser, site, site.url(page), axe_js=axe_js)
    assert record.problems(site) == []
    serious = [v for v in violations or [] if v["impact"] in ("serious", "critical")]
    assert serious == [], "\n".join(
        f"{v['impact']}: {v['id']}: {v['help']} at {v['nodes']}" for v in serious
    )


def test_screenshots_of_the_index_and_a_report(browser, served):
    """Saved to test-artifacts/ (git-ignored) for a person to look at."""
    site = served
    shots = {
        "index.png": "index.html",
        "pipeline-daily_sales.png": "daily_sales/index.html",
        "report-daily_sales.png": f"daily_sales/{toolchain.EXAMPLES['daily_sales']}.html",
    }
    for file, page in shots.items():
        assert (site.reports / page).is_file(), f"{page} was not written by eil-run --once"
        visit(browser, site, site.url(page), shot=ARTIFACTS / file)
        data = (ARTIFACTS / file).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, file


# --- tables that fit: three widths ----------------------------------------------------

WIDTHS = (375, 768, 1280)

# Per page: how far it scrolls sideways; per table wrapper: whether it scrolls, with the
# visible cue (the edge shades); per cell: whether its content is cut off.
FIT_JS = """() => {
    const doc = document.documentElement;
    const wraps = [...document.querySelectorAll('.table-wrap')].map(w => {
        const s = getComputedStyle(w);
        return {
            scrolls: w.scrollWidth > w.clientWidth + 1,
            scrollable: ['auto', 'scroll'].includes(s.overflowX),
            cue: s.backgroundImage.includes('gradient'),
        };
    });
    const clipped = [...document.querySelectorAll('th, td')]
        .filter(c => c.scrollWidth > c.clientWidth + 1)
        .map(c => c.textContent.trim().slice(0, 40));
    return {overflow: doc.scrollWidth - doc.clientWidth, wraps, clipped};
}"""


def fit_problems(browser: Browser, url: str, width: int, shot: Path | None = None) -> list[str]:
    """What a reader at ``width`` px would see wrong with the tables of ``url``."""
    page = browser.context.new_page()
    try:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(url, wait_until="load")
        fit = page.evaluate(FIT_JS)
        if shot is not None:
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
    finally:
        page.close()
    out = []
    if fit["overflow"] > 0:
        out.append(f"the page scrolls sideways by {fit['overflow']}px")
    for i, wrap in enumerate(fit["wraps"]):
        if wrap["scrolls"] and not (wrap["scrollable"] and wrap["cue"]):
            out.append(f"table {i + 1} is wider than its box without a scroll cue: {wrap}")
    out += [f"cell cut off: {text!r}" for text in fit["clipped"]]
    return out


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("name", "stamp"), toolchain.EXAMPLES.items())
def test_example_reports_fit_at_three_widths(browser, from_disk, name, stamp, width):
    url = from_disk.url(f"{name}/{stamp}.html")
    shot = ARTIFACTS / "widths" / f"{name}-{width}.png"
    assert fit_problems(browser, url, width, shot) == [], f"{name} at {width}px"


def test_a_wide_table_wraps_or_scrolls_with_a_cue_and_a_too_narrow_box_is_caught(browser, tmp_path):
    import pandas as pd

    from eil_pipelines.render import TemplateSource, render_report

    columns = {
        f"{word}_{i}": [123456.789 * (i + 1), 42.5]
        for i, word in enumerate(
            ["revenue", "prev_avg_order_value", "change_pct", "orders", "customer_key"] * 2
        )
    }
    frame = pd.DataFrame({"product": ["Aurora Laptop with a long name", "Tee"], **columns})
    page = render_report(
        TemplateSource("t.md.j2", "# Wide\n\n{{ data.wide | table }}\n"),
        {"pipeline": {"title": "Wide"}, "data": {"wide": frame}},
        "html",
    )
    good = tmp_path / "wide.html"
    good.write_text(page, encoding="utf-8")
    for width in WIDTHS:
        assert fit_problems(browser, good.as_uri(), width) == [], width
    # The check can fail: a table forced into a box that clips shows as cut-off cells.
    bad = tmp_path / "bad.html"
    bad.write_text(
        page.replace("</style>", ".table-wrap { overflow: hidden; background: none; } "
                     "td, th { max-width: 3rem; overflow: hidden; white-space: nowrap; }</style>"),
        encoding="utf-8",
    )  # fmt: skip
    problems = fit_problems(browser, bad.as_uri(), 375)
    assert any(p.startswith("cell cut off") for p in problems), problems
    assert any("without a scroll cue" in p for p in problems), problems
