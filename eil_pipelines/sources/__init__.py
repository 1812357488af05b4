"""Data sources: run SQL with bound parameters and return DataFrames.

Each run opens its own connection (connections are never shared between
threads) and closes it when done.  Parameters are always bound by the
database driver, never formatted into the SQL text.

The in-memory DuckDB engine (a pipeline with no database file) is the one
exception to "open a database per run": making a DuckDB database costs about
35 ms of CPU, a connection to an existing one under 1 ms.  So each project
root has one confined in-memory database per process (:func:`_memory_database`),
and each run gets a connection of its own to it (``cursor()``).  Nothing
carries over from one run to the next: a query is one ``SELECT`` (it cannot
create, set or attach anything), and the configuration is locked.
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
from .statements import check_query

if TYPE_CHECKING:
    import pandas as pd

    from .guard import QueryGuard

__all__ = ["DuckDBSource", "SQLiteSource", "Source", "open_source"]


class Source:
    """One open connection for one run.  Use as a context manager."""

    kind = "abstract"

    def __init__(self, pipeline: str):
        self.pipeline = pipeline
        self._lock = threading.Lock()

    def run(
        self,
        query: str,
        sql: str,
        params: Mapping[str, Any],
        *,
        guard: QueryGuard | None = None,
    ) -> pd.DataFrame:
        """Run ``sql`` (named ``query`` in messages) with the parameters it uses bound.

        With a ``guard`` (:class:`~eil_pipelines.sources.guard.QueryGuard`) the
        query does not start once the run must stop, and can be interrupted.
        Every engine first passes the statement check (:mod:`.statements`), then
        runs the query its own way (:meth:`_execute`).
        """
        if guard is not None:
            with guard.querying(self, query):
                return self.run(query, sql, params)
        check_query(self.pipeline, query, sql, self.dialect)
        return self._execute(query, sql, params)

    @property
    def dialect(self) -> str:
        """The SQL dialect the statement check parses (a source kind or a sqlglot name)."""
        return self.kind

    def _execute(self, query: str, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
        """Run one checked query: each engine's own binding, guard and fetch."""
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


#: Set when the connection opens: DuckDB never installs or loads an extension
#: on its own (that would download it, and run code the project didn't ship).
_DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}


def confine_duckdb(connection: Any, root: Path) -> None:
    """Confine a new DuckDB connection to ``root``, then lock its configuration.

    Files are read only inside ``root`` (``allowed_directories`` with
    ``enable_external_access = false``, which also stops ``INSTALL``, ``LOAD``,
    ``ATTACH`` of files elsewhere and any network access); ``lock_configuration``
    then makes every later ``SET`` fail, so a query cannot undo any of it.
    """
    connection.execute("SET enable_progress_bar = false")
    # GLOBAL: the connections a run gets from an in-memory database inherit it.
    connection.execute("SET GLOBAL file_search_path = $root", {"root": str(root)})
    connection.execute("SET allowed_directories = $dirs", {"dirs": [str(root)]})
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")


# Table functions whose first argument names files: a relative name there (and
# after FROM or JOIN: 'data/orders.parquet') is made absolute against the project
# root.  DuckDB checks allowed_directories against the name as written, relative
# to the process's working folder, before it looks along file_search_path; an
# absolute name makes both the check and the lookup use the project root,
# whatever the working folder.  A file name elsewhere stays relative and is
# checked against the working folder: it fails closed.
_FILE_FUNCTIONS = frozenset(
    {
        "read_csv",
        "read_csv_auto",
        "read_parquet",
        "parquet_scan",
        "read_json",
        "read_json_auto",
        "read_json_objects",
        "read_json_objects_auto",
        "read_ndjson",
        "read_ndjson_auto",
        "read_ndjson_objects",
        "read_text",
        "read_blob",
        "read_xlsx",
        "glob",
        "sniff_csv",
        "parquet_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
        "parquet_bloom_probe",
    }
)


def _absolute_paths(sql: str, root: Path) -> str:
    """``sql`` with the relative file names it reads made absolute under ``root``.

    A file name is a string literal right after a ``FROM`` or ``JOIN`` of a
    query (not ``IS DISTINCT FROM 'x'``, nor the ``FROM`` inside
    ``extract(…)`` or ``trim(…)``), or in the first argument of a file
    function.  Other literals are left alone.
    """
    import duckdb

    tokens = duckdb.tokenize(sql)
    spans: list[tuple[int, int]] = []
    previous = ""  # the last keyword, identifier or operator, lower case
    before = ""  # the one before it
    parens: list[bool] = []  # per open bracket: is it a function call's?
    file_argument = 0  # > 0: inside the first argument of a file function, at this depth
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(sql)
        text = sql[start:end].rstrip()
        name = kind.name
        if name == "comment":
            continue
        if name == "string_const":
            table = previous in ("from", "join") and before != "distinct"
            in_call = bool(parens) and parens[-1]
            if text[:1] == "'" and (file_argument or (table and not in_call)):
                spans.append((start, start + len(text)))
            previous, before = "'", previous
            continue
        word = text.lower()
        if name == "operator":
            for char in word:
                if char in "([":
                    call = char == "(" and previous not in _NOT_CALLS and previous[:1].isalpha()
                    parens.append(call)
                    if not file_argument and previous in _FILE_FUNCTIONS:
                        file_argument = len(parens)
                elif char in ")]":
                    if file_argument and len(parens) <= file_argument:
                        file_argument = 0
                    if parens:
                        parens.pop()
                elif char == "," and file_argument and len(parens) == file_argument:
                    file_argument = 0
        previous, before = word, previous
    if not spans:
        return sql
    out: list[str] = []
    last = 0
    for start, end in spans:
        literal = sql[start:end]
        value = literal[1:-1].replace("''", "'")
        out.append(sql[last:start])
        out.append(_absolute_literal(value, root) if _is_relative(value) else literal)
        last = end
    out.append(sql[last:])
    return "".join(out)


def _is_relative(name: str) -> bool:
    return bool(name) and not (
        name.startswith(("/", "~", "\\")) or "://" in name or name[1:2] == ":"
    )


def _absolute_literal(name: str, root: Path) -> str:
    return "'" + f"{root.as_posix()}/{name}".replace("'", "''") + "'"


def _first_keyword(statement: Any) -> str:
    """The statement's first word (``IMPORT``), which DuckDB's type may not say (``PRAGMA``)."""
    import duckdb

    text = statement.query
    for start, kind in duckdb.tokenize(text):
        if kind.name != "comment":
            return text[start:].split(None, 1)[0].upper()
    return str(statement.type.name)


# Words a "(" follows without being a function call's: a subquery or a list.
_NOT_CALLS = frozenset(
    {
        "from",
        "join",
        "in",
        "exists",
        "as",
        "lateral",
        "any",
        "all",
        "some",
        "select",
        "where",
        "on",
        "and",
        "or",
        "not",
        "then",
        "else",
        "when",
        "with",
        "by",
        "having",
        "qualify",
        "union",
        "intersect",
        "except",
        "using",
        "values",
        "over",
        "filter",
        "materialized",
        "case",
    }
)

_CONFINED = (
    "queries read files only inside the project folder, and cannot install or load extensions"
)


def _permission(message: str) -> str:
    """DuckDB's permission message, saying what the project allows instead of how DuckDB is set."""
    head, sep, excerpt = message.partition("\n\nLINE ")
    head = head.replace(" - file system operations are disabled by configuration", "")
    head = head.replace(" is disabled through configuration", " is disabled")
    return f"{head}: {_CONFINED}{sep}{excerpt}"


def _extension_hint(message: str) -> str:
    """DuckDB's "exists in the X extension" error without its advice to install or enable it."""
    head, found, _ = message.partition("\n\nPlease try installing")
    if not found:
        return message
    return f"{head.strip()} ({_CONFINED}; use a function DuckDB has built in)"


class _MemoryDatabase:
    """One confined in-memory DuckDB database; each run connects to it with :meth:`connection`."""

    def __init__(self, root: Path):
        import duckdb

        self._base = duckdb.connect(":memory:", config=_DUCKDB_CONFIG)
        confine_duckdb(self._base, root)
        self._lock = threading.Lock()

    def connection(self) -> Any:
        """A new connection of its own (DuckDB's ``cursor()``: same database and settings)."""
        with self._lock:  # the base connection object is not used by two threads at once
            return self._base.cursor()


_MEMORY_DATABASES: dict[Path, _MemoryDatabase] = {}
_MEMORY_LOCK = threading.Lock()
#: In-memory databases kept per process (one per project root; a test suite makes many).
_MEMORY_KEEP = 8


def _memory_database(root: Path) -> _MemoryDatabase:
    """The process's in-memory database for the project at ``root`` (made on first use)."""
    with _MEMORY_LOCK:
        database = _MEMORY_DATABASES.pop(root, None)
        if database is None:
            database = _MemoryDatabase(root)
        # Most recently used last; the oldest goes (its open connections keep it alive).
        _MEMORY_DATABASES[root] = database
        while len(_MEMORY_DATABASES) > _MEMORY_KEEP:
            _MEMORY_DATABASES.pop(next(iter(_MEMORY_DATABASES)))
        return database


class DuckDBSource(Source):
    """DuckDB, embedded: a database file opened read-only, or in memory.

    Relative file names in the SQL (``FROM 'data/orders.parquet'``) resolve
    against the project root, whatever the working folder.  The connection is
    confined to the project folder (see :func:`confine_duckdb`), and a query
    must be one ``SELECT`` (see :mod:`.statements` and ``_guard``).
    """

    kind = "duckdb"

    def __init__(self, pipeline: str, root: Path, path: Path | None):
        super().__init__(pipeline)
        import duckdb

        self._duckdb = duckdb
        self.root = root.resolve()
        try:
            if path is None:
                self.connection = _memory_database(self.root).connection()
            else:
                if not path.exists():
                    raise EilError(f'pipeline "{pipeline}": DuckDB database not found: {path}')
                # A file is opened per run, never held: a process that writes it
                # between runs (the ETL) is not locked out.
                self.connection = duckdb.connect(str(path), read_only=True, config=_DUCKDB_CONFIG)
                confine_duckdb(self.connection, self.root)
        except duckdb.Error as exc:
            raise EilError(
                f'pipeline "{pipeline}": cannot open DuckDB database {path}: {exc}'
            ) from None

    def _execute(self, query: str, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
        duckdb = self._duckdb
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise SourceError(self.pipeline, query, self._clean(exc)) from None
        self._guard(query, statements)
        statement = statements[0]
        used = set(statement.named_parameters)
        self._missing(query, used, params)
        # DuckDB rejects parameters a statement does not use, so pass only its own.
        bound = {name: params[name] for name in used}
        try:
            # The whole text (one statement, as checked): DuckDB's line numbers stay the user's.
            result = self.connection.execute(_absolute_paths(sql, self.root), bound)
            if result.description is None:
                raise SourceError(
                    self.pipeline, query, "the statement returns no rows (use SELECT)"
                )
            return result.df()
        except duckdb.InterruptException:
            raise SourceError(self.pipeline, query, "the query was interrupted") from None
        except duckdb.PermissionException as exc:
            raise SourceError(self.pipeline, query, _permission(self._clean(exc))) from None
        except duckdb.Error as exc:
            raise SourceError(self.pipeline, query, _extension_hint(self._clean(exc))) from None

    def _guard(self, query: str, statements: list[Any]) -> None:
        """DuckDB's own parser decides too: exactly one statement, and a SELECT."""
        if not statements:
            raise SourceError(self.pipeline, query, "the SQL holds no statement")
        if len(statements) > 1:
            raise SourceError(
                self.pipeline,
                query,
                f"only one statement is allowed in a query; found {len(statements)}",
            )
        if statements[0].type.name != "SELECT":
            raise SourceError(
                self.pipeline,
                query,
                "only one SELECT (or WITH ... SELECT) statement is allowed; "
                f"found {_first_keyword(statements[0])}",
            )

    def _clean(self, exc: Exception) -> str:
        # Relative file names were made absolute (see _absolute_paths): show them as written.
        return _clean(exc).replace(f"{self.root}/", "")

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
            confine_sqlite(self.connection)
        except sqlite3.Error as exc:
            raise EilError(
                f'pipeline "{pipeline}": cannot open SQLite database {path}: {exc}'
            ) from None

    def _execute(self, query: str, sql: str, params: Mapping[str, Any]) -> pd.DataFrame:
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
        except (sqlite3.Warning, sqlite3.ProgrammingError) as exc:
            # "You can only execute one statement at a time."
            text = str(exc)
            if "one statement" in text:
                text = "only one statement is allowed in a query"
            raise SourceError(self.pipeline, query, text) from None
        except sqlite3.Error as exc:
            text = str(exc)
            if isinstance(exc, sqlite3.OperationalError) and text == "interrupted":
                text = "the query was interrupted"
            elif text in ("not authorized", "authorization denied"):
                text = (
                    "not authorized: a query may only read (no writes, ATTACH, VACUUM, "
                    "PRAGMA or extensions)"
                )
            raise SourceError(self.pipeline, query, text) from None

    def interrupt(self) -> None:
        self.connection.interrupt()

    def close(self) -> None:
        self.connection.close()


# What a query may do on SQLite: read tables (and the schema), run functions,
# use recursive CTEs.  Everything else (writes, ATTACH/DETACH, VACUUM (INTO),
# PRAGMA, transactions, schema changes) is denied by the authorizer, whatever
# sqlite3 or the statement check let through.
_SQLITE_ALLOWED = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE, sqlite3.SQLITE_FUNCTION}
)
# Functions that load code or touch files (the last three come with the sqlite3
# shell's fileio extension, should one be loaded).
_SQLITE_DENIED_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit"})


def _sqlite_authorizer(
    action: int, arg1: str | None, arg2: str | None, database: str | None, trigger: str | None
) -> int:
    if action not in _SQLITE_ALLOWED:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _SQLITE_DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def confine_sqlite(connection: sqlite3.Connection) -> None:
    """Let a SQLite connection (opened ``mode=ro``) only read: see ``_sqlite_authorizer``."""
    # Absent when Python's sqlite3 was built without extension loading.
    enable = getattr(connection, "enable_load_extension", None)
    if enable is not None:
        enable(False)
    connection.set_authorizer(_sqlite_authorizer)


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

        return open_named(pipeline, spec, root, target=target)
    path = resolve_path(root, spec.path) if spec.path else None
    if spec.kind == "sqlite":
        assert path is not None  # the model requires a path for sqlite
        return SQLiteSource(pipeline, path)
    return DuckDBSource(pipeline, root, path)
