"""The Postgres source against a real PostgreSQL server (see ``servers.py``)."""

from __future__ import annotations

import sys
import threading
from datetime import date, timedelta
from decimal import Decimal

import psycopg
import pytest
from servers import ADMIN_PASSWORD, MARKER, OUTSIDER_PASSWORD, PostgresServer, free_port, wait_until

from eil_pipelines.errors import SourceError
from eil_pipelines.sources.postgres import PostgresSource
from eil_pipelines.sources.server import ConnectionFailed, MissingDriver


def source(
    pg: PostgresServer, url: str | None = None, timeout: float | None = 30
) -> PostgresSource:
    """A source on ``url`` (default: the reader role)."""
    return PostgresSource(
        "daily",
        "warehouse",
        url or pg.url(),
        statement_timeout=None if timeout is None else timedelta(seconds=timeout),
    )


def test_a_query_returns_a_frame_with_bound_parameters(postgres_server: PostgresServer) -> None:
    with source(postgres_server) as src:
        frame = src.run(
            "kpis",
            "SELECT count(*) AS orders, sum(revenue) AS revenue, '$region 100%' AS note "
            "FROM orders WHERE region = $region AND order_date >= $start",
            {"region": "EMEA", "start": date(2000, 1, 1), "unused": 1},
        )
    with postgres_server.admin() as conn:
        expected = conn.execute("SELECT count(*) FROM orders WHERE region = 'EMEA'").fetchone()[0]
    assert frame["orders"].tolist() == [expected]
    assert expected > 0
    assert frame["note"].tolist() == ["$region 100%"]
    assert frame["revenue"].dtype.kind == "f"  # numeric arrives as float, not Decimal


def test_a_missing_parameter_is_named(postgres_server: PostgresServer) -> None:
    with source(postgres_server) as src, pytest.raises(SourceError) as caught:
        src.run("kpis", "SELECT $nope AS x", {"other": 1})
    assert "$nope, which is not a parameter" in str(caught.value)


def test_a_session_default_cannot_turn_writes_back_on(postgres_server: PostgresServer) -> None:
    # The admin may write: only the statement check and the read-only transaction stand
    # in the way.  The check refuses set_config() first ...
    admin_url = postgres_server.url("eil_admin", ADMIN_PASSWORD)
    escape = "SELECT set_config('default_transaction_read_only', 'off', false) AS s"
    with source(postgres_server, admin_url) as src:
        with pytest.raises(SourceError, match=r"the function set_config\(\) is not allowed"):
            src.run("escape", escape, {})
        # ... and behind it, as if the check were bypassed, the transaction each query
        # runs in still refuses a write after the session default was turned off.
        with src.connection.cursor() as cur:
            src._begin(cur)
            cur.execute(escape)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                cur.execute("INSERT INTO secrets VALUES ('written') RETURNING note")
        src._end()
        assert src.clean
        assert src.run("after", "SELECT count(*) AS n FROM secrets", {})["n"].tolist() == [1]
    with postgres_server.admin() as conn:
        assert conn.execute("SELECT note FROM secrets").fetchall() == [("hidden",)]


def test_several_statements_are_refused(postgres_server: PostgresServer) -> None:
    with source(postgres_server) as src, pytest.raises(SourceError) as caught:
        src.run("two", "SELECT 1; SELECT 2", {})
    assert "only one statement is allowed in a query; found 2 (SELECT, SELECT)" in str(caught.value)


def test_a_syntax_error_names_the_line_inside_the_sql(postgres_server: PostgresServer) -> None:
    with source(postgres_server) as src, pytest.raises(SourceError) as caught:
        src.run("kpis", "SELECT\n  region,\n  count(*)\nFROMM orders\nGROUP BY region", {})
    message = str(caught.value)
    assert message.startswith('pipeline "daily", query "kpis": syntax error at or near')
    assert "(line 4 of the SQL)" in message


def test_permission_denied_names_the_table_and_the_fix(postgres_server: PostgresServer) -> None:
    with (
        source(postgres_server, postgres_server.url("outsider", OUTSIDER_PASSWORD)) as src,
        pytest.raises(SourceError) as caught,
    ):
        src.run("kpis", "SELECT count(*) FROM orders", {})
    assert "permission denied for table orders" in str(caught.value)
    assert "grant the connection's role SELECT" in str(caught.value)
    assert MARKER not in str(caught.value)


def test_a_server_timeout_stops_the_query_and_leaves_the_connection_clean(
    postgres_server: PostgresServer,
) -> None:
    with source(postgres_server, timeout=0.3) as src:
        with pytest.raises(SourceError) as caught:
            src.run("slow", "SELECT pg_sleep(30) AS s", {})
        assert "timed out on the server (statement_timeout 0.3s)" in str(caught.value)
        assert src.clean and src.ping()
        assert src.run("after", "SELECT 1 AS one", {})["one"].tolist() == [1]


def _running(pg: PostgresServer, text: str) -> bool:
    with pg.admin() as conn:
        rows = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
            (f"%{text}%",),
        ).fetchone()
    return bool(rows and rows[0])


def test_interrupt_cancels_the_query_on_the_server(postgres_server: PostgresServer) -> None:
    failure: list[BaseException] = []
    with source(postgres_server, timeout=None) as src:

        def work() -> None:
            try:
                src.run("slow", "SELECT pg_sleep(60) AS marker_for_interrupt", {})
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=work)
        thread.start()
        wait_until(lambda: _running(postgres_server, "marker_for_interrupt"), "query running")
        src.interrupt()
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert "the query was interrupted" in str(failure[0])
        assert not _running(postgres_server, "marker_for_interrupt")
        assert src.ping()


def test_describe_prepares_without_running(postgres_server: PostgresServer) -> None:
    with source(postgres_server) as src:
        columns = src.describe(
            "kpis", "SELECT 1 / 0 AS boom, region FROM orders WHERE region = $r", {"r": "x"}
        )
        assert columns == ["boom", "region"]
        with pytest.raises(SourceError, match=r'column "nope" does not exist \(line 1'):
            src.describe("kpis", "SELECT nope FROM orders", {})


def test_server_version_and_read_only_check(postgres_server: PostgresServer) -> None:
    with source(postgres_server) as src:
        assert src.server_version().startswith("PostgreSQL ")
        assert src.read_only_check() is None


# --- connection errors a person can act on ---------------------------------------


def _connect_error(url: str) -> str:
    with pytest.raises(ConnectionFailed) as caught:
        PostgresSource("daily", "warehouse", url)
    message = str(caught.value)
    assert MARKER not in message
    assert url not in message
    return message


def test_wrong_password(postgres_server: PostgresServer) -> None:
    message = _connect_error(postgres_server.url(password=f"wrong-{MARKER}"))
    assert message == (
        'pipeline "daily", connection "warehouse": authentication failed for user "reader" '
        f"at 127.0.0.1:{postgres_server.port}: check the user name and the password variable"
    )


def test_unknown_database(postgres_server: PostgresServer) -> None:
    message = _connect_error(postgres_server.url(db="nowhere"))
    assert f'database "nowhere" does not exist on 127.0.0.1:{postgres_server.port}' in message


def test_closed_port() -> None:
    port = free_port()
    message = _connect_error(f"postgresql://reader:{MARKER}@127.0.0.1:{port}/analytics")
    assert f"cannot reach the server at 127.0.0.1:{port}" in message
    assert "check the host and port" in message


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    with pytest.raises(MissingDriver) as caught:
        PostgresSource("daily", "warehouse", f"postgresql://u:{MARKER}@127.0.0.1:1/db")
    assert "pip install 'eil-pipelines[postgres]'" in str(caught.value)
    assert MARKER not in str(caught.value)


ADVERSARIAL = [
    "$p",
    "100%",
    "%(p)s",
    "%s %% %",
    "-- not a comment $p",
    "/* not a comment */ $p",
    "$$ $p $$",
    "it''s $p",
    ":p ? $1",
]


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_literals_comments_and_bodies_reach_the_server_intact(
    postgres_server: PostgresServer, text: str
) -> None:
    sql = (
        f"SELECT '{text}' AS lit, $p AS p, $body$ {text} $p $body$ AS body, "
        f'1 AS "$p %" -- trailing $p %\n/* $p % */'
    )
    with source(postgres_server) as src:
        frame = src.run("q", sql, {"p": "bound"})
    assert frame["lit"].tolist() == [text.replace("''", "'")]
    assert frame["p"].tolist() == ["bound"]
    assert frame["body"].tolist() == [f" {text} $p "]
    assert list(frame.columns) == ["lit", "p", "body", "$p %"]


# --- the two fetch paths: ADBC (Arrow) and psycopg (rows) --------------------------

TYPES_SQL = """
SELECT g AS id,
       g::int2 AS small, g::int4 AS medium, (g * 1.5)::real AS single,
       (g * 2.25)::float8 AS double, (g / 3.0)::numeric(12, 4) AS money,
       'row ' || g AS label, g % 2 = 0 AS even,
       date '2026-01-01' + g AS day,
       timestamp '2026-01-01 08:00' + g * interval '1 hour' AS at,
       timestamptz '2026-01-01 08:00+00' + g * interval '1 hour' AS at_tz,
       CASE WHEN g % 3 = 0 THEN NULL ELSE g END AS sometimes
FROM generate_series(1, 50) AS g
WHERE g >= $low
"""


def _both(pg: PostgresServer, sql: str, params: dict[str, object]) -> tuple[object, object]:
    with source(pg) as src:
        assert src.arrow
        through_arrow = src.run("q", sql, params)
        src.arrow = False
        through_rows = src.run("q", sql, params)
    return through_arrow, through_rows


def test_arrow_and_rows_give_identical_frames(postgres_server: PostgresServer) -> None:
    pytest.importorskip("adbc_driver_postgresql", reason="pip install -e '.[test]' installs it")
    import pandas as pd

    arrow, rows = _both(postgres_server, TYPES_SQL, {"low": 2})
    assert len(arrow) == 49  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(arrow, rows)
    assert arrow["small"].dtype == "int64" and arrow["money"].dtype == "float64"  # type: ignore[index]
    assert arrow["sometimes"].dtype == "float64"  # type: ignore[index]


def test_a_text_parameter_the_server_must_coerce_works_on_both_paths(
    postgres_server: PostgresServer,
) -> None:
    # psycopg sends text untyped, so the server reads '2026-06-01' as a timestamp; ADBC
    # types it as text, which Postgres will not compare with a timestamp: psycopg runs it.
    sql = "SELECT count(*) AS n FROM orders WHERE order_ts >= $since"
    arrow, rows = _both(postgres_server, sql, {"since": "2026-06-01"})
    assert arrow["n"].tolist() == rows["n"].tolist()  # type: ignore[index]
    assert arrow["n"].tolist()[0] > 0  # type: ignore[index]


def test_the_arrow_path_is_read_only_and_reports_the_line(postgres_server: PostgresServer) -> None:
    pytest.importorskip("adbc_driver_postgresql", reason="pip install -e '.[test]' installs it")
    admin_url = postgres_server.url("eil_admin", ADMIN_PASSWORD)
    with source(postgres_server, admin_url) as src:
        # The statement check refuses a write before any driver; behind it, ADBC's
        # transaction is read-only too.
        cur = src._arrow_connection().cursor()
        try:
            src._begin(cur)
            with pytest.raises(Exception, match="read-only transaction"):
                cur.execute("INSERT INTO secrets VALUES ('written')")
        finally:
            cur.execute("ROLLBACK")
            cur.close()
        with pytest.raises(SourceError) as caught:
            src.run("kpis", "SELECT\n  region\nFROMM orders", {})
        assert "(line 3 of the SQL)" in str(caught.value)
        assert src.clean
    with postgres_server.admin() as conn:
        assert conn.execute("SELECT note FROM secrets").fetchall() == [("hidden",)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ([1, 2], [1, 2]), (Decimal("1.25"), 1.25), (2**70, float(2**70))],
)
def test_parameters_adbc_cannot_bind_run_through_psycopg(
    postgres_server: PostgresServer, value: object, expected: object
) -> None:
    with source(postgres_server) as src:
        frame = src.run("q", "SELECT $v AS v, 1 AS one", {"v": value})
    got = frame["v"].tolist()[0]
    assert (got is None or got != got) if expected is None else got == expected
