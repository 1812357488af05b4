"""A run that waited for its upstream when its runner died is taken over by another
runner on the shared Postgres ledger as attempt 2, and waits again: it never runs
before its upstream has (issue 13's fail-over, for runs that wait, issue 15).

The surviving runner is a scheduler service in this process, with a manual clock
for its schedule; the lease is the database's, so the takeover is waited for as
an event.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from multi_helpers import wait_for
from pg_ledger import RUNNER_PASSWORD

from eil_pipelines.app.service import SchedulerService
from eil_pipelines.ledger.postgres import PostgresLedger
from eil_pipelines.schedule.testing import ManualClock

pytestmark = pytest.mark.slow

SIX = datetime(2026, 6, 3, 6, tzinfo=UTC)
FIVE = SIX - timedelta(hours=1)


_DEAD_RUNNER = """
import sys
from datetime import datetime, timedelta
from eil_pipelines.ledger.postgres import PostgresLedger
at = datetime.fromisoformat(sys.argv[2])
with PostgresLedger(sys.argv[1], lease=timedelta(seconds=2), node="dead") as dead:
    assert dead.wait("report", at, run_id="dead", note="waiting for load", now=at)
"""


def _pipeline(schedule: str) -> str:
    return (
        f'title = "T"\n[schedule]\ntimezone = "UTC"\n{schedule}\n'
        '[queries.q]\nsql = "SELECT 1 AS x"\n'
    )


def test_a_waiting_run_taken_over_from_a_dead_runner_waits_again(ledger_server, tmp_path: Path):
    ledger_server.wipe()
    (tmp_path / "pipelines").mkdir()
    # load's 05:00 run is made elsewhere (catch_up = "none": the survivor never runs it).
    (tmp_path / "pipelines" / "load.toml").write_text(
        _pipeline('daily = "05:00"\ncatch_up = "none"')
    )
    (tmp_path / "pipelines" / "report.toml").write_text(
        _pipeline('daily = "06:00"\nafter = ["load"]\nwait_for = "6h"')
    )
    port = ledger_server.pg.port
    (tmp_path / "eil.toml").write_text(
        "[ledger]\n"
        f'url = "postgresql://eil_runner:${{EIL_LEDGER_PASSWORD}}@127.0.0.1:{port}/eil"\n'
        'lease = "2s"\n'
    )
    # The dead runner, a process of its own: it held report's 06:00 run waiting, and exited.
    seeded = subprocess.run(
        [sys.executable, "-c", _DEAD_RUNNER, ledger_server.url, SIX.isoformat()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    env = {**os.environ, "EIL_LEDGER_PASSWORD": RUNNER_PASSWORD}
    clock = ManualClock(SIX + timedelta(minutes=30))
    service = SchedulerService(
        tmp_path / "pipelines",
        reports_dir=tmp_path / "reports",
        clock=clock,
        env=env,
        node="survivor",
    )
    service.start(watch=False, loop=False)
    try:

        def row():
            with PostgresLedger(ledger_server.url, create=False) as reader:
                return reader.get("report", SIX)

        # After the lease, the survivor takes the run over: it waits again, as attempt 2.
        wait_for(
            lambda: (r := row()) is not None and (r.status, r.attempt) == ("waiting", 2),
            "the waiting run taken over as attempt 2",
        )
        assert service.waiter is not None
        service.waiter.check()
        assert service.scheduler.wait_idle(300)
        held = row()
        assert (held.status, held.attempt) == ("waiting", 2), (held.status, held.error)
        # Another runner makes load's 05:00 run; the survivor's re-check finds it.
        with PostgresLedger(ledger_server.url, create=False, node="elsewhere") as other:
            other.claim("load", FIVE, run_id="elsewhere", now=SIX + timedelta(minutes=31))
            other.finish("load", FIVE, status="succeeded", now=SIX + timedelta(minutes=31))
        clock.set(SIX + timedelta(minutes=32))
        service.waiter.check()
        assert service.scheduler.wait_idle(300)
        done = row()
        assert (done.status, done.attempt) == ("succeeded", 2), (done.status, done.error)
    finally:
        service.stop(grace=30)
