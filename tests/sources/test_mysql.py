"""The MySQL/MariaDB source against a real MariaDB server (see ``servers.py``)."""

from __future__ import annotations

import contextlib
import sys
import threading
from datetime import date, timedelta

import pytest
from servers import MARKER, OUTSIDER_PASSWORD, MariaDBServer, free_port, wait_until

from eil_pipelines.errors import SourceError
from eil_pipelines.sources.mysql import MySQLSource
from eil_pipelines.sources.server import ConnectionFailed, MissingDriver


def source(maria: MariaDBServer, url: str | None = None, timeout: float | None = 30) -> MySQLSource:
    """A source on ``url`` (default: the reader user)."""
    return MySQLSource(
        "daily",
        "shop",
        url or maria.url(),
        statement_timeout=None if timeout is None else timedelta(seconds=timeout),
    )


def test_a_query_returns_a_frame_with_bound_parameters(mariadb_server: MariaDBServer) -> None:
    with source(mariadb_server) as src:
        frame = src.run(
            "kpis",
            "SELECT count(*) AS orders, '$region 100%' AS note, `region` "
            "FROM orders WHERE region = $region AND order_date >= $start GROUP BY region",
            {"region": "EMEA", "start": date(2000, 1, 1)},
        )
    with contextlib.closing(mariadb_server.admin()) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM orders WHERE region = 'EMEA'")
        expected = cur.fetchone()[0]
    assert expected > 0
    assert frame["orders"].tolist() == [expected]
    assert frame["note"].tolist() == ["$region 100%"]


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE evil (x int)",
        "DROP TABLE orders",
        "/* hidden */ TRUNCATE orders",
        "SET GLOBAL max_connections = 1",
        "GRANT ALL ON *.* TO 'reader'@'%'",
    ],
)
def test_statements_that_are_not_queries_never_reach_the_server(
    mariadb_server: MariaDBServer, sql: str
) -> None:
    with source(mariadb_server) as src, pytest.raises(SourceError) as caught:
        src.run("evil", sql, {})
    # The statement check (sqlglot) refuses them first, before the keyword check.
    assert "only one SELECT (or WITH ... SELECT) statement is allowed; found" in str(caught.value)


def test_writes_fail_in_the_read_only_transaction(mariadb_server: MariaDBServer) -> None:
    """The second fence, behind the statement check: the transaction each query runs in."""
    import pymysql

    # Root over the socket may write anything: only the transaction stops it.
    url = f"mysql://root@localhost/analytics?unix_socket={mariadb_server.socket_path}"
    with source(mariadb_server, url) as src:
        cur = src.connection.cursor()
        src._begin(cur)
        with pytest.raises(pymysql.err.OperationalError) as caught:
            cur.execute("INSERT INTO secrets VALUES ('written')")
        assert caught.value.args[0] == 1792  # Cannot execute statement in a READ ONLY transaction
        src._end()
        with pytest.raises(SourceError, match="only one statement is allowed in a query; found 2"):
            src.run("two", "SELECT 1; DELETE FROM secrets", {})
    with contextlib.closing(mariadb_server.admin()) as conn, conn.cursor() as cur:
        cur.execute("SELECT note FROM secrets")
        assert cur.fetchall() == (("hidden",),)


def test_a_syntax_error_names_the_line(mariadb_server: MariaDBServer) -> None:
    with source(mariadb_server) as src, pytest.raises(SourceError) as caught:
        src.run("kpis", "SELECT\n  region\nFROMM orders", {})
    assert "You have an error in your SQL syntax" in str(caught.value)
    assert "at line 3" in str(caught.value)


def test_permission_denied(mariadb_server: MariaDBServer) -> None:
    with (
        source(mariadb_server, mariadb_server.url("outsider", OUTSIDER_PASSWORD)) as src,
        pytest.raises(SourceError) as caught,
    ):
        src.run("kpis", "SELECT count(*) FROM orders", {})
    message = str(caught.value)
    assert "SELECT command denied to user 'outsider'" in message
    assert "grant the connection's user SELECT" in message
    assert MARKER not in message


def test_a_server_timeout_stops_the_query(mariadb_server: MariaDBServer) -> None:
    with source(mariadb_server, timeout=0.3) as src:
        with pytest.raises(SourceError) as caught:
            src.run("slow", "SELECT sleep(30) AS s FROM orders LIMIT 1", {})
        assert "timed out on the server (statement_timeout 0.3s)" in str(caught.value)
        assert src.ping()
        assert src.run("after", "SELECT 1 AS one", {})["one"].tolist() == [1]


def _running(maria: MariaDBServer, text: str) -> bool:
    with contextlib.closing(maria.admin()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM information_schema.processlist "
            "WHERE command = 'Query' AND id <> connection_id() AND info LIKE %s",
            (f"%{text}%",),
        )
        return bool(cur.fetchone()[0])


def test_interrupt_kills_the_query_on_the_server(mariadb_server: MariaDBServer) -> None:
    failure: list[BaseException] = []
    with source(mariadb_server, timeout=None) as src:

        def work() -> None:
            try:
                src.run("slow", "SELECT sleep(60) AS marker_for_kill", {})
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=work)
        thread.start()
        wait_until(lambda: _running(mariadb_server, "marker_for_kill"), "query running")
        src.interrupt()
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert not _running(mariadb_server, "marker_for_kill")
        # MariaDB's SLEEP() returns 1 when killed instead of raising: either way it stopped.
        if failure:
            assert "interrupted" in str(failure[0])
        assert src.ping()


def test_server_version(mariadb_server: MariaDBServer) -> None:
    with source(mariadb_server) as src:
        assert src.server_version().startswith("MariaDB ")
        assert src.read_only_check() is None


def _connect_error(url: str) -> str:
    with pytest.raises(ConnectionFailed) as caught:
        MySQLSource("daily", "shop", url)
    message = str(caught.value)
    assert MARKER not in message
    assert url not in message
    return message


def test_wrong_password(mariadb_server: MariaDBServer) -> None:
    message = _connect_error(mariadb_server.url(password=f"wrong-{MARKER}"))
    assert message == (
        'pipeline "daily", connection "shop": authentication failed for user "reader" '
        f"at 127.0.0.1:{mariadb_server.port}: check the user name and the password variable"
    )


def test_unknown_database(mariadb_server: MariaDBServer) -> None:
    message = _connect_error(
        mariadb_server.url("root", "", db="nowhere").replace("root:@", "root@")
        + f"?unix_socket={mariadb_server.socket_path}"
    )
    assert 'database "nowhere" does not exist' in message


def test_closed_port() -> None:
    port = free_port()
    message = _connect_error(f"mysql://reader:{MARKER}@127.0.0.1:{port}/analytics")
    assert f"cannot reach the server at 127.0.0.1:{port}" in message


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymysql", None)
    with pytest.raises(MissingDriver) as caught:
        MySQLSource("daily", "shop", f"mysql://u:{MARKER}@127.0.0.1:1/db")
    assert "pip install 'eil-pipelines[mysql]'" in str(caught.value)


@pytest.mark.parametrize("text", ["$p", "100%", "%(p)s", "%s %% %", "-- $p", "it\\'s $p", "#$p"])
def test_literals_reach_the_server_intact(mariadb_server: MariaDBServer, text: str) -> None:
    sql = f"SELECT '{text}' AS lit, $p AS p, 1 AS `$p %` # trailing $p %\n"
    with source(mariadb_server) as src:
        frame = src.run("q", sql, {"p": "bound"})
    assert frame["lit"].tolist() == [text.replace("\\'", "'")]
    assert frame["p"].tolist() == ["bound"]
    assert list(frame.columns) == ["lit", "p", "$p %"]
