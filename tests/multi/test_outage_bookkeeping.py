"""A runner's bookkeeping through a real Postgres outage: the fire times it could not
record while the ledger was down each get their row once it is back (issue 12's
"every fire time gets exactly one row", issue 13's outages).

A run in flight through the outage (its finish waiting for the ledger) skips
its pipeline's next fire times; those skips could not be written then, and
were once lost, leaving a gap in the ledger.  They are now missed work for the
catch-up, like the times that could not be claimed.  Driven beat by beat, with
an injected clock; the outage is the real server stopped and started.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eil_pipelines.app.runner import Runner
from eil_pipelines.ledger import LedgerUnavailableError
from eil_pipelines.schedule.loop import Firing, JobOptions

pytestmark = pytest.mark.slow

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
EVERY = timedelta(seconds=2)


def test_the_missed_times_of_an_outage_get_their_rows_when_it_ends(ledger_server):
    from eil_pipelines.ledger.postgres import PostgresLedger

    ledger_server.wipe()
    ran: list[Firing] = []
    ledger = PostgresLedger(ledger_server.url, create=False, node="r1")
    runner = Runner(
        ledger,
        node="r1",
        run=lambda name, firing: ran.append(firing),
        options=lambda name: JobOptions(catch_up="latest") if name == "p" else None,
        in_flight=lambda: 1,
        held=lambda: [],
        clock=lambda: T0,
        interval=3600,  # beats are driven by the test
        workers=1,
    )
    # Another runner ran one of the outage's times before it lost the ledger too.
    ledger.claim("p", T0 + 4 * EVERY, run_id="other", now=T0)
    server = ledger_server.pg.server
    try:
        runner.beat_once()
        server.stop()
        runner.beat_once()
        assert runner.outage.down
        with pytest.raises(LedgerUnavailableError):
            ledger.record_skipped("p", T0 + EVERY, reason="previous run still going", now=T0)
        # What the service hands the runner when its writes fail during the outage:
        # skips it could not record (1, 2, 4) and times it could not claim (5, 6, 7).
        for k in (1, 2, 4, 5, 6, 7):
            runner.missed("p", T0 + k * EVERY)
        runner.missed("gone", T0 + EVERY)  # a pipeline no longer there: nothing to do
    finally:
        server.start()
    runner.beat_once()
    assert not runner.outage.down
    runner._pool.shutdown(wait=True)  # the caught-up run, submitted to its pool
    rows = {(r.scheduled_at - T0) // EVERY: (r.status, r.error) for r in ledger.history(limit=None)}
    ledger.close()
    missed = "missed while the run ledger was unreachable"
    assert rows == {
        1: ("skipped", missed),
        2: ("skipped", missed),
        4: ("running", None),  # the other runner's row stays as it was
        5: ("skipped", missed),
        6: ("skipped", missed),
    }
    # catch_up = "latest": the newest missed time runs (the service claims its row).
    assert [(f.key, f.scheduled_at) for f in ran] == [("p", T0 + 7 * EVERY)]
