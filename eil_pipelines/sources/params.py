"""``$name`` parameters → each driver's bound-parameter style.

Authors write ``$name`` whatever the engine.  Server drivers want their own
DB-API ``paramstyle`` (``%(name)s`` for psycopg and PyMySQL, ``:name``,
``?`` …), so the SQL is tokenized once: a ``$name`` is a parameter only
outside string literals, comments, quoted identifiers and Postgres
dollar-quoted bodies.  Values are never formatted into the text; only the
placeholder changes.

For the ``format``/``pyformat`` styles the driver runs Python's ``%``
operator over the whole text, literals included, so every literal ``%`` is
doubled.  The tokenizer also notices a second statement after a ``;``, which
server sources refuse (one query, one statement).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Style = Literal["pyformat", "format", "named", "qmark", "numeric", "dollar"]
Dialect = Literal["postgres", "mysql", "generic"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Za-z0-9_$]+")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Converted:
    """SQL in a driver's style, with what the driver needs to bind it."""

    sql: str
    """The SQL text with each ``$name`` replaced by the driver's placeholder."""

    names: tuple[str, ...]
    """Parameter names in order of appearance (repeats included, for positional styles)."""

    statements: int
    """How many non-empty statements the text holds (``;`` outside literals)."""

    first_word: str = ""
    """The statement's first keyword, upper case (comments skipped): ``SELECT``, ``WITH`` …"""

    def used(self) -> set[str]:
        """The distinct parameter names the SQL uses."""
        return set(self.names)

    def bind(self, params: Mapping[str, Any], style: Style) -> dict[str, Any] | list[Any]:
        """The values to pass to ``cursor.execute`` for ``style``."""
        if style in ("pyformat", "named"):
            return {name: params[name] for name in self.used()}
        return [params[name] for name in self.names]


class SQLTokenError(ValueError):
    """The SQL ends inside a literal, identifier or comment."""

    def __init__(self, message: str, line: int):
        self.line = line
        super().__init__(f"{message} (line {line} of the SQL)")


def convert(sql: str, style: Style, dialect: Dialect = "generic") -> Converted:
    """Rewrite ``$name`` parameters of ``sql`` into ``style`` placeholders.

    ``dialect`` decides the lexical rules: ``postgres`` knows dollar-quoted
    bodies, nested block comments and ``E'…'`` strings; ``mysql`` knows
    backslash escapes, backtick identifiers and ``#`` comments.
    """
    percent = style in ("pyformat", "format")
    out: list[str] = []
    names: list[str] = []
    statements = 0
    first_word = ""
    current_has_text = False
    i = 0
    n = len(sql)

    def literal(text: str) -> None:
        out.append(text.replace("%", "%%") if percent else text)

    def line_at(pos: int) -> int:
        return sql.count("\n", 0, pos) + 1

    while i < n:
        c = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        start = i
        if (c == "-" and nxt == "-") or (c == "#" and dialect == "mysql"):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            literal(sql[start:i])
            continue
        if c == "/" and nxt == "*":
            depth, i = 1, i + 2
            while depth:
                if i >= n:
                    raise SQLTokenError("a /* comment is not closed", line_at(start))
                if sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                elif dialect == "postgres" and sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                else:
                    i += 1
            literal(sql[start:i])
            continue
        if c in "'\"`" and (c != "`" or dialect == "mysql"):
            backslash = dialect == "mysql" and c != "`"
            if dialect == "postgres" and c == "'" and start > 0 and sql[start - 1] in "eE":
                # E'…' escape strings: the E before is an identifier char, not a word.
                before = sql[start - 2] if start > 1 else " "
                backslash = not (before.isalnum() or before == "_")
            i += 1
            while True:
                if i >= n:
                    what = "string" if c == "'" else "quoted name"
                    raise SQLTokenError(f"a {what} opened with {c} is not closed", line_at(start))
                ch = sql[i]
                if backslash and ch == "\\":
                    i += 2
                elif ch == c:
                    if i + 1 < n and sql[i + 1] == c:
                        i += 2  # doubled quote: an escaped quote
                    else:
                        i += 1
                        break
                else:
                    i += 1
            literal(sql[start:i])
            current_has_text = True
            continue
        if c == "$":
            tag = _DOLLAR_TAG.match(sql, i) if dialect != "mysql" else None
            if tag is not None:
                close = sql.find(tag.group(0), tag.end())
                if close < 0:
                    raise SQLTokenError(
                        f"a {tag.group(0)} quoted body is not closed", line_at(start)
                    )
                i = close + len(tag.group(0))
                literal(sql[start:i])
                current_has_text = True
                continue
            ident = _IDENT.match(sql, i + 1)
            if ident is not None:
                name = ident.group(0)
                names.append(name)
                out.append(_placeholder(style, name, len(names)))
                i = ident.end()
                current_has_text = True
                continue
        if c == ";":
            if current_has_text:
                statements += 1
            current_has_text = False
            literal(c)
            i += 1
            continue
        if c.isalnum() or c == "_":
            # A whole word at once, so "e$x" or "a$b" is never split into a parameter.
            m = _WORD.match(sql, i)
            assert m is not None
            if not first_word:
                first_word = m.group(0).upper()
            literal(m.group(0))
            i = m.end()
            current_has_text = True
            continue
        if not c.isspace():
            current_has_text = True
        literal(c)
        i += 1
    if current_has_text:
        statements += 1
    return Converted("".join(out), tuple(names), statements, first_word)


def _placeholder(style: Style, name: str, index: int) -> str:
    if style == "pyformat":
        return f"%({name})s"
    if style == "named":
        return f":{name}"
    if style == "format":
        return "%s"
    if style == "qmark":
        return "?"
    if style == "numeric":
        return f":{index}"
    return f"${index}"


def missing(names: Sequence[str], params: Mapping[str, Any]) -> list[str]:
    """The names used but not given, sorted."""
    return sorted(set(names) - set(params))
