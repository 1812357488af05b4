"""The Postgres ledger's own guarantees, on a real server: leases on the database's
clock, fencing, SKIP LOCKED queues, several processes, unreachable servers and
secrets.  The common contract runs on both backends in the other ledger tests."""

from __future__ import annotations

import inspect
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from ledger_helpers import NOW, T0

from eil_pipelines.errors import EilError
from eil_pipelines.ledger import LedgerBackend, LedgerError, LedgerStateError, open_ledger
from eil_pipelines.ledger.records import LedgerUnavailableError, NewDelivery

psycopg = pytest.importorskip("psycopg", reason="pip install -e '.[postgres]' installs psycopg")

from eil_pipelines.ledger.postgres import PostgresLedger  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _expire(server, table: str = "eil_runs") -> None:
    """Move every lease of ``table`` into the past, as if its holder stopped beating."""
    with server.admin() as conn:
        conn.execute(f"UPDATE {table} SET lease_until = now() - interval '1 second'")


def test_the_postgres_backend_implements_the_interface_with_the_same_signatures():
    assert issubclass(PostgresLedger, LedgerBackend)
    assert not inspect.isabstract(PostgresLedger)
    for name, declared in inspect.getmembers(LedgerBackend):
        if name.startswith("_") or not callable(declared):
            continue
        implemented = getattr(PostgresLedger, name)
        assert (
            inspect.signature(implemented).parameters == inspect.signature(declared).parameters
        ), name


def test_open_ledger_opens_a_postgres_url(pg_ledger_server):
    pg_ledger_server.wipe()
    with open_ledger(pg_ledger_server.url, lease=timedelta(seconds=7), node="n1") as ledger:
        assert isinstance(ledger, PostgresLedger)
        assert ledger.lease == timedelta(seconds=7) and ledger.node == "n1"
        assert "eil_runner" not in ledger.display_path
        assert "SECRET" not in ledger.display_path
        assert ledger.display_path.endswith("/eil")


def test_a_claim_carries_a_lease_on_the_database_clock_whatever_now_says(
    pg_ledger, pg_ledger_server
):
    # The runner's clock is two minutes ahead: its lease still counts from the database's.
    skewed = pg_ledger.now() + timedelta(minutes=2)
    pg_ledger.claim("sales", T0, run_id="r1", now=skewed)
    assert pg_ledger.mark_abandoned(now=skewed) == []
    with pg_ledger_server.admin() as conn:
        left = conn.execute("SELECT lease_until - now() FROM eil_runs").fetchone()[0]
    assert timedelta(seconds=20) < left <= timedelta(seconds=30)


def test_an_expired_lease_is_abandoned_once_then_reclaimed_as_the_next_attempt(
    pg_ledger, pg_ledger_server
):
    first = pg_ledger.claim("sales", T0, run_id="r1", now=NOW)
    _expire(pg_ledger_server)
    with PostgresLedger(pg_ledger_server.url, node="other", create=False) as other:
        gone = other.mark_abandoned()
        assert [(r.pipeline, r.scheduled_at, r.status) for r in gone] == [
            ("sales", T0, "abandoned")
        ]
        assert "the process running it stopped" in gone[0].error
        assert other.mark_abandoned() == []  # at most one caller abandons a row
        again = other.reclaim(
            "sales", T0, run_id="r1", attempt=first.attempt + 1, allowed_from=("abandoned",)
        )
        assert again is not None and again.attempt == 2
    # The late runner is fenced out: its finish is refused, and it no longer holds the run.
    assert not pg_ledger.holds("sales", T0, run_id="r1", attempt=1)
    with pytest.raises(LedgerStateError, match=r"belongs to run r1 \(attempt 2\)"):
        pg_ledger.finish("sales", T0, status="succeeded", run_id="r1", attempt=1)
    assert pg_ledger.get("sales", T0).status == "running"


def test_a_finish_after_the_lease_expired_but_before_a_takeover_still_counts(
    pg_ledger, pg_ledger_server
):
    pg_ledger.claim("sales", T0, run_id="r1", now=NOW)
    _expire(pg_ledger_server)
    done = pg_ledger.finish("sales", T0, status="succeeded", run_id="r1", attempt=1, now=NOW)
    assert done.status == "succeeded"
    assert pg_ledger.mark_abandoned() == []


def test_the_heartbeat_renews_every_lease_this_process_holds(pg_ledger, pg_ledger_server):
    pg_ledger.claim("sales", T0, run_id="r1", now=NOW)
    pg_ledger.acquire_lease("backfill:sales", holder="backfill sales")
    _expire(pg_ledger_server)
    _expire(pg_ledger_server, "eil_leases")
    assert pg_ledger.renew_leases() == 2
    assert pg_ledger.mark_abandoned() == []
    # Only the runs in flight: a row whose run ended without its finish is let go.
    pg_ledger.claim("sales", T0 + timedelta(days=1), run_id="r2", now=NOW)
    _expire(pg_ledger_server)
    assert pg_ledger.renew_leases([("sales", T0)]) == 2
    assert [r.scheduled_at for r in pg_ledger.mark_abandoned()] == [T0 + timedelta(days=1)]
    with PostgresLedger(pg_ledger_server.url, create=False) as other:
        # Same process: the lease's holder is alive and renewed, so it is refused.
        assert other.acquire_lease("backfill:sales", holder="x") is not None


def test_an_expired_named_lease_is_taken_over(pg_ledger, pg_ledger_server):
    assert pg_ledger.acquire_lease("backfill:sales", holder="backfill sales") is None
    with pg_ledger_server.admin() as conn:
        conn.execute("UPDATE eil_leases SET host = 'elsewhere', pid = 1")
    assert (
        pg_ledger.acquire_lease("backfill:sales", holder="b")
        == "backfill sales (pid 1 on elsewhere)"
    )
    _expire(pg_ledger_server, "eil_leases")
    assert pg_ledger.acquire_lease("backfill:sales", holder="b") is None
    assert pg_ledger.release_lease("backfill:sales") is True
    assert pg_ledger.release_lease("backfill:sales") is False


def test_messages_are_taken_once_by_many_threads_with_skip_locked(pg_ledger):
    with pg_ledger.delivery_batch(now=NOW) as batch:
        for n in range(40):
            batch.add(
                "sales",
                T0,
                NewDelivery("report", "email", f"u{n}@example.com", f"u{n}@example.com", "s", b"x"),
            )
    taken: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        while (got := pg_ledger.claim_delivery(now=NOW + timedelta(seconds=1))) is not None:
            with lock:
                taken.append(got[0].id)
            pg_ledger.finish_delivery(got[0].id, status="sent", now=NOW)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == list(range(1, 41))
    assert {d.status for d in pg_ledger.deliveries()} == {"sent"}


def test_a_sending_row_whose_lease_expired_is_recovered(pg_ledger, pg_ledger_server):
    with pg_ledger.delivery_batch(now=NOW) as batch:
        batch.add("sales", T0, NewDelivery("report", "email", "a@x.org", "a@x.org", "s", b"m"))
    row, _payload = pg_ledger.claim_delivery(now=NOW)
    assert pg_ledger.recover_deliveries(now=NOW) == []  # its owner lives
    with pg_ledger_server.admin() as conn:
        conn.execute("UPDATE eil_outbox SET host = 'elsewhere'")
    _expire(pg_ledger_server, "eil_outbox")
    recovered = pg_ledger.recover_deliveries(now=NOW)
    assert [(r.id, r.status) for r in recovered] == [(row.id, "failed")]
    assert pg_ledger.finish_delivery(row.id, status="sent", now=NOW) is None  # fenced


def test_heartbeats_and_run_requests(pg_ledger):
    pg_ledger.beat("n1", host="h", pid=1, version="1", started_at=NOW, running=2, last_error=None)
    pg_ledger.beat("n2", host="h", pid=2, version="1", started_at=NOW, running=0, last_error="x")
    nodes = pg_ledger.nodes()
    assert [n.node for n in nodes] == ["n2", "n1"] or {n.node for n in nodes} == {"n1", "n2"}
    assert next(n for n in nodes if n.node == "n1").running == 2
    pg_ledger.beat(
        "n1",
        host="h",
        pid=1,
        version="1",
        started_at=NOW,
        running=0,
        last_error=None,
        stopped=True,
    )
    assert next(n for n in pg_ledger.nodes() if n.node == "n1").stopped
    ids = [pg_ledger.request_run("sales", requested_by="serve 127.0.0.1") for _ in range(20)]
    pg_ledger.request_run("ops", requested_by="t")
    taken: list[int] = []
    lock = threading.Lock()

    def take(node: str) -> None:
        got = pg_ledger.take_run_requests(node, ["sales"])
        with lock:
            taken.extend(r.id for r in got)

    threads = [threading.Thread(target=take, args=(f"n{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == ids
    assert pg_ledger.take_run_requests("n9", ["sales"]) == []
    assert [r.pipeline for r in pg_ledger.take_run_requests("n9", ["ops", "sales"])] == ["ops"]
    pg_ledger.request_run("sales", requested_by="serve token", params={"top_n": "5"})
    assert [r.params for r in pg_ledger.take_run_requests("n9", ["sales"])] == [{"top_n": "5"}]


def test_a_version_1_ledger_gains_request_params_and_keeps_its_requests(
    pg_ledger_server, pg_ledger
):
    from eil_pipelines.ledger.postgres_schema import PG_SCHEMA_VERSION, migrate_postgres

    with pg_ledger_server.admin() as conn:
        # The ledger as schema version 1 left it, with a request in it.
        conn.execute("ALTER TABLE eil_run_requests DROP COLUMN params")
        conn.execute("UPDATE eil_meta SET value = '1' WHERE key = 'schema_version'")
        conn.execute("INSERT INTO eil_run_requests (pipeline, requested_by) VALUES ('ops', 't')")
        assert migrate_postgres(conn) == 1
        assert PG_SCHEMA_VERSION == 2
    (old,) = pg_ledger.take_run_requests("n1", ["ops"])
    assert (old.pipeline, old.requested_by, old.params) == ("ops", "t", {})


RACE = """
import sys
from datetime import datetime, timedelta, timezone
from eil_pipelines.ledger import open_ledger

ledger = open_ledger(sys.argv[1], create=False)
print("ready", flush=True)
sys.stdin.readline()
t0 = datetime(2026, 11, 27, 6, tzinfo=timezone.utc)
won = [str(i) for i in range(40)
       if ledger.claim("sales", t0 + timedelta(hours=i), run_id=sys.argv[2] + str(i))]
print(" ".join(won), flush=True)
"""


def test_claims_racing_from_three_processes_win_each_key_once(pg_ledger_server):
    pg_ledger_server.wipe()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, pg_ledger_server.url, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b", "c")
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    won = [proc.communicate(timeout=120)[0].split() for proc in procs]
    assert sorted(int(k) for keys in won for k in keys) == list(range(40))


def test_an_unreachable_server_is_a_ledger_error_without_the_password():
    from servers import MARKER, free_port

    url = f"postgresql://eil_runner:pw-{MARKER}@127.0.0.1:{free_port()}/eil"
    with pytest.raises(LedgerUnavailableError) as caught:
        open_ledger(url)
    text = str(caught.value)
    assert text.startswith("run ledger postgresql://127.0.0.1:")
    assert "cannot be reached" in text
    assert MARKER not in text and "eil_runner" not in text


def test_a_wrong_password_is_refused_without_showing_it(pg_ledger_server):
    from servers import MARKER

    url = pg_ledger_server.url.replace("runner-", "wrong-")
    with pytest.raises(LedgerError) as caught:
        open_ledger(url)
    assert MARKER not in str(caught.value)
    assert "password authentication failed" in str(caught.value)


def test_a_role_without_the_tables_is_told_to_run_ledger_init(pg_ledger_server):
    from servers import DATABASE, READER_PASSWORD

    url = pg_ledger_server.pg.url("reader", READER_PASSWORD, DATABASE)
    with pytest.raises(EilError, match=r"ledger init"):
        PostgresLedger(url, create=False)


def test_a_restarted_server_is_reconnected_to(pg_ledger_server):
    from servers import wait_until

    pg_ledger_server.wipe()
    with PostgresLedger(pg_ledger_server.url, create=False) as ledger:
        ledger.claim("sales", T0, run_id="r1", now=NOW)
        pg_ledger_server.pg.server.restart()

        def works() -> bool:
            try:
                return ledger.get("sales", T0) is not None
            except LedgerUnavailableError as exc:
                assert "SECRET" not in str(exc)
                return False

        assert wait_until(works, "the ledger answering again")


def test_a_read_only_postgres_ledger_refuses_writes(pg_ledger_server):
    pg_ledger_server.wipe()
    with PostgresLedger(pg_ledger_server.url, read_only=True) as ledger:
        assert ledger.history() == []
        with pytest.raises(LedgerError, match="read-only"):
            ledger.claim("sales", T0, run_id="r1", now=NOW)


def test_the_site_lock_is_held_by_one_runner_at_a_time(pg_ledger, pg_ledger_server):
    held = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with pg_ledger.site_lock():
            order.append("first in")
            held.set()
            release.wait(60)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    assert held.wait(60)
    with PostgresLedger(pg_ledger_server.url, create=False) as other:

        def second() -> None:
            with other.site_lock():
                order.append("second in")

        waiter = threading.Thread(target=second)
        waiter.start()
        waiter.join(0.5)  # give it a chance to (wrongly) get in; the assertion is on order
        release.set()
        thread.join(60)
        waiter.join(60)
    assert order == ["first in", "first out", "second in"]


def test_ledger_init_creates_the_tables_and_prints_the_grants(pg_ledger_server, capsys, tmp_path):
    from eil_pipelines.cli import main

    (tmp_path / "pipelines").mkdir()
    args = ["ledger", "init", str(tmp_path / "pipelines"), "--url", pg_ledger_server.admin_url]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "is ready (schema version 2/2)" in out
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON eil_meta" in out
    assert "SECRET" not in out


def test_a_waiting_row_holds_its_key_renews_its_lease_and_expires_like_a_run(
    pg_ledger, pg_ledger_server
):
    held = pg_ledger.wait("report", T0, run_id="w1", note="waiting for sales", now=NOW)
    assert held is not None and (held.status, held.error) == ("waiting", "waiting for sales")
    assert held.summary == {"checks": 0}
    assert pg_ledger.claim("report", T0, run_id="r2", now=NOW) is None
    assert pg_ledger.wait("report", T0, run_id="w2", note="again", now=NOW) is None
    assert pg_ledger.note_waiting("report", T0, note="waiting for sales (failed)", checks=3)
    assert pg_ledger.get("report", T0).summary == {"checks": 3}
    with pytest.raises(ValueError, match="final status, not 'waiting'"):
        pg_ledger.finish("report", T0, status="waiting", run_id="w1")
    # The heartbeat renews a waiting row even when no run is in flight.
    _expire(pg_ledger_server)
    assert pg_ledger.renew_leases([]) == 1
    assert pg_ledger.mark_abandoned() == []
    # Its runner stops beating: another runner abandons it, once.
    _expire(pg_ledger_server)
    with PostgresLedger(pg_ledger_server.url, node="other", create=False) as other:
        [gone] = other.mark_abandoned()
        assert (gone.pipeline, gone.status) == ("report", "abandoned")
        assert not other.note_waiting("report", T0, note="late", checks=4)


def test_a_waiting_row_starts_by_one_conditional_update(pg_ledger):
    pg_ledger.wait("report", T0, run_id="w1", note="waiting for sales", now=NOW)
    started = pg_ledger.reclaim(
        "report", T0, run_id="w1", attempt=1, now=NOW, allowed_from=("waiting",)
    )
    assert started is not None and started.status == "running"
    assert (
        pg_ledger.reclaim("report", T0, run_id="w1", attempt=1, now=NOW, allowed_from=("waiting",))
        is None
    )
    done = pg_ledger.finish("report", T0, status="succeeded", run_id="w1", attempt=1)
    assert done.status == "succeeded"
