"""PostgreSQL through psycopg 3, results fetched through ADBC
(``pip install 'eil-pipelines[postgres]'`` installs both).

Why two drivers: ``benchmarks/bench_postgres_fetch.py`` fetches a 1-million-row
result into a DataFrame about 4.6 times faster through ADBC's Postgres driver
(Arrow columns, no Python object per value) than through psycopg or
``pandas.read_sql``.  psycopg keeps what it does best: the connection and its
actionable error messages, the server version, the pool's liveness check, the
read-only check and ``describe`` of a prepared statement (``validate --deep``).
Without ``adbc-driver-postgresql`` installed every query runs through psycopg.

Every query, on either driver, runs in its own explicit ``BEGIN READ ONLY``
transaction with a ``SET LOCAL statement_timeout``, and is rolled back
afterwards: a session setting the SQL could change
(``default_transaction_read_only``) is never relied on.  A connection that is
not idle afterwards is closed, never reused.  An interrupt cancels the query on
whichever driver runs it.

The two paths give the same DataFrame for the types reports use: integers as
``int64`` (``int2``/``int4`` widened, as psycopg's Python ints are), ``real``
and ``double precision`` and ``numeric`` as ``float64``, text as strings,
``date`` as ``datetime.date`` objects, ``timestamp`` as ``datetime64[us]``,
``timestamptz`` as ``datetime64[us, <the session's TimeZone>]``, ``boolean``
as ``bool``; an integer column with NULLs is ``float64`` with ``NaN`` on both.
Where they differ (documented in docs/sources.md): an empty result keeps its
columns' types through ADBC (psycopg gives ``object`` columns), and ``json``,
``interval``, ``uuid`` and array columns come as strings and Arrow values
rather than psycopg's Python objects.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Mapping
from datetime import date, datetime, timedelta
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
    import pyarrow as pa


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


def arrow_driver() -> Any:
    """``adbc_driver_postgresql.dbapi`` when it is installed, else ``None``."""
    try:
        import adbc_driver_postgresql.dbapi as adbc
    except ImportError:
        return None
    return adbc


#: psycopg connection → its ADBC connection, opened at the first fetch.  Keyed by
#: the psycopg connection so a pooled connection lends both, and closed with it.
_arrow_connections: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_arrow_lock = threading.Lock()


def close_arrow(conn: Any) -> None:
    """Close the ADBC connection that goes with psycopg connection ``conn``, if any."""
    with _arrow_lock:
        arrow = _arrow_connections.pop(conn, None)
    if arrow is not None:
        with contextlib.suppress(Exception):
            arrow.close()


def close(conn: Any) -> None:
    """Close a psycopg connection and the ADBC connection that goes with it."""
    close_arrow(conn)
    conn.close()


#: Errors at prepare time where psycopg's untyped text parameters would have been
#: coerced by the server (``timestamp >= '2026-01-01'``) but ADBC's typed ones are
#: not: the query is run again through psycopg, so both paths accept the same SQL.
_TYPED_PARAMETER_ERRORS = frozenset({"42883", "42804", "42725"})


class PostgresSource(ServerSource):
    """A PostgreSQL server, read-only, through one psycopg connection (and its ADBC
    connection for fetching results, when ADBC is installed)."""

    kind = "postgres"

    _connect = staticmethod(connect)

    # --- running -------------------------------------------------------------------

    #: Fetch through ADBC when it is installed (the benchmark and a test turn it off
    #: to compare the two paths).
    arrow = True
    #: The ADBC cursor of the query running now, for :meth:`interrupt` (another thread).
    _arrow_cursor: Any = None

    def _execute(self, query: str, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
        if self.arrow and arrow_driver() is not None:
            converted = self._convert(query, sql, "dollar")
            self._missing(query, converted.used(), params)
            bound = converted.bind(params, "dollar")
            if all(_arrow_bindable(value) for value in bound):
                frame = self._execute_arrow(query, converted, bound)
                if frame is not None:
                    return frame
        return self._execute_rows(query, sql, params)

    def _execute_rows(self, query: str, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
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

    def _arrow_connection(self) -> Any:
        conn = self.connection
        with _arrow_lock:
            arrow = _arrow_connections.get(conn)
        if arrow is not None:
            return arrow
        adbc = arrow_driver()
        try:
            arrow = adbc.connect(_libpq_url(self._url.url), autocommit=True)
        except Exception as exc:
            # psycopg connected a moment ago with the same URL: say what the server said.
            text = one_line(str(exc))
            raise ConnectionFailed(
                self.name,
                redact(
                    f"cannot open the Arrow connection to {self._url.where}: {text}",
                    self._url.secrets(),
                ),
                pipeline=self.pipeline,
            ) from None
        with _arrow_lock:
            _arrow_connections[conn] = arrow
        return arrow

    def _execute_arrow(self, query: str, converted: Any, bound: Any) -> pd.DataFrame | None:
        """Run through ADBC; ``None`` when psycopg must run it (see ``_TYPED_PARAMETER_ERRORS``)."""
        import adbc_driver_manager

        arrow = self._arrow_connection()
        self._interrupted.clear()
        cur = arrow.cursor()
        self._arrow_cursor = cur
        failed = False
        try:
            self._begin(cur)
            try:
                cur.execute(converted.sql, parameters=tuple(bound) if bound else None)
            except adbc_driver_manager.Error as exc:
                if bound and getattr(exc, "sqlstate", None) in _TYPED_PARAMETER_ERRORS:
                    return None
                raise
            if cur.description is None:
                raise SourceError(
                    self.pipeline, query, "the statement returns no rows (use SELECT)"
                )
            table = cur.fetch_arrow_table()
            return _frame(table, self.connection.info.timezone)
        except adbc_driver_manager.Error as exc:
            failed = True
            raise SourceError(
                self.pipeline, query, self._message(_ArrowError(exc), converted.sql)
            ) from None
        finally:
            self._arrow_cursor = None
            try:
                cur.execute("ROLLBACK")
            except Exception:
                self.clean = False
            with contextlib.suppress(Exception):
                cur.close()
            if failed and not self.clean:
                close_arrow(self.connection)

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

    def _message(self, exc: Any, sql: str) -> str:
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
        arrow = self._arrow_cursor
        if arrow is not None:
            try:
                arrow.adbc_cancel()
            except Exception:
                self.clean = False
            return
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
            close(self.connection)


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


def _arrow_bindable(value: Any) -> bool:
    """Whether ADBC binds ``value`` as psycopg would; anything else (None, lists, Decimal,
    an integer beyond 64 bits) runs through psycopg, which adapts every Python type."""
    if isinstance(value, bool | float | str | date | datetime):
        return True
    return isinstance(value, int) and -(2**63) <= value < 2**63


def _libpq_url(url: str) -> str:
    """The URL as libpq (under ADBC) reads it: ``postgresql://`` without a driver suffix."""
    for prefix in ("postgres://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class _ArrowError:
    """An ADBC error seen through psycopg's error fields (``sqlstate``, ``diag``)."""

    def __init__(self, exc: Exception):
        self.sqlstate = getattr(exc, "sqlstate", None) or None
        details = dict(getattr(exc, "details", None) or [])

        def field(name: str) -> str | None:
            value = details.get(name.encode())
            return value.decode(errors="replace") if isinstance(value, bytes) else None

        self.diag = type(
            "Diag",
            (),
            {
                "message_primary": field("PG_DIAG_MESSAGE_PRIMARY"),
                "statement_position": field("PG_DIAG_STATEMENT_POSITION"),
            },
        )()
        self._text = str(exc)

    def __str__(self) -> str:
        return self._text


def _frame(table: pa.Table, zone: Any) -> pd.DataFrame:
    """An Arrow result as the DataFrame psycopg's rows would give (see the module's notes)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        kind = field.type
        if isinstance(kind, pa.BaseExtensionType):
            # Types Arrow has no equivalent for (numeric, json, uuid …) come as text.
            column = column.combine_chunks().storage
            if getattr(kind, "type_name", None) == "numeric":
                column = pc.cast(column, pa.float64())
        elif pa.types.is_integer(kind) and kind != pa.int64():
            column = pc.cast(column, pa.int64())
        elif pa.types.is_floating(kind) and kind != pa.float64():
            column = pc.cast(column, pa.float64())
        columns.append(column)
    frame = pa.table(columns, names=table.column_names).to_pandas()
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None and zone is not None:
            # psycopg gives timestamptz in the session's TimeZone; Arrow gives UTC.
            frame.isetitem(index, frame.iloc[:, index].dt.tz_convert(zone))
    return frame
