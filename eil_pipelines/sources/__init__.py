"""Data sources: run SQL with bound parameters and return DataFrames.

Each run opens its own connection (connections are never shared between
threads) and closes it when done.  Parameters are always bound by the
database driver, never formatted into the SQL text.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EilError, SourceError
from ..spec.loader import resolve_path
from ..spec.models import SourceSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DuckDBSource", "SQLiteSource", "Source", "open_source"]


class Source:
    """One open connection for one run.  Use as a context manager."""

    kind = "abstract"

    def __init__(self, pipeline: str):
        self.pipeline = pipeline
        self._lock = threading.Lock()

    def run(self, query: str, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
        """Run ``sql`` (named ``query`` in messages) with the parameters it uses bound."""
        raise NotImplementedError

    def describe(self, query: str, sql: str, params: Mapping[str, Any]) -> list[str]:
        """The result's column names, without running the query to completion."""
        return list(
            self.run(
                query, f"SELECT * FROM ({sql.strip().rstrip(';')}) AS q LIMIT 0", params
            ).columns
        )

    def interrupt(self) -> None:
        """Stop the query now running (from another thread), for timeouts."""

    def close(self) -> None:
        """Close the connection."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _missing(self, query: str, used: set[str], params: Mapping[str, Any]) -> None:
        missing = sorted(used - set(params))
        if missing:
            names = ", ".join(f"${m}" for m in missing)
            defined = ", ".join(sorted(params)) or "none"
            raise SourceError(
                self.pipeline,
                query,
                f"the SQL uses {names}, which is not a parameter (defined: {defined})",
            )


# Statement kinds whose result is rows; DuckDB gives DDL a one-column "Count" result.
_ROW_STATEMENTS = {
    "SELECT",
    "EXPLAIN",
    "PRAGMA",
    "CALL",
    "EXECUTE",
    "RELATION",
    "INSERT",
    "UPDATE",
    "DELETE",
}


class DuckDBSource(Source):
    """DuckDB, embedded: a database file opened read-only, or in memory.

    Relative file names in the SQL (``FROM 'data/orders.parquet'``) resolve
    against the project root through DuckDB's ``file_search_path``.
    """

    kind = "duckdb"

    def __init__(self, pipeline: str, root: Path, path: Path | None):
        super().__init__(pipeline)
        import duckdb

        self._duckdb = duckdb
        try:
            if path is None:
                self.connection = duckdb.connect(":memory:")
            else:
                if not path.exists():
                    raise EilError(f'pipeline "{pipeline}": DuckDB database not found: {path}')
                self.connection = duckdb.connect(str(path), read_only=True)
            self.connection.execute("SET enable_progress_bar = false")
            self.connection.execute("SET file_search_path = $root", {"root": str(root)})
        except duckdb.Error as exc:
            raise EilError(
                f'pipeline "{pipeline}": cannot open DuckDB database {path}: {exc}'
            ) from None

    def run(self, query: str, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
        duckdb = self._duckdb
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise SourceError(self.pipeline, query, _clean(exc)) from None
        if not statements:
            raise SourceError(self.pipeline, query, "the SQL holds no statement")
        result = None
        try:
            for statement in statements:
                used = set(statement.named_parameters)
                self._missing(query, used, params)
                # DuckDB rejects parameters a statement does not use, so pass only its own.
                bound = {name: params[name] for name in used}
                result = self.connection.execute(statement, bound)
            assert result is not None
            if result.description is None or statements[-1].type.name not in _ROW_STATEMENTS:
                raise SourceError(
                    self.pipeline, query, "the last statement returns no rows (use SELECT)"
                )
            return result.df()
        except duckdb.InterruptException:
            raise SourceError(self.pipeline, query, "the query was interrupted") from None
        except duckdb.Error as exc:
            raise SourceError(self.pipeline, query, _clean(exc)) from None

    def interrupt(self) -> None:
        self.connection.interrupt()

    def close(self) -> None:
        self.connection.close()


_SQLITE_PARAM = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|[:$@]([A-Za-z_][A-Za-z0-9_]*)""", re.S
)


class SQLiteSource(Source):
    """A SQLite database file, opened read-only through a ``file:`` URI."""

    kind = "sqlite"

    def __init__(self, pipeline: str, path: Path):
        super().__init__(pipeline)
        if not path.exists():
            raise EilError(f'pipeline "{pipeline}": SQLite database not found: {path}')
        try:
            self.connection = sqlite3.connect(
                f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise EilError(
                f'pipeline "{pipeline}": cannot open SQLite database {path}: {exc}'
            ) from None

    def run(self, query: str, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
        import pandas as pd

        used = {m.group(1) for m in _SQLITE_PARAM.finditer(sql) if m.group(1)}
        self._missing(query, used, params)
        bound = {name: _sqlite_value(params[name]) for name in used}
        try:
            cursor = self.connection.execute(sql, bound)
            if cursor.description is None:
                raise SourceError(
                    self.pipeline, query, "the statement returns no rows (use SELECT)"
                )
            columns = [c[0] for c in cursor.description]
            return pd.DataFrame.from_records(cursor.fetchall(), columns=columns)
        except sqlite3.Warning as exc:  # e.g. "You can only execute one statement at a time."
            raise SourceError(self.pipeline, query, str(exc)) from None
        except sqlite3.Error as exc:
            text = str(exc)
            if isinstance(exc, sqlite3.OperationalError) and text == "interrupted":
                text = "the query was interrupted"
            raise SourceError(self.pipeline, query, text) from None

    def interrupt(self) -> None:
        self.connection.interrupt()

    def close(self) -> None:
        self.connection.close()


def _sqlite_value(value: Any) -> Any:
    # SQLite has no date type: ISO text sorts and compares correctly, and it is
    # what the date functions read.
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _clean(exc: Exception) -> str:
    return str(exc).strip()


def open_source(
    pipeline: str, spec: SourceSpec | str, root: Path, *, target: str | None = None
) -> Source:
    """Open a new connection for one run of ``pipeline``; a string names a connection
    of ``eil.toml`` (``target`` picks its overrides; default ``EIL_TARGET``)."""
    if isinstance(spec, str):
        from .named import open_named

        return open_named(pipeline, spec, root, target=target)  # type: ignore[no-any-return]
    path = resolve_path(root, spec.path) if spec.path else None
    if spec.kind == "sqlite":
        assert path is not None  # the model requires a path for sqlite
        return SQLiteSource(pipeline, path)
    return DuckDBSource(pipeline, root, path)
