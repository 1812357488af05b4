"""MySQL and MariaDB through PyMySQL (``pip install 'eil-pipelines[mysql]'``).

PyMySQL is pure Python: it installs everywhere without MySQL's client headers
or a compiler (mysqlclient needs both), and a report's results are small
aggregates, where the driver's speed is not what a run waits on.

Every query runs in ``START TRANSACTION READ ONLY`` with the server's own
statement time limit (``max_statement_time`` on MariaDB,
``MAX_EXECUTION_TIME`` on MySQL), and is rolled back.  A read-only
transaction still lets DDL through (``CREATE TABLE`` commits implicitly), so a
statement that is not a query is refused before it reaches the server.  A
timeout or an interrupt stops the work on the server with ``KILL QUERY``
sent from a second connection.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ..errors import SourceError
from .params import SQLTokenError, convert
from .server import (
    CONNECT_TIMEOUT,
    ConnectionFailed,
    ServerSource,
    ServerURL,
    load_driver,
    one_line,
    redact,
    remember_version,
)

if TYPE_CHECKING:
    import pandas as pd


EXTRA = "mysql"

#: First keywords of statements that only read.
QUERY_KEYWORDS = frozenset(
    {"SELECT", "WITH", "VALUES", "TABLE", "(", "SHOW", "DESCRIBE", "EXPLAIN"}
)


def _arguments(url: ServerURL) -> dict[str, Any]:
    query = parse_qs(urlsplit(url.url).query)
    args: dict[str, Any] = {
        "user": url.user,
        "password": url.password or "",
        "database": url.database,
        "connect_timeout": int(CONNECT_TIMEOUT.total_seconds()),
        "autocommit": True,
        "charset": "utf8mb4",
    }
    if "unix_socket" in query:
        args["unix_socket"] = query["unix_socket"][0]
    else:
        args["host"] = url.host or "localhost"
        args["port"] = url.port or 3306
    return args


def connect(name: str, url: str, *, pipeline: str | None = None) -> Any:
    """Open a PyMySQL connection, or raise :class:`ConnectionFailed` with an actionable message."""
    pymysql = load_driver("pymysql", EXTRA, name)
    try:
        parsed = ServerURL.parse(url)
    except ValueError as exc:
        raise ConnectionFailed(name, str(exc), pipeline=pipeline) from None
    try:
        conn = pymysql.connect(**_arguments(parsed))
    except pymysql.Error as exc:
        raise ConnectionFailed(name, _connect_message(exc, parsed), pipeline=pipeline) from None
    info = conn.get_server_info()
    flavour = "MariaDB" if "mariadb" in info.lower() else "MySQL"
    remember_version(name, f"{flavour} {info.split('-')[0]}")
    return conn


def _code(exc: Exception) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _text(exc: Exception) -> str:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    return one_line(str(args[1]) if len(args) > 1 else str(exc))


def _connect_message(exc: Exception, url: ServerURL) -> str:
    code = _code(exc)
    user = url.user or "(default user)"
    if code == 1045:
        message = (
            f'authentication failed for user "{user}" at {url.where}: check the user name '
            "and the password variable"
        )
    elif code == 1049:
        message = f'database "{url.database}" does not exist on {url.where}'
    elif code == 1044:
        message = f'user "{user}" may not use database "{url.database}": {_text(exc)}'
    elif code in (2003, 2002, 2005, 2013):
        message = (
            f"cannot reach the server at {url.where} (connection refused or timed out): "
            "check the host and port, and that the server is running"
        )
    else:
        message = f"cannot connect to {url.where}: {_text(exc)}"
    return redact(message, url.secrets())


def alive(conn: Any) -> bool:
    """A cheap round trip without reconnecting: is ``conn`` alive?"""
    try:
        conn.ping(reconnect=False)
        return True
    except Exception:
        return False


class MySQLSource(ServerSource):
    """A MySQL or MariaDB server, read-only, through one PyMySQL connection."""

    kind = "mysql"

    _connect = staticmethod(connect)

    def __init__(self, pipeline: str, name: str, url: str, **options: Any):
        super().__init__(pipeline, name, url, **options)
        self._raw_url = url
        self._running = threading.Event()
        self.mariadb = "mariadb" in self.connection.get_server_info().lower()

    def _execute(self, query: str, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
        import pandas as pd

        pymysql = load_driver("pymysql", EXTRA, self.name)
        try:
            converted = convert(sql, "pyformat", "mysql")
        except SQLTokenError as exc:
            raise SourceError(self.pipeline, query, str(exc)) from None
        if converted.statements > 1:
            raise SourceError(
                self.pipeline, query, "the SQL holds several statements: a query is one statement"
            )
        if converted.statements == 0:
            raise SourceError(self.pipeline, query, "the SQL holds no statement")
        if converted.first_word not in QUERY_KEYWORDS:
            raise SourceError(
                self.pipeline,
                query,
                f"{converted.first_word or 'this'} statements are refused: "
                "a query reads (SELECT or WITH), and sources are read-only",
            )
        self._missing(query, converted.used(), params)
        bound = converted.bind(params, "pyformat")
        self._interrupted.clear()
        cur = self.connection.cursor()
        try:
            self._begin(cur)
            self._running.set()
            try:
                # Always a dict, even empty: PyMySQL then applies %, undoubling literal %%.
                cur.execute(converted.sql, bound)
            finally:
                self._running.clear()
            if cur.description is None:
                raise SourceError(
                    self.pipeline, query, "the statement returns no rows (use SELECT)"
                )
            columns = [c[0] for c in cur.description]
            rows = cur.fetchall()
            return pd.DataFrame.from_records(list(rows), columns=columns)
        except pymysql.Error as exc:
            raise SourceError(self.pipeline, query, self._message(exc)) from None
        finally:
            cur.close()
            self._end()

    def _begin(self, cur: Any) -> None:
        if self.statement_timeout is not None:
            total = self.statement_timeout.total_seconds()
            if self.mariadb:
                cur.execute(f"SET SESSION max_statement_time = {total:.3f}")
            else:
                cur.execute(f"SET SESSION MAX_EXECUTION_TIME = {max(1, int(total * 1000))}")
        cur.execute("START TRANSACTION READ ONLY")

    def _end(self) -> None:
        try:
            self.connection.rollback()
        except Exception:
            self.clean = False

    def _message(self, exc: Exception) -> str:
        code = _code(exc)
        text = _text(exc)
        if code in (1969, 3024) or (code == 1317 and not self._interrupted.is_set()):
            limit = self.statement_timeout
            shown = f"{limit.total_seconds():g}s" if limit else "of the server"
            message = f"the query timed out on the server (statement_timeout {shown})"
        elif code == 1317:
            message = "the query was interrupted"
        elif code in (1142, 1143, 1044):
            message = f"{text}: grant the connection's user SELECT on it, or use another table"
        elif code == 1792:
            message = f"{text}: sources are read-only; a report's SQL cannot write"
        elif code in (2006, 2013, 2055) or code is None:
            self.clean = False
            message = f"the connection to {self._url.where} was lost: {text}"
        else:
            message = text
        return redact(message, self._url.secrets())

    def interrupt(self) -> None:
        """``KILL QUERY`` the running statement from a second connection."""
        self._interrupted.set()
        if not self._running.is_set():
            return
        pymysql = load_driver("pymysql", EXTRA, self.name)
        try:
            killer = pymysql.connect(**_arguments(self._url))
        except pymysql.Error:
            self.clean = False
            return
        with contextlib.closing(killer), killer.cursor() as cur, contextlib.suppress(pymysql.Error):
            cur.execute(f"KILL QUERY {int(self.connection.thread_id())}")

    def ping(self) -> bool:
        """A cheap round trip without reconnecting: is this connection alive?"""
        return alive(self.connection)

    def server_version(self) -> str:
        """The server's version, such as ``MariaDB 10.11.6``."""
        info = self.connection.get_server_info()
        number = info.split("-")[0]
        return f"MariaDB {number}" if self.mariadb else f"MySQL {number}"

    def read_only_check(self) -> str | None:
        """``None`` when the user holds no write privilege, else a warning.

        Each query runs in a read-only transaction anyway; this checks the
        second fence, the user's grants, which the docs ask to be read-only.
        """
        pymysql = load_driver("pymysql", EXTRA, self.name)
        cur = self.connection.cursor()
        try:
            self._begin(cur)
            cur.execute("SHOW GRANTS")
            grants = [str(row[0]) for row in cur.fetchall()]
        except pymysql.Error as exc:
            return redact(_text(exc), self._url.secrets())
        finally:
            cur.close()
            self._end()
        writes = ("ALL PRIVILEGES", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER")
        found = sorted({w for g in grants for w in writes if f"{w}" in g.split(" ON ")[0]})
        if found:
            return (
                f"the user may write ({', '.join(found)}): queries run read-only, "
                "but give reports a user with SELECT only"
            )
        return None

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close(self)
        else:
            with contextlib.suppress(Exception):
                self.connection.close()
