"""The live status page in headless Chromium, over a real ``eil-run serve`` and a
real scheduler process (``eil-run PATH``).

Driven with Python Playwright launching Debian's ``/usr/bin/chromium`` (no
browser is downloaded).  The page loads with no request leaving the server
and nothing in the console; it updates without a reload; "Run now" goes from
the button through the ledger to the scheduler, which runs the pipeline (a
quick one succeeds, a slow one shows as running); a POST without the page's
CSRF token is refused with 403; axe-core finds no accessibility violation.

Chromium, the ``playwright`` package and ``node_modules/axe-core`` come from
``bash scripts/setup-test-env.sh``.  Without them the test is skipped, with
the reason, unless ``CI`` is set: then it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
YEARLY = """
title = "{title}"
[schedule]
cron = "0 0 1 1 *"
timezone = "Europe/Berlin"
[queries.q]
sql = "{sql}"
"""
QUICK_SQL = "SELECT 1 AS x"
SLOW_SQL = "SELECT count(*) AS n FROM range(100000000000)"  # minutes, unless interrupted


def _tool_missing(what: str) -> None:
    message = f"{what} is missing; install the test tools with: bash scripts/setup-test-env.sh"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _chromium() -> str:
    path = os.environ.get("EIL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        _tool_missing(f"chromium ({path})")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 180.0) -> bool:
    """Poll until true; the generous deadline is reached only when the test fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


class Process:
    """A child ``python -m eil_pipelines …`` with its output in a file; always stopped."""

    def __init__(self, root: Path, tag: str, *args: str):
        self.log = root / f"{tag}.out"
        self._out = self.log.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eil_pipelines", *args],
            cwd=root,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._out.close()


@pytest.fixture
def stack(project) -> Iterator[tuple[str, Process]]:
    """A scheduler and ``serve --allow-run`` on a project of a quick and a slow pipeline;
    yields the status page's URL and the scheduler."""
    project.pipeline("quick", YEARLY.format(title="Quick report", sql=QUICK_SQL))
    project.pipeline("slow", YEARLY.format(title="Slow report", sql=SLOW_SQL))
    project.reports.mkdir()
    port = _free_port()
    scheduler = Process(project.root, "scheduler", "pipelines", "--grace", "1")
    server = Process(
        project.root, "serve", "serve", "pipelines", "--port", str(port), "--allow-run"
    )
    try:
        assert wait_for(lambda: "Status at http://" in server.output()), server.output()
        yield f"http://127.0.0.1:{port}/status/", scheduler
    finally:
        server.stop()
        scheduler.stop()


@pytest.fixture
def page() -> Iterator:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _tool_missing("the Python package playwright")
    executable = _chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=FLAGS)
        try:
            # A viewer in another zone than the pipeline's (Europe/Berlin) and the server's.
            yield browser.new_page(
                viewport={"width": 1280, "height": 900},
                timezone_id="America/New_York",
                locale="en-US",
            )
        finally:
            browser.close()


def _cell(page, pipeline: str, field: str) -> str:
    return page.locator(f'tr[data-pipeline="{pipeline}"] [data-field="{field}"]').inner_text()


def test_status_page_live_run_now_csrf_and_axe(stack, page) -> None:
    url, scheduler = stack
    origin = url.removesuffix("/status/")
    console: list[str] = []
    outside: list[str] = []
    # The browser's own favicon request is a 404 (the site has none): not the page's doing.
    page.on(
        "console",
        lambda msg: (
            None
            if msg.location.get("url", "").endswith("/favicon.ico")
            else console.append(f"{msg.type}: {msg.text} ({msg.location.get('url')})")
        ),
    )
    page.on("request", lambda req: None if req.url.startswith(origin) else outside.append(req.url))

    page.goto(url)
    # The scheduler's first beat, then the page's own update, without a reload.
    assert wait_for(lambda: page.locator("body[data-updated]").count() == 1)
    assert wait_for(lambda: "alive" in page.locator("#scheduler").inner_text()), (
        page.locator("#scheduler").inner_text(),
        scheduler.output(),
    )
    assert "Europe/Berlin" in _cell(page, "quick", "next")
    # 2027-01-01 00:00 in Berlin is 2026-12-31 18:00 in New York.
    assert _cell(page, "quick", "next_viewer") == "Dec 31, 2026, 6:00 PM America/New_York"

    # Run now, end to end: the button, the ledger, the scheduler, the page.
    page.get_by_role("button", name="Run now quick").click()
    page.wait_for_url(re.compile(r"/status/quick/$"))
    assert wait_for(lambda: "succeeded" in _cell(page, "quick", "last")), scheduler.output()
    page.goto(url)
    page.get_by_role("button", name="Run now slow").click()
    page.goto(url)
    assert wait_for(lambda: "running" in _cell(page, "slow", "running")), scheduler.output()
    assert re.search(r"running for \d", _cell(page, "slow", "running"))

    # A forged POST, without the page's token, from the page's own origin: 403.
    forged = page.request.post(
        f"{origin}/status/quick/run", form={"csrf": "forged"}, headers={"Origin": origin}
    )
    assert forged.status == 403

    if not AXE.is_file():
        _tool_missing(f"the npm package axe-core ({AXE})")
    page.evaluate(AXE.read_text(encoding="utf-8"))  # through DevTools: the page's CSP holds
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    assert violations == []
    assert outside == []
    assert [line for line in console if line.startswith("error")] == []


RANKED = """
title = "Ranked report"
[schedule]
cron = "0 0 1 1 *"
timezone = "Europe/Berlin"
[params]
top_n = 10
[queries.q]
sql = "SELECT $top_n AS top_n"
"""


def test_run_now_with_other_params_from_the_pipeline_page(project, page) -> None:
    project.pipeline("ranked", RANKED)
    project.reports.mkdir()
    port = _free_port()
    scheduler = Process(project.root, "scheduler", "pipelines", "--grace", "1")
    server = Process(
        project.root, "serve", "serve", "pipelines", "--port", str(port), "--allow-run"
    )
    try:
        assert wait_for(lambda: "Status at http://" in server.output()), server.output()
        page.goto(f"http://127.0.0.1:{port}/status/ranked/")
        field = page.get_by_label("top_n")
        assert field.get_attribute("placeholder") == "10"
        field.fill("3")
        page.get_by_role("button", name="Run now with these values").click()
        page.wait_for_url(re.compile(r"/status/ranked/$"))
        folder = project.reports / "ranked"
        assert wait_for(lambda: any(folder.glob("*.json"))), scheduler.output()
        (manifest,) = folder.glob("*.json")
        facts = json.loads(manifest.read_text())
        assert (facts["params"], facts["params_overridden"]) == ({"top_n": 3}, ["top_n"])
        if not AXE.is_file():
            _tool_missing(f"the npm package axe-core ({AXE})")
        page.evaluate(AXE.read_text(encoding="utf-8"))
        violations = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
        )
        assert violations == []
    finally:
        server.stop()
        scheduler.stop()
