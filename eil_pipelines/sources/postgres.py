"""PostgreSQL through psycopg 3 (``pip install 'eil-pipelines[postgres]'``).

Why psycopg 3 and not ADBC: see ``benchmarks/bench_postgres_fetch.py`` and
``docs/sources.md``.  In short, its fetch is as fast as the reports need and it
gives what a read-only, cancellable source needs: the server's cancel
request, the error fields (SQLSTATE, position) for actionable messages, and a
``describe`` of a prepared statement for ``validate --deep``.

Every query runs in its own explicit ``BEGIN READ ONLY`` transaction with a
``SET LOCAL statement_timeout``, and is rolled back afterwards: a session
setting the SQL could change (``default_transaction_read_only``) is never
relied on.  A connection that is not idle afterwards is closed, never reused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..errors import SourceError
from .params import SQLTokenError, convert
from .server import (
    CONNECT_TIMEOUT,
    ConnectionFailed,
    ServerSource,
    ServerURL,
    line_of,
    load_driver,
    one_line,
    redact,
    remember_version,
)

if TYPE_CHECKING:
    import pandas as pd


EXTRA = "postgres"


def connect(name: str, url: str, *, pipeline: str | None = None) -> Any:
    """Open a psycopg connection (autocommit: transactions are explicit), or raise
    :class:`ConnectionFailed` with a message a person can act on."""
    psycopg = load_driver("psycopg", EXTRA, name)
    try:
        parsed = ServerURL.parse(url)
    except ValueError as exc:
        raise ConnectionFailed(name, str(exc), pipeline=pipeline) from None
    dsn = url.replace("postgres://", "postgresql://", 1).replace(
        "postgresql+psycopg://", "postgresql://", 1
    )
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=int(CONNECT_TIMEOUT.total_seconds()),
            application_name="eil-pipelines",
        )
    except psycopg.Error as exc:
        raise ConnectionFailed(name, _connect_message(exc, parsed), pipeline=pipeline) from None
    from psycopg.types.numeric import FloatLoader

    # numeric → float: reports compute and chart with floats, and Decimal objects
    # would make every column an object column.
    conn.adapters.register_loader("numeric", FloatLoader)
    number = conn.info.server_version
    remember_version(name, f"PostgreSQL {number // 10000}.{number % 10000}")
    return conn


def _connect_message(exc: Exception, url: ServerURL) -> str:
    text = one_line(str(exc))
    sqlstate = getattr(exc, "sqlstate", None)
    user = url.user or "(default user)"
    if sqlstate in ("28P01", "28000") or "password authentication failed" in text:
        message = (
            f'authentication failed for user "{user}" at {url.where}: check the user name '
            "and the password variable"
        )
    elif sqlstate == "3D000" or ("database" in text and "does not exist" in text):
        message = f'database "{url.database}" does not exist on {url.where}'
    elif "Connection refused" in text or "could not connect" in text or "timeout" in text:
        message = (
            f"cannot reach the server at {url.where} (connection refused or timed out): "
            "check the host and port, and that the server is running"
        )
    elif "could not translate host name" in text or "Name or service not known" in text:
        message = f'unknown host "{url.host}": check the host name in the URL'
    else:
        message = f"cannot connect to {url.where}: {text}"
    return redact(message, url.secrets())


def alive(conn: Any) -> bool:
    """A cheap round trip: is ``conn`` open, answering and outside any transaction?"""
    from psycopg import pq

    try:
        if conn.closed:
            return False
        conn.execute("SELECT 1")
        return bool(conn.info.transaction_status == pq.TransactionStatus.IDLE)
    except Exception:
        return False


class PostgresSource(ServerSource):
    """A PostgreSQL server, read-only, through one psycopg connection."""

    kind = "postgres"

    _connect = staticmethod(connect)

    # --- running -------------------------------------------------------------------

    def _execute(self, query: str, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
        import pandas as pd

        converted = self._convert(query, sql, "pyformat")
        self._missing(query, converted.used(), params)
        bound = converted.bind(params, "pyformat")
        psycopg = load_driver("psycopg", EXTRA, self.name)
        self._interrupted.clear()
        try:
            with self.connection.cursor() as cur:
                self._begin(cur)
                cur.execute(converted.sql, bound, prepare=False)
                if cur.description is None:
                    raise SourceError(
                        self.pipeline, query, "the statement returns no rows (use SELECT)"
                    )
                columns = [c.name for c in cur.description]
                rows = cur.fetchall()
            return pd.DataFrame.from_records(rows, columns=columns)
        except psycopg.Error as exc:
            raise SourceError(self.pipeline, query, self._message(exc, converted.sql)) from None
        finally:
            self._end()

    def describe(self, query: str, sql: str, params: Mapping[str, Any]) -> list[str]:
        """Prepare the query on the server and read its result columns; nothing runs."""
        converted = self._convert(query, sql, "dollar")
        self._missing(query, converted.used(), params)
        psycopg = load_driver("psycopg", EXTRA, self.name)
        self._interrupted.clear()
        try:
            with self.connection.cursor() as cur:
                self._begin(cur)
            pgconn = self.connection.pgconn
            result = pgconn.prepare(b"", converted.sql.encode())
            self._check(result, psycopg, query, converted.sql)
            result = pgconn.describe_prepared(b"")
            self._check(result, psycopg, query, converted.sql)
            return [result.fname(i).decode() for i in range(result.nfields)]
        except psycopg.Error as exc:
            raise SourceError(self.pipeline, query, self._message(exc, converted.sql)) from None
        finally:
            self._end()

    def _check(self, result: Any, psycopg: Any, query: str, sql: str) -> None:
        from psycopg import pq

        if result.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(result, encoding="utf-8")

    def _convert(self, query: str, sql: str, style: Any) -> Any:
        try:
            converted = convert(sql, style, "postgres")
        except SQLTokenError as exc:
            raise SourceError(self.pipeline, query, str(exc)) from None
        if converted.statements > 1:
            raise SourceError(
                self.pipeline, query, "the SQL holds several statements: a query is one statement"
            )
        if converted.statements == 0:
            raise SourceError(self.pipeline, query, "the SQL holds no statement")
        return converted

    def _begin(self, cur: Any) -> None:
        cur.execute("BEGIN READ ONLY")
        if self.statement_timeout is not None:
            ms = max(1, int(self.statement_timeout.total_seconds() * 1000))
            # SET takes no bound parameters; ms is an int we computed.
            cur.execute(f"SET LOCAL statement_timeout = {ms}")

    def _end(self) -> None:
        from psycopg import pq

        conn = self.connection
        try:
            if not conn.closed and conn.info.transaction_status != pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
        except Exception:
            self.clean = False
        if conn.closed or conn.info.transaction_status != pq.TransactionStatus.IDLE:
            self.clean = False

    def _message(self, exc: Exception, sql: str) -> str:
        sqlstate = getattr(exc, "sqlstate", None)
        diag = getattr(exc, "diag", None)
        primary = one_line(getattr(diag, "message_primary", None) or str(exc))
        if sqlstate == "57014":
            if self._interrupted.is_set():
                text = "the query was interrupted"
            else:
                limit = self.statement_timeout
                text = f"the query timed out on the server (statement_timeout {_duration(limit)})"
        elif sqlstate == "42501":
            text = f"{primary}: grant the connection's role SELECT on it, or use another table"
        elif sqlstate == "25006":
            text = f"{primary}: sources are read-only; a report's SQL cannot write"
        elif sqlstate and sqlstate.startswith("42"):
            line = line_of(sql, _int(getattr(diag, "statement_position", None)))
            text = f"{primary} (line {line} of the SQL)" if line else primary
        elif sqlstate is None or sqlstate.startswith("08"):
            self.clean = False
            text = f"the connection to {self._url.where} was lost: {primary}"
        else:
            text = primary
        return redact(text, self._url.secrets())

    def interrupt(self) -> None:
        """Send the server a cancel request for the running query (another thread)."""
        self._interrupted.set()
        cancel = getattr(self.connection, "cancel_safe", None) or self.connection.cancel
        try:
            cancel()
        except Exception:
            self.clean = False

    def ping(self) -> bool:
        """A cheap round trip: is this connection alive and idle?"""
        return alive(self.connection)

    def server_version(self) -> str:
        """The server's version, such as ``PostgreSQL 15.8``."""
        number = self.connection.info.server_version
        version = f"PostgreSQL {number // 10000}.{number % 10000}"
        remember_version(self.name, version)
        return version

    def read_only_check(self) -> str | None:
        """``None`` when a write in our transaction is refused, else what went wrong."""
        psycopg = load_driver("psycopg", EXTRA, self.name)
        try:
            with self.connection.cursor() as cur:
                self._begin(cur)
                cur.execute("CREATE TEMP TABLE eil_read_only_probe (x int)")
            return "a write was accepted inside the read-only transaction"
        except psycopg.errors.ReadOnlySqlTransaction:
            return None
        except psycopg.Error as exc:
            return redact(one_line(str(exc)), self._url.secrets())
        finally:
            self._end()

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close(self)
        else:
            self.connection.close()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "of the server"
    total = value.total_seconds()
    if total < 60:
        return f"{total:g}s"
    if total < 3600:
        return f"{total / 60:g}m"
    return f"{total / 3600:g}h"
