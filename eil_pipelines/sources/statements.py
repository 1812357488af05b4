"""The statement check: a query is one read-only ``SELECT``, whatever the engine.

Every source calls :func:`check_query` before its SQL reaches the engine.  It
parses the SQL with sqlglot (a real SQL parser, not a regular expression) in
the engine's dialect and refuses, with a message naming the pipeline and the
query:

* more than one statement (``SELECT 1; DROP TABLE t``);
* a statement that is not a query: ``INSERT``, ``UPDATE``, ``DELETE``,
  ``MERGE``, DDL (``CREATE``, ``DROP``, ``ALTER``, ``TRUNCATE``), ``COPY``,
  ``ATTACH``/``DETACH``, ``INSTALL``/``LOAD``, ``PRAGMA``, ``SET``/``RESET``,
  ``VACUUM``, ``CALL``, ``EXPORT``/``IMPORT DATABASE``, transactions, ``GRANT``
  …; also ``SELECT … INTO`` (creates a table), ``SELECT … FOR UPDATE``
  (takes locks) and a data-modifying ``WITH`` (``WITH x AS (DELETE … RETURNING
  *) SELECT …``), since the whole tree is searched, not only its top;
* a call of a function known to change state or reach outside the database
  (``set_config``, ``pg_read_file``, ``load_extension``, ``dblink``,
  ``nextval`` …).

The check is defence in depth: each engine has its own guard too (DuckDB: its
own parser's statement type plus confinement settings; SQLite: ``mode=ro`` and
an authorizer; servers: read-only transactions).  So the rule when sqlglot
cannot parse a query that the engine may well accept (sqlglot trails every
engine's newest syntax) is:

* the SQL is split into statements with sqlglot's tokenizer, which knows
  string literals, quoted names and comments; more than one statement is
  refused all the same;
* one statement whose first word starts a statement that is not a query
  (``INSERT``, ``COPY``, ``LOAD``, ``EXPORT`` …) is refused, named by that word;
* any other single statement, or SQL the tokenizer cannot read, goes on to
  the engine, whose own guard then decides (every engine here also refuses
  several statements in one call: DuckDB's statement list is checked,
  ``sqlite3`` and the server drivers' bound-parameter calls accept only one).

sqlglot takes a while to import, so it is imported here on the first check,
never by ``eil-run --help`` or ``validate``.  Results are cached by SQL text and
dialect: a scheduler running the same queries every hour parses each once.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from ..errors import SourceError

__all__ = ["check_query", "refusal"]

#: Functions a query may not call: they change the server's state, read or
#: write its files, or open connections elsewhere.  Lower case.  The engines'
#: own guards (read-only transactions, DuckDB's confinement, SQLite's
#: authorizer) stop these too; naming them here gives a clear message first.
FORBIDDEN_FUNCTIONS = frozenset(
    {
        # Postgres
        "set_config",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "lo_import",
        "lo_export",
        "lo_unlink",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_advisory_lock",
        "pg_advisory_xact_lock",
        "dblink",
        "dblink_exec",
        "dblink_connect",
        "nextval",
        "setval",
        # MySQL / MariaDB
        "load_file",
        "get_lock",
        "release_lock",
        "benchmark",
        # SQLite
        "load_extension",
        "writefile",
        "readfile",
        "edit",
        # DuckDB
        "getenv",
    }
)

#: sqlglot dialect names by source kind (a kind not listed is used as it is).
DIALECTS = {
    "duckdb": "duckdb",
    "sqlite": "sqlite",
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mssql": "tsql",
}


def check_query(pipeline: str, query: str, sql: str, dialect: str) -> None:
    """Refuse ``sql`` unless it is one query that reads and changes nothing.

    ``pipeline`` and ``query`` name it in the message; ``dialect`` is a source
    kind or a sqlglot dialect name (``duckdb``, ``sqlite``, ``postgres``,
    ``mysql``, ``snowflake`` …).  Authors' ``$name`` parameters are fine.

    Raises :class:`SourceError` saying what was refused, for example
    ``only one SELECT (or WITH ... SELECT) statement is allowed; found INSERT``.
    """
    message = refusal(sql, dialect)
    if message is not None:
        raise SourceError(pipeline, query, message)


@functools.lru_cache(maxsize=512)
def refusal(sql: str, dialect: str) -> str | None:
    """Why ``sql`` is refused, or ``None`` when it may run (see the module's rules)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    dialect = _known_dialect(DIALECTS.get(dialect.lower(), dialect.lower()))
    # sqlglot logs a warning when it parses a statement it doesn't know as a
    # generic command; that statement is refused anyway, with our message.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    try:
        parsed = sqlglot.parse(sql, read=dialect)
    except SqlglotError:
        return _unparsed(sql, dialect)
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if not statements:
        return "the SQL holds no statement"
    if len(statements) > 1:
        kinds = ", ".join(_kind(s) for s in statements)
        return f"only one statement is allowed in a query; found {len(statements)} ({kinds})"
    statement = statements[0]
    if not isinstance(statement, _queries()):
        return f"{_ONLY}; found {_kind(statement, sql, dialect)}"
    for node in statement.walk():
        if isinstance(node, _forbidden()):
            return f"{_ONLY}; found {_kind(node)}"
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name in FORBIDDEN_FUNCTIONS:
                return f"the function {name}() is not allowed in a query (it changes state or reaches outside the database)"
    return None


def _known_dialect(name: str) -> str:
    """``name`` when sqlglot knows it, else ``""`` (its generic SQL): a SQLAlchemy
    dialect sqlglot has never heard of still gets the statement check."""
    from sqlglot.dialects.dialect import Dialect

    try:
        Dialect.get_or_raise(name)
    except ValueError:
        return ""
    return name


_ONLY = "only one SELECT (or WITH ... SELECT) statement is allowed"


def _unparsed(sql: str, dialect: str) -> str | None:
    """The rule for SQL sqlglot cannot parse: split it into statements by tokens."""
    from sqlglot.dialects.dialect import Dialect
    from sqlglot.errors import SqlglotError
    from sqlglot.tokens import TokenType

    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except (SqlglotError, ValueError):
        return None  # the engine's own guard decides (see the module docstring)
    statements = 0
    in_statement = False
    first = tokens[0].text.upper() if tokens else ""
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            in_statement = False
        elif not in_statement:
            statements += 1
            in_statement = True
    if statements > 1:
        return f"only one statement is allowed in a query; found {statements}"
    if first in _STATEMENT_WORDS:
        return f"{_ONLY}; found {first}"
    return None


#: Words that start a statement other than a query, in some engine.  Unparsed
#: SQL starting with one is refused; any other start (a query sqlglot can't
#: read yet, or a typo like ``SELEC``) goes on to the engine's own guard, whose
#: syntax errors are the clearer.
_STATEMENT_WORDS = frozenset(
    [
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "UPSERT",
        "REPLACE",
        "CREATE",
        "DROP",
        "ALTER",
        "TRUNCATE",
        "RENAME",
        "COMMENT",
        "COPY",
        "ATTACH",
        "DETACH",
        "INSTALL",
        "UNINSTALL",
        "LOAD",
        "FORCE",
        "IMPORT",
        "EXPORT",
        "PRAGMA",
        "SET",
        "RESET",
        "VACUUM",
        "CALL",
        "EXEC",
        "EXECUTE",
        "DO",
        "PREPARE",
        "DEALLOCATE",
        "BEGIN",
        "START",
        "COMMIT",
        "ROLLBACK",
        "END",
        "ABORT",
        "SAVEPOINT",
        "RELEASE",
        "GRANT",
        "REVOKE",
        "USE",
        "ANALYZE",
        "CHECKPOINT",
        "EXPLAIN",
        "LOCK",
        "UNLOCK",
        "KILL",
        "HANDLER",
        "REINDEX",
        "CLUSTER",
        "SECURITY",
        "LISTEN",
        "NOTIFY",
        "UNLISTEN",
        "DISCARD",
        "REFRESH",
        "FLUSH",
        "PURGE",
        "OPTIMIZE",
        "REPAIR",
        "SHUTDOWN",
        "RESTART",
        "DECLARE",
        "FETCH",
        "MOVE",
        "CLOSE",
        "PUT",
        "GET",
        "REMOVE",
        "UNDROP",
        "UNSET",
        "UNLOAD",
    ]
)


@functools.cache
def _queries() -> tuple[type, ...]:
    from sqlglot import exp

    # DESCRIBE, SUMMARIZE, SHOW and PIVOT read only; Subquery is "(SELECT …)".
    return (exp.Query, exp.Values, exp.Describe, exp.Summarize, exp.Show, exp.Pivot)


@functools.cache
def _forbidden() -> tuple[type, ...]:
    from sqlglot import exp

    names = (
        "Insert",
        "Update",
        "Delete",
        "Merge",
        "Create",
        "Drop",
        "Alter",
        "TruncateTable",
        "Command",
        "Copy",
        "Attach",
        "Detach",
        "Install",
        "LoadData",
        "Set",
        "Pragma",
        "Use",
        "Transaction",
        "Commit",
        "Rollback",
        "Grant",
        "Revoke",
        "Kill",
        "Analyze",
        "Refresh",
        "Cache",
        "Uncache",
        "Export",
        "Into",
        "Lock",
    )
    # getattr: a class a future sqlglot renames must not break the check.
    return tuple(c for c in (getattr(exp, n, None) for n in names) if isinstance(c, type))


_KINDS = {
    "TruncateTable": "TRUNCATE",
    "LoadData": "LOAD DATA",
    "Into": "SELECT ... INTO",
    "Lock": "SELECT ... FOR UPDATE/SHARE",
    "SetOperation": "SELECT",
    "Union": "SELECT",
    "Intersect": "SELECT",
    "Except": "SELECT",
    "Subquery": "SELECT",
}


def _kind(node: Any, sql: str = "", dialect: str = "") -> str:
    """The statement's SQL keyword, for messages: ``INSERT``, ``CREATE TABLE``, ``VACUUM``.

    A top-level statement that sqlglot reads as something else (DuckDB's
    ``CHECKPOINT`` as a column name) is named by the first word of ``sql``.
    """
    from sqlglot import exp

    name = type(node).__name__
    if sql and not isinstance(node, (*_forbidden(), *_queries())):
        from sqlglot.dialects.dialect import Dialect

        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
        return tokens[0].text.upper() if tokens else name.upper()
    if isinstance(node, exp.Transaction | exp.Commit | exp.Rollback) and sql:
        return sql.split()[0].upper()
    if isinstance(node, exp.Command):
        # A statement sqlglot does not model: its first keyword (VACUUM, CALL, LOAD …).
        return str(node.this).upper()
    if isinstance(node, exp.Create | exp.Drop):
        kind = node.args.get("kind")
        verb = "CREATE" if isinstance(node, exp.Create) else "DROP"
        return f"{verb} {str(kind).upper()}" if kind else verb
    return _KINDS.get(name, name.upper())


def _function_name(node: Any) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower()
