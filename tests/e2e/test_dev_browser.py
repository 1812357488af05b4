"""``eil-run dev`` in headless Chromium: an edit shows, a typo shows its error.

``eil-run dev`` runs as a user runs it (a subprocess on a temporary project,
port 0); Python Playwright drives Debian's ``/usr/bin/chromium`` (never a
downloaded browser).  Every wait is on the page's DOM with a generous
deadline that is reached only when the test fails; the time from the save to
the page showing the edit is printed.  Without Chromium or Playwright the
test is skipped, unless ``CI`` is set: then it fails.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

AT = "2026-11-28T07:00"
DEADLINE_MS = 30_000  # reached only on failure; the target is 2 s

PIPELINE = """
title = "Sales"
[schedule]
cron = "0 7 * * *"
timezone = "Europe/Berlin"
period = "day"
[report]
template = "templates/sales.md.j2"
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
TEMPLATE = "# {{ pipeline.title }} first\n\n{{ charts.trend }}\n"


def need(what: str, why: str) -> None:
    """Skip without a tool, or fail when ``CI`` is set (docs: tests need their tools in CI)."""
    message = f"{what} is missing ({why}); install with: bash scripts/setup-test-env.sh"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def chromium() -> str:
    path = os.environ.get("EIL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        need(f"chromium ({path})", "the browser test drives it")
    return path


@pytest.fixture
def dev(tmp_path):
    """``eil-run dev`` on a small project; yields (project root, base URL)."""
    root = tmp_path / "project"
    (root / "pipelines").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "data").mkdir()
    (root / "data" / "s.csv").write_text(
        "d,v\n2026-11-25,10\n2026-11-26,12\n2026-11-27,15\n", encoding="utf-8"
    )
    (root / "pipelines" / "sales.toml").write_text(PIPELINE.lstrip(), encoding="utf-8")
    (root / "templates" / "sales.md.j2").write_text(TEMPLATE, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "eil_pipelines", "dev", "pipelines", "--port", "0", "--at", AT],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=120)
        assert first.startswith("Previewing pipelines at http://127.0.0.1:"), first
        yield root, first.split(" at ", 1)[1].split()[0].rstrip("/")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_an_edit_shows_and_a_typo_shows_its_error(dev, tmp_path):
    root, base = dev
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        need("the Python package playwright", "it drives Chromium")
    executable = chromium()
    template = root / "templates" / "sales.md.j2"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"{base}/p/sales")
            report = page.frame_locator("#report")
            expect(report.locator("h1")).to_have_text("Sales first", timeout=DEADLINE_MS)
            expect(page.locator("#error")).to_be_hidden()

            # An edit of the template: the page shows it by itself.
            saved = time.perf_counter()
            template.write_text(TEMPLATE.replace("first", "second"), encoding="utf-8")
            expect(report.locator("h1")).to_have_text("Sales second", timeout=DEADLINE_MS)
            print(f"\ntemplate saved → page shows it: {time.perf_counter() - saved:.2f} s")
            expect(report.locator("svg").first).to_be_visible()

            # A typo: the error with its file and line, the last good report still below.
            template.write_text(TEMPLATE.replace("first", "{{ nope( }}"), encoding="utf-8")
            banner = page.locator("#error")
            expect(banner).to_be_visible(timeout=DEADLINE_MS)
            expect(banner).to_contain_text("templates/sales.md.j2:1", timeout=DEADLINE_MS)
            expect(banner).to_contain_text("template syntax error")
            expect(report.locator("h1")).to_have_text("Sales second")

            # Fixed: the error goes, the new report shows.
            template.write_text(TEMPLATE.replace("first", "third"), encoding="utf-8")
            expect(report.locator("h1")).to_have_text("Sales third", timeout=DEADLINE_MS)
            expect(banner).to_be_hidden()
            assert all(url.startswith(base) for url in requests), requests
        finally:
            browser.close()
