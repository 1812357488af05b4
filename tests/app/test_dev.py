"""``eil-run dev``'s use case and server, without a browser (tests/e2e/test_dev_browser.py
drives Chromium): real DuckDB queries, real files, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest
from diffrepo import AT, Repo, make_repo

from eil_pipelines.app.dev import DevSession
from eil_pipelines.web.dev import make_dev_server

WHEN = datetime.fromisoformat(AT)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path / "project")


def test_a_template_edit_renders_again_from_cached_queries(repo):
    session = DevSession(repo.pipelines, at=WHEN)
    first = session.state("sales")
    assert first.error is None and first.queries_run == 2 and first.charts_drawn == 1
    assert "<h1" in first.html and "Sales" in first.html
    repo.edit("templates/sales.md.j2", "# {{ pipeline.title }}", "# {{ pipeline.title }} edited")
    session.reload()
    again = session.render("sales")
    assert again.queries_run == 0  # every result came from the cache
    assert again.charts_drawn == 0  # and every chart
    assert "Sales edited" in again.html
    # An edited query runs again; the other comes from the cache.
    repo.edit("sql/kpis.sql", "AS p\n", "AS p, 1 AS one\n")
    session.reload()
    assert session.render("sales").queries_run == 1
    # The chart's query changed: the chart is drawn again.
    repo.edit("pipelines/sales.toml", "GROUP BY region ORDER BY region", "GROUP BY ALL ORDER BY 1")
    session.reload()
    state = session.render("sales")
    assert (state.queries_run, state.charts_drawn) == (1, 1)


def test_an_error_keeps_the_last_good_render_and_names_file_and_line(repo):
    session = DevSession(repo.pipelines, at=WHEN)
    good = session.state("sales").html
    repo.edit("templates/sales.md.j2", "# {{ pipeline.title }}", "# {{ pipeline.title( }}")
    session.reload()
    state = session.render("sales")
    assert state.html == good
    assert "templates/sales.md.j2:1: template syntax error" in state.error
    assert state.good_version < state.version
    repo.edit("templates/sales.md.j2", "# {{ pipeline.title( }}", "# {{ pipeline.title }}")
    repo.edit("pipelines/sales.toml", 'period = "day"', 'period = "dya"')
    session.reload()
    state = session.render("sales")
    assert state.html == good
    assert 'pipelines/sales.toml: schedule.period: expected one of "interval"' in state.error


def test_an_unknown_pipeline_is_a_clear_error(repo):
    from eil_pipelines.errors import UsageError

    session = DevSession(repo.pipelines, at=WHEN)
    with pytest.raises(UsageError, match=r"no pipeline named nope \(pipelines: other, sales\)"):
        session.state("nope")


def test_the_watcher_rerenders_and_the_event_stream_says_so(repo):
    session = DevSession(repo.pipelines, at=WHEN)
    server = make_dev_server(session, 0)
    assert server.server_address[0] == "127.0.0.1"
    stop = threading.Event()
    threads = [
        threading.Thread(target=server.serve_forever, daemon=True),
        threading.Thread(target=session.watch, args=(stop,), kwargs={"interval": 0.05}),
    ]
    for t in threads:
        t.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page = urllib.request.urlopen(f"{base}/p/sales", timeout=60).read().decode()
        rebound = urllib.request.Request(f"{base}/report/sales", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=60)
        assert refused.value.code == 403
        assert '<script src="/dev.js"></script>' in page
        events = urllib.request.urlopen(f"{base}/events/sales", timeout=60)
        first = json.loads(events.readline().decode().removeprefix("data: "))
        events.readline()
        assert first["error"] is None
        repo.edit("templates/sales.md.j2", "# {{ pipeline.title }}", "# {{ pipeline.title }} v2")
        # The next message (not a keep-alive) comes after the re-render.
        while True:
            line = events.readline().decode()
            if line.startswith("data: "):
                break
        message = json.loads(line.removeprefix("data: "))
        assert message["good_version"] > first["good_version"]
        report = urllib.request.urlopen(f"{base}/report/sales", timeout=60).read().decode()
        assert "Sales v2" in report
        events.close()
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        threads[1].join()
