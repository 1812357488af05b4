"""Any database with an installed SQLAlchemy 2 dialect (``pip install 'eil-pipelines[sqlalchemy]'``
plus the dialect's own package: ``snowflake-sqlalchemy``, ``sqlalchemy-bigquery`` …).

The long tail (Snowflake, BigQuery, SQL Server, Trino, ClickHouse) has no
read-only transaction that works the same everywhere, so the fences here are:
one statement that reads (``SELECT``/``WITH``), run in a transaction that is
rolled back, and a database role that can only read (the docs insist on it).
The SQL is passed to the driver as written, with ``$name`` turned into the
driver's own ``paramstyle`` (SQLAlchemy's ``text()`` would parse ``:word``
inside string literals as parameters).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..errors import SourceError
from . import Source
from .mysql import QUERY_KEYWORDS
from .params import SQLTokenError, convert
from .server import ConnectionFailed, ServerURL, load_driver, one_line, redact

if TYPE_CHECKING:
    import pandas as pd


EXTRA = "sqlalchemy"


def create_engine(name: str, url: str, *, pipeline: str | None = None, pool_size: int = 1) -> Any:
    """A SQLAlchemy engine for ``url``, or :class:`ConnectionFailed` naming what to install."""
    sqlalchemy = load_driver("sqlalchemy", EXTRA, name)
    try:
        parsed = ServerURL.parse(url)
    except ValueError as exc:
        raise ConnectionFailed(name, str(exc), pipeline=pipeline) from None
    try:
        return sqlalchemy.create_engine(url, pool_size=pool_size, pool_pre_ping=True)
    except TypeError:
        # Dialects with a pool that takes no size (SQLite's).
        return sqlalchemy.create_engine(url, pool_pre_ping=True)
    except ImportError as exc:
        raise ConnectionFailed(
            name,
            f'the driver for "{parsed.scheme}" URLs is not installed ({exc.name or exc}): '
            "install the SQLAlchemy dialect's package",
            pipeline=pipeline,
        ) from None
    except sqlalchemy.exc.NoSuchModuleError:
        raise ConnectionFailed(
            name,
            f'no SQLAlchemy dialect for "{parsed.scheme}" URLs is installed: install the '
            "dialect's package (such as snowflake-sqlalchemy or sqlalchemy-bigquery)",
            pipeline=pipeline,
        ) from None
    except Exception as exc:  # ArgumentError and others: their messages may echo the URL
        text = redact(one_line(str(exc)), parsed.secrets())
        raise ConnectionFailed(
            name, f'cannot use the URL (scheme "{parsed.scheme}"): {text}', pipeline=pipeline
        ) from None


class AlchemySource(Source):
    """One connection from a SQLAlchemy engine."""

    kind = "sqlalchemy"

    def __init__(
        self,
        pipeline: str,
        name: str,
        url: str,
        *,
        statement_timeout: timedelta | None = None,
        engine: Any = None,
    ):
        super().__init__(pipeline)
        self.name = name
        self._url = ServerURL.parse(url)
        self.statement_timeout = statement_timeout
        self._owns_engine = engine is None
        self.engine = engine if engine is not None else create_engine(name, url, pipeline=pipeline)
        sqlalchemy = load_driver("sqlalchemy", EXTRA, name)
        try:
            self.connection = self.engine.connect()
        except sqlalchemy.exc.DBAPIError as exc:
            raise ConnectionFailed(
                name,
                redact(
                    f"cannot connect to {self._url.where}: {one_line(str(exc.orig))}",
                    self._url.secrets(),
                ),
                pipeline=pipeline,
            ) from None
        self._interrupted = threading.Event()

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect's name (sqlglot's generic SQL when it knows no such dialect)."""
        return str(self.engine.dialect.name)

    def _execute(self, query: str, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
        import pandas as pd

        sqlalchemy = load_driver("sqlalchemy", EXTRA, self.name)
        style = self.engine.dialect.paramstyle
        dialect = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}.get(
            self.engine.dialect.name, "generic"
        )
        try:
            converted = convert(sql, style, dialect)  # type: ignore[arg-type]
        except SQLTokenError as exc:
            raise SourceError(self.pipeline, query, str(exc)) from None
        if converted.statements != 1:
            raise SourceError(
                self.pipeline,
                query,
                "the SQL holds no statement"
                if converted.statements == 0
                else "the SQL holds several statements: a query is one statement",
            )
        if converted.first_word not in QUERY_KEYWORDS:
            raise SourceError(
                self.pipeline,
                query,
                f"{converted.first_word} statements are refused: a query reads (SELECT or WITH)",
            )
        self._missing(query, converted.used(), params)
        bound = converted.bind(params, style)
        try:
            with self.connection.begin() as transaction:
                result = self.connection.exec_driver_sql(converted.sql, bound)
                if not result.returns_rows:
                    raise SourceError(
                        self.pipeline, query, "the statement returns no rows (use SELECT)"
                    )
                frame = pd.DataFrame.from_records(
                    list(result.fetchall()), columns=list(result.keys())
                )
                transaction.rollback()
            return frame
        except sqlalchemy.exc.DBAPIError as exc:
            text = one_line(str(exc.orig)) if exc.orig is not None else one_line(str(exc))
            if self._interrupted.is_set():
                text = "the query was interrupted"
            raise SourceError(self.pipeline, query, redact(text, self._url.secrets())) from None

    def interrupt(self) -> None:
        """Ask the driver to cancel, where its DB-API connection can."""
        self._interrupted.set()
        raw = getattr(self.connection.connection, "dbapi_connection", None)
        for method in ("cancel", "interrupt"):
            fn = getattr(raw, method, None)
            if callable(fn):
                with contextlib.suppress(Exception):
                    fn()
                return

    def ping(self) -> bool:
        """``SELECT 1`` through the connection."""
        sqlalchemy = load_driver("sqlalchemy", EXTRA, self.name)
        try:
            self.connection.exec_driver_sql("SELECT 1").fetchall()
            self.connection.rollback()
            return True
        except sqlalchemy.exc.DBAPIError:
            return False

    def server_version(self) -> str:
        """The dialect's name and the server version it reports."""
        version = self.engine.dialect.server_version_info
        shown = ".".join(str(p) for p in version) if version else "unknown version"
        return f"{self.engine.dialect.name} {shown}"

    def read_only_check(self) -> str | None:
        """Always a reminder: no portable read-only transaction exists here."""
        return "no read-only transaction on this engine: give the connection a read-only role"

    def close(self) -> None:
        self.connection.close()
        if self._owns_engine:
            self.engine.dispose()
