"""The live status pages of ``eil-run serve`` over a real server and a real ledger:
``/api/status``, ``/status/``, ``/status/<pipeline>/``, the script, and "run now"
with its CSRF, Origin and token checks."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from eil_pipelines.app import ledger_path
from eil_pipelines.ledger import Ledger
from eil_pipelines.web.server import ReportsServer, make_server
from eil_pipelines.web.status import STATUS_CSP, StatusSite

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)

HOURLY = """
title = "Hourly <b>ops</b>"
[schedule]
every = "1h"
timezone = "Europe/Berlin"
[queries.q]
sql = "SELECT 1 AS x"
"""
BROKEN = """
title = "Broken"
[schedule]
cron = "not a cron"
[queries.q]
sql = "SELECT 1 AS x"
"""


class Clock:
    """The injected clock of the server and of the ledger the test writes."""

    def __init__(self) -> None:
        self.moment = NOW

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def filled(project, clock) -> Path:
    """A project with a good and a bad pipeline, and a ledger: a failure, a
    success, a run in progress, and a scheduler that beat 10 s ago."""
    project.pipeline("hourly", HOURLY)
    project.pipeline("broken", BROKEN)
    project.reports.mkdir()
    with Ledger(ledger_path(project.reports), clock=clock) as ledger:
        first = NOW - timedelta(hours=3)
        ledger.claim("hourly", first, run_id="r1", now=first)
        ledger.finish("hourly", first, status="succeeded", now=first + timedelta(seconds=4))
        second = NOW - timedelta(hours=2)
        ledger.claim("hourly", second, run_id="r2", now=second)
        ledger.finish(
            "hourly", second, status="failed", now=second + timedelta(seconds=2), error="boom: <x>"
        )
        running = NOW - timedelta(minutes=1)
        ledger.claim("hourly", running, run_id="r3", now=running)
        clock.moment = NOW - timedelta(seconds=10)
        ledger.beat(
            "bi-1",
            host="bi",
            pid=7,
            version="9.9",
            started_at=NOW - timedelta(days=1),
            running=1,
            last_error=None,
        )
    clock.moment = NOW
    return project.root


class Running:
    def __init__(self, server: ReportsServer):
        self.server = server
        self.port = server.server_address[1]
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(30)


@pytest.fixture
def serve(filled, clock, monkeypatch) -> Iterator:
    started: list[Running] = []
    monkeypatch.setattr("eil_pipelines.web.server.build_site", lambda reports: [])

    def start(**options) -> Running:
        site = StatusSite(filled / "pipelines", filled / "reports", clock=clock, **options)
        running = Running(make_server(filled / "reports", "127.0.0.1", 0, status=site))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def test_the_api_reports_heartbeat_runs_and_invalid_files(serve) -> None:
    server = serve()
    status, headers, body = server.request("GET", "/api/status")
    assert status == 200
    assert headers["content-type"] == "application/json"
    report = json.loads(body)
    assert report["format"] == 1
    assert report["generated_at"] == NOW.isoformat()
    scheduler = report["scheduler"]
    assert (scheduler["node"], scheduler["age_s"], scheduler["alive"]) == ("bi-1", 10.0, True)
    (hourly,) = report["pipelines"]
    assert hourly["pipeline"] == "hourly"
    assert hourly["schedule"].startswith("every hour")
    assert hourly["next"]["local"].endswith("+01:00")  # Berlin in December
    assert hourly["last"]["status"] == "failed"
    assert hourly["last"]["duration_s"] == 2.0
    assert hourly["last"]["error"] == "boom: <x>"
    assert [r["running_s"] for r in hourly["running"]] == [60.0]
    assert hourly["failures_in_a_row"] == 1
    (broken,) = report["invalid"]
    assert broken["file"].endswith("broken.toml")
    assert any(p.startswith("schedule.cron") for p in broken["problems"])
    assert report["health"] == {"ok": True, "problems": []}
    assert report["run_now"] is False


def test_the_page_shows_the_state_escaped_with_a_script_only_from_the_server(serve) -> None:
    server = serve()
    status, headers, body = server.request("GET", "/status/")
    page = body.decode()
    assert status == 200
    assert headers["content-security-policy"] == STATUS_CSP
    assert '<script src="/status/status.js" defer></script>' in page
    assert "<script>" not in page  # no inline script
    assert 'data-pipeline="hourly"' in page
    assert "running</span> for 60.0 s" in page
    assert "broken.toml" in page and "schedule.cron" in page
    assert "Run now" not in page  # off without --allow-run
    status, headers, body = server.request("GET", "/status/status.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert b"/api/status" in body or b"data-api" in body
    status, headers, _ = server.request("GET", "/status")
    assert (status, headers["location"]) == (301, "/status/")


def test_a_pipelines_page_lists_its_runs_with_failure_messages(serve) -> None:
    server = serve()
    status, _, body = server.request("GET", "/status/hourly/")
    page = body.decode()
    assert status == 200
    assert "Hourly &lt;b&gt;ops&lt;/b&gt;" in page  # autoescaped
    assert "boom: &lt;x&gt;" in page
    assert page.count('<tr><th scope="row"><time') == 3  # three runs
    assert "2026-12-07T05:00:00+01:00" in page  # in the pipeline's zone
    assert server.request("GET", "/status/nope/")[0] == 404


def test_the_site_keeps_its_own_policy_beside_the_status_pages(serve, filled) -> None:
    (filled / "reports" / "index.html").write_text("<h1>Site</h1>")
    server = serve()
    status, headers, _ = server.request("GET", "/")
    assert status == 200
    assert "script-src" not in headers["content-security-policy"]


def _form(site: StatusSite, token: str | None = None) -> bytes:
    return urlencode({"csrf": site.csrf if token is None else token}).encode()


def _post_headers(server: Running, **extra: str) -> dict[str, str]:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": f"http://127.0.0.1:{server.port}",
    }
    headers.update(extra)
    return headers


def _open_requests(root: Path) -> list[tuple[str, str]]:
    with Ledger(ledger_path(root / "reports"), read_only=True) as ledger:
        return [(r.pipeline, r.requested_by) for r in ledger.open_run_requests()]


def test_run_now_is_off_without_allow_run(serve, filled) -> None:
    server = serve()
    site = server.server.status
    assert site is not None
    status, _, body = server.request(
        "POST", "/status/hourly/run", _form(site), _post_headers(server)
    )
    assert status == 403
    assert b"--allow-run" in body
    assert _open_requests(filled) == []


def test_run_now_with_the_token_and_origin_is_stored_for_the_scheduler(serve, filled) -> None:
    server = serve(allow_run=True)
    site = server.server.status
    assert site is not None
    _, _, page = server.request("GET", "/status/")
    assert f'name="csrf" value="{site.csrf}"'.encode() in page
    status, headers, _ = server.request(
        "POST", "/status/hourly/run", _form(site), _post_headers(server)
    )
    assert (status, headers["location"]) == (303, "/status/hourly/")
    assert _open_requests(filled) == [("hourly", "serve 127.0.0.1")]
    report = json.loads(server.request("GET", "/api/status")[2])
    assert report["pipelines"][0]["requested"] == 1


@pytest.mark.parametrize(
    ("token", "headers", "why"),
    [
        ("forged", {}, "a wrong CSRF token"),
        ("", {}, "no CSRF token"),
        (None, {"Origin": "http://evil.example"}, "another origin"),
        (None, {"Origin": "null"}, "an opaque origin"),
        (
            None,
            {"Host": "rebound.example:8000", "Origin": "http://rebound.example:8000"},
            "a DNS-rebound name for this machine",
        ),
    ],
)
def test_a_forged_run_now_is_refused(serve, filled, token, headers, why) -> None:
    server = serve(allow_run=True)
    site = server.server.status
    assert site is not None
    status, _, body = server.request(
        "POST", "/status/hourly/run", _form(site, token), _post_headers(server, **headers)
    )
    assert status == 403, why
    assert b"run now refused" in body
    assert _open_requests(filled) == []


def test_run_now_without_origin_falls_back_to_the_referer(serve, filled) -> None:
    server = serve(allow_run=True)
    site = server.server.status
    assert site is not None
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    refused = server.request("POST", "/status/hourly/run", _form(site), headers)
    assert refused[0] == 403
    headers["Referer"] = f"http://127.0.0.1:{server.port}/status/"
    assert server.request("POST", "/status/hourly/run", _form(site), headers)[0] == 303


def test_run_now_with_the_bearer_token(serve, filled) -> None:
    server = serve(allow_run=True, run_token="s3cret-token")
    wrong = server.request("POST", "/status/hourly/run", b"", {"Authorization": "Bearer nope"})
    assert wrong[0] == 403
    status, _, body = server.request(
        "POST",
        "/status/hourly/run",
        b"",
        {"Authorization": "Bearer s3cret-token", "Accept": "application/json"},
    )
    assert status == 202
    assert json.loads(body)["pipeline"] == "hourly"
    assert _open_requests(filled) == [("hourly", "serve token")]


def test_run_now_of_an_unknown_pipeline_or_path_is_404(serve, filled) -> None:
    server = serve(allow_run=True)
    site = server.server.status
    assert site is not None
    for path in ("/status/nope/run", "/status/hourly/other", "/index.html"):
        assert server.request("POST", path, _form(site), _post_headers(server))[0] == 404
    too_big = b"csrf=" + b"x" * 5000
    assert server.request("POST", "/status/hourly/run", too_big, _post_headers(server))[0] == 413
    assert _open_requests(filled) == []


DAILY = """
title = "Daily"
[schedule]
daily = "06:00"
timezone = "UTC"
[queries.q]
sql = "SELECT 1 AS x"
"""
WEEKLY = """
title = "Weekly"
[schedule]
cron = "0 6 * * MON"
timezone = "UTC"
after = ["daily"]
[queries.q]
sql = "SELECT 1 AS x"
"""


def test_a_waiting_run_and_the_pipelines_links_show_in_the_api_and_the_pages(
    serve, filled, clock
) -> None:
    (filled / "pipelines" / "daily.toml").write_text(DAILY)
    (filled / "pipelines" / "weekly.toml").write_text(WEEKLY)
    at = NOW - timedelta(minutes=5)
    with Ledger(ledger_path(filled / "reports"), clock=clock) as ledger:
        note = "waiting for daily 2026-12-07 06:00 (running)"
        ledger.wait("weekly", at, run_id="w1", note=note, now=at)
        ledger.note_waiting(
            "weekly", at, note="waiting for daily 2026-12-07 06:00 (running)", checks=2
        )
    server = serve()
    status, _, body = server.request("GET", "/api/status")
    assert status == 200
    rows = {p["pipeline"]: p for p in json.loads(body)["pipelines"]}
    assert rows["weekly"]["waiting"] == [
        {
            "scheduled_at": at.isoformat(),
            "waiting_s": 300.0,
            "for": "waiting for daily 2026-12-07 06:00 (running)",
            "checks": 2,
        }
    ]
    assert rows["weekly"]["running"] == [] and rows["weekly"]["last"] is None
    assert (rows["weekly"]["after"], rows["weekly"]["before"]) == (["daily"], [])
    assert (rows["daily"]["after"], rows["daily"]["before"]) == ([], ["weekly"])
    overview = server.request("GET", "/status/")[2].decode()
    assert '<span class="status waiting">waiting</span> waiting for daily' in overview
    page = server.request("GET", "/status/weekly/")[2].decode()
    assert '<a href="/status/daily/"><code>daily</code></a>' in page
    assert '<span class="status waiting">waiting</span>' in page  # its runs' table too
    upstream = server.request("GET", "/status/daily/")[2].decode()
    assert '<dd data-field="before"><a href="/status/weekly/"><code>weekly</code></a>' in upstream


RANKED = """
title = "Ranked"
[schedule]
every = "1h"
timezone = "UTC"
[params]
top_n = 10
[queries.q]
sql = "SELECT $top_n AS x"
"""


def test_run_now_with_params_stores_them_and_a_wrong_one_is_refused(serve, filled, project) -> None:
    project.pipeline("ranked", RANKED)
    server = serve(allow_run=True, run_token="s3cret-token")
    token = {"Authorization": "Bearer s3cret-token", "Accept": "application/json"}
    status, _, _ = server.request(
        "POST", "/status/ranked/run", urlencode({"param": "top_n=5"}).encode(), token
    )
    assert status == 202
    with Ledger(ledger_path(filled / "reports"), read_only=True) as ledger:
        assert [(r.pipeline, r.params) for r in ledger.open_run_requests()] == [
            ("ranked", {"top_n": "5"})
        ]
    for form, message in [
        ({"param": "top_n=five"}, '--param top_n="five": expected a whole number'),
        ({"param": "region=EMEA"}, "the file declares no such parameter"),
        ({"param": "top_n"}, "--param: expected name=value"),
    ]:
        status, _, body = server.request(
            "POST", "/status/ranked/run", urlencode(form).encode(), token
        )
        assert status == 400, form
        assert body.decode().startswith("run now: ") and message in body.decode(), body
    assert len(_open_requests(filled)) == 1  # only the good one


def test_the_pipeline_page_asks_for_params_and_its_form_sends_them(serve, filled, project) -> None:
    project.pipeline("ranked", RANKED)
    server = serve(allow_run=True)
    site = server.server.status
    assert site is not None
    _, _, page = server.request("GET", "/status/ranked/")
    assert b'name="param.top_n" placeholder="10"' in page
    assert b'<label for="param-top_n">' in page
    # Without run now there is no form to fill.
    assert b"param.top_n" not in serve().request("GET", "/status/ranked/")[2]
    form = urlencode({"csrf": site.csrf, "param.top_n": "3"}).encode()
    status, _, _ = server.request("POST", "/status/ranked/run", form, _post_headers(server))
    assert status == 303
    empty = urlencode({"csrf": site.csrf, "param.top_n": ""}).encode()  # keeps the file's value
    assert server.request("POST", "/status/ranked/run", empty, _post_headers(server))[0] == 303
    with Ledger(ledger_path(filled / "reports"), read_only=True) as ledger:
        assert [r.params for r in ledger.open_run_requests()] == [{"top_n": "3"}, {}]
    bad = urlencode({"csrf": site.csrf, "param.top_n": "many"}).encode()
    status, _, body = server.request("POST", "/status/ranked/run", bad, _post_headers(server))
    assert status == 400 and b"expected a whole number" in body
