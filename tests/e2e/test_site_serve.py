"""``eil-run --once`` builds the report site and ``eil-run serve`` serves it: subprocesses
on a temporary project, as a user runs them."""

from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from clirun import eil

SALES = """
title = "Sales"
description = "How much did we sell?"
[schedule]
cron = "0 7 * * *"
timezone = "Europe/Berlin"
period = "day"
[queries.kpis]
sql = "SELECT sum(v) AS v, sum(v) - 1 AS p FROM 'data/s.csv'"
[queries.daily]
sql = "SELECT d, v FROM 'data/s.csv' ORDER BY d"
[[metrics]]
label = "Sales"
query = "kpis"
column = "v"
compare = "p"
format = "currency"
[report]
exports = ["csv"]
"""

BROKEN = """
title = "Broken"
[queries.kpis]
sql = "SELECT nope FROM 'data/s.csv'"
"""

# Plain HTTP to this machine only: never through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def site_project(tmp_path_factory):
    """Two days of reports and a failing pipeline; built once, only read by the tests."""
    root = tmp_path_factory.mktemp("site")
    (root / "data").mkdir()
    (root / "data" / "s.csv").write_text("d,v\n2026-11-26,12\n2026-11-27,15\n")
    (root / "pipelines").mkdir()
    (root / "pipelines" / "sales.toml").write_text(SALES)
    (root / "pipelines" / "broken.toml").write_text(BROKEN)
    for at in ("2026-11-27T07:00", "2026-11-28T07:00"):
        result = eil("--once", "pipelines", "--at", at, cwd=root)
        assert result.returncode == 1, result.stdout + result.stderr  # broken fails
    return SimpleNamespace(root=root)


def get(url: str) -> tuple[int, str, str]:
    try:
        with OPENER.open(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], ""


class Server:
    """``eil-run serve`` as a subprocess; the port it printed."""

    def __init__(self, *args: str, cwd: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "eil_pipelines", "serve", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        assert ready, "eil-run serve printed nothing within 60 s"
        self.first_line = self.proc.stdout.readline()
        match = re.search(r"at http://([\d.]+):(\d+)/ ", self.first_line)
        assert match, (self.first_line, self.proc.stderr.read() if self.proc.poll() else "")
        self.host, self.port = match.group(1), int(match.group(2))

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        out, self.err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def test_once_builds_a_site_listing_every_pipeline_and_its_failures(site_project):
    reports = site_project.root / "reports"
    index = (reports / "index.html").read_text()
    assert "Sales" in index and "Broken" in index
    assert index.index('href="sales/2026-11-28.html"') < index.index('href="sales/2026-11-27.html"')
    assert "Failed" in index and "Binder Error" in index  # the broken pipeline's last run
    assert not (reports / "broken").exists()
    page = (reports / "sales" / "index.html").read_text()
    assert 'href="2026-11-28_data/kpis.csv"' in page and 'href="2026-11-28.json"' in page
    manifest = json.loads((reports / "sales" / "2026-11-28.json").read_text())
    assert manifest["schedule"] == "every day at 07:00 Europe/Berlin"
    assert [f["path"] for f in manifest["files"]] == [
        "2026-11-28_data/daily.csv",
        "2026-11-28_data/kpis.csv",
        "2026-11-28.md",
        "2026-11-28.html",
    ]


def test_serve_answers_on_loopback_and_stops_cleanly_on_ctrl_c(site_project):
    server = Server("pipelines", "--port", "0", cwd=site_project.root)
    try:
        assert server.host == "127.0.0.1"
        status, kind, root = get(server.url("/"))
        assert status == 200 and kind.startswith("text/html")
        assert "Sales" in root and "Broken" in root
        assert get(server.url("/index.html"))[2] == root
        status, _, report = get(server.url("/sales/2026-11-28.html"))
        assert status == 200 and "<h1>Sales</h1>" in report
        status, kind, md = get(server.url("/sales/latest.md"))
        assert status == 200 and kind.startswith("text/markdown") and md.startswith("# Sales")
        assert get(server.url("/sales/2026-11-28_data/kpis.csv"))[2].startswith("v,p\n")
        # The engine's own files are not served.
        assert get(server.url("/.eil/status/sales.json"))[0] == 404
        assert get(server.url("/%2Eeil/site.lock"))[0] == 404
        assert get(server.url("/nope.html"))[0] == 404
        # Bound to 127.0.0.1 only: another loopback address gets no answer.
        with pytest.raises(urllib.error.URLError):
            OPENER.open(f"http://127.0.0.2:{server.port}/", timeout=5)
        code, out = server.stop()
    finally:
        server.kill()
    assert code == 0
    assert out.strip().endswith("Stopped.")


def test_serve_rebuilds_the_index_for_an_older_reports_folder(project):
    old = project.root / "reports" / "legacy"
    old.mkdir(parents=True)
    (old / "2026-01-02.md").write_text("# Made before the site existed\n")
    server = Server("--reports", str(project.root / "reports"), "--port", "0", cwd=project.root)
    try:
        status, _, index = get(server.url("/"))
        assert status == 200 and 'href="legacy/2026-01-02.md"' in index
        assert server.stop()[0] == 0
    finally:
        server.kill()


def test_serve_without_a_reports_folder_says_what_to_do(project):
    result = eil("serve", "--port", "0", cwd=project.root)
    assert result.returncode == 2
    assert result.stderr.startswith("eil-run: serve: no reports folder at ")
    assert "run `eil-run --once` first" in result.stderr


def test_serve_port_in_use_is_a_clear_error(site_project):
    server = Server("--port", "0", cwd=site_project.root)
    try:
        result = eil("serve", "--port", str(server.port), cwd=site_project.root)
        assert result.returncode == 2
        assert f"eil-run serve: cannot listen on 127.0.0.1:{server.port}: " in result.stderr
    finally:
        server.stop()
        server.kill()


def test_pdf_without_weasyprint_fails_the_run_and_validate_names_the_extra(project, tmp_path):
    # A stand-in package that fails to import, as when the extra is not installed.
    fake = tmp_path / "no-weasyprint" / "weasyprint"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named weasyprint')\n")
    env = {"PYTHONPATH": str(fake.parent)}
    project.write("data/s.csv", "d,v\n2026-11-27,15\n")
    project.pipeline("sales", SALES + 'formats = ["html", "pdf"]\n')

    result = eil("validate", "pipelines", cwd=project.root, env=env)
    assert result.returncode == 2
    assert (
        'pipelines/sales.toml: report.formats: the "pdf" format needs WeasyPrint: '
        "pip install 'eil-pipelines[pdf]'"
    ) in result.stderr

    result = eil("--once", "pipelines", cwd=project.root, env=env)
    assert result.returncode == 1
    assert (
        'sales failed: pipeline "sales": the "pdf" format needs WeasyPrint: '
        "pip install 'eil-pipelines[pdf]'"
    ) in result.stdout


def test_serve_with_an_index_html_folder_warns_and_keeps_serving(project):
    reports = project.root / "reports"
    (reports / "index.html").mkdir(parents=True)  # the site index cannot be written
    (reports / "legacy").mkdir()
    (reports / "legacy" / "2026-01-02.md").write_text("# Old\n")
    server = Server("--reports", str(reports), "--port", "0", cwd=project.root)
    try:
        assert get(server.url("/"))[0] == 404
        status, _, text = get(server.url("/legacy/2026-01-02.md"))
        assert status == 200 and text == "# Old\n"
        code, _ = server.stop()
        err = server.err
    finally:
        server.kill()
    assert code == 0
    assert "eil-run serve: could not rebuild the site index: " in err
    assert "internal error" not in err and "Traceback" not in err


def test_serve_on_loopback_prints_no_proxy_warning_and_checks_its_options(site_project):
    server = Server("--port", "0", "--timeout", "5", "--threads", "2", cwd=site_project.root)
    try:
        assert get(server.url("/"))[0] == 200
        assert server.stop()[0] == 0
        assert "warning" not in server.err
    finally:
        server.kill()
    for option, message in (
        (("--timeout", "0"), "eil-run serve: --timeout must be more than 0 seconds"),
        (("--threads", "0"), "eil-run serve: --threads must be 1 or more"),
    ):
        result = eil("serve", *option, cwd=site_project.root)
        assert result.returncode == 2
        assert result.stderr.strip() == message
