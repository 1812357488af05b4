"""The scheduler's heartbeat and "run now": beats into the ledger on its clock,
takes the status page's run requests and runs each as an ad-hoc run, says
goodbye at a clean stop."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from eil_pipelines import __version__
from eil_pipelines.app.service import SchedulerService
from eil_pipelines.ledger import Ledger
from eil_pipelines.schedule.testing import ManualClock

START = datetime(2026, 3, 2, 12, 30, 15, 250000, tzinfo=UTC)

PIPELINE = """
title = "Report"
[schedule]
every = "1h"
timezone = "UTC"
[queries.q]
sql = "SELECT 1 AS x"
"""


def wait_for(predicate, timeout: float = 120.0) -> bool:
    """Poll ``predicate`` until true; the generous deadline is reached only on failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def service(project):
    project.pipeline("hourly", PIPELINE)
    clock = ManualClock(START)
    made = SchedulerService(
        project.pipelines, reports_dir=project.reports, clock=clock, node="test-node"
    )
    made.start(watch=False, loop=False)
    yield made
    made.stop(grace=30)


def test_a_beat_records_the_runner_on_the_services_clock(service) -> None:
    assert service.beat() == []
    (node,) = service.ledger.nodes()
    assert node.node == "test-node"
    assert node.last_beat == START
    assert (node.version, node.running, node.last_error, node.stopped) == (
        __version__,
        0,
        None,
        False,
    )
    service.clock.advance(timedelta(seconds=5))
    service.beat()
    assert service.ledger.nodes()[0].last_beat == START + timedelta(seconds=5)


def test_a_run_request_is_taken_and_run_as_an_ad_hoc_run(service, project) -> None:
    with Ledger(project.reports / ".eil" / "ledger.sqlite3", clock=service.clock.now) as web:
        web.request_run("hourly", requested_by="serve 127.0.0.1")
        web.request_run("unknown", requested_by="serve 127.0.0.1")
    (taken,) = service.beat()
    assert taken.pipeline == "hourly"
    at = START.replace(microsecond=0)
    assert wait_for(lambda: (r := service.ledger.get("hourly", at)) and r.status != "running")
    record = service.ledger.get("hourly", at)
    assert record is not None and record.status == "succeeded"
    assert service.beat() == []  # taken once
    # The request for a pipeline this runner does not have stays open for one that has it.
    assert [r.pipeline for r in service.ledger.open_run_requests()] == ["unknown"]


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


def test_a_run_request_with_params_runs_with_them_and_the_manifest_says_so(project) -> None:
    project.pipeline("ranked", RANKED)
    service = SchedulerService(
        project.pipelines, reports_dir=project.reports, clock=ManualClock(START), node="p"
    )
    service.start(watch=False, loop=False)
    try:
        with Ledger(project.reports / ".eil" / "ledger.sqlite3", clock=service.clock.now) as web:
            web.request_run("ranked", requested_by="serve token", params={"top_n": "3"})
            # The file changed after the page asked: this one no longer fits, and is dropped.
            web.request_run("ranked", requested_by="serve token", params={"top_n": "x"})
        assert len(service.beat()) == 2
        at = START.replace(microsecond=0)
        assert wait_for(lambda: (r := service.ledger.get("ranked", at)) and r.status != "running")
        record = service.ledger.get("ranked", at)
        assert record is not None and record.status == "succeeded"
        (manifest,) = (project.reports / "ranked").glob("*.json")
        facts = json.loads(manifest.read_text())
        assert (facts["params"]["top_n"], facts["params_overridden"]) == (3, ["top_n"])
        assert facts["queries"]["q"]["rows"] == 1
        (report,) = [f for f in facts["files"] if f["path"].endswith(".md")]
        assert "| 3 |" in (project.reports / "ranked" / report["path"]).read_text()
    finally:
        assert service.stop(grace=30)


def test_a_clean_stop_says_goodbye(project) -> None:
    project.pipeline("hourly", PIPELINE)
    clock = ManualClock(START)
    service = SchedulerService(
        project.pipelines, reports_dir=project.reports, clock=clock, node="bye"
    )
    service.start(watch=False, loop=False)
    service.beat()
    assert service.stop(grace=30)
    with Ledger(project.reports / ".eil" / "ledger.sqlite3", read_only=True) as reader:
        (node,) = reader.nodes()
    assert node.stopped is True
