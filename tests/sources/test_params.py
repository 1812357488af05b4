"""``$name`` → driver placeholders, never inside literals, comments or quoted bodies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eil_pipelines.sources.params import SQLTokenError, convert


@pytest.mark.parametrize(
    ("sql", "style", "expected", "names"),
    [
        ("SELECT $a, $b", "pyformat", "SELECT %(a)s, %(b)s", ("a", "b")),
        ("SELECT $a, $a", "qmark", "SELECT ?, ?", ("a", "a")),
        ("SELECT $a, $b, $a", "dollar", "SELECT $1, $2, $3", ("a", "b", "a")),
        ("SELECT $a", "named", "SELECT :a", ("a",)),
        ("SELECT $a", "numeric", "SELECT :1", ("a",)),
        ("SELECT $a", "format", "SELECT %s", ("a",)),
        # Literals, comments and quoted names keep their $words.
        ("SELECT '$a', $b", "pyformat", "SELECT '$a', %(b)s", ("b",)),
        ("SELECT 'it''s $a' || $b", "qmark", "SELECT 'it''s $a' || ?", ("b",)),
        ('SELECT "$a" FROM t WHERE x = $b', "qmark", 'SELECT "$a" FROM t WHERE x = ?', ("b",)),
        ("SELECT 1 -- $a\n, $b", "qmark", "SELECT 1 -- $a\n, ?", ("b",)),
        ("SELECT /* $a */ $b", "qmark", "SELECT /* $a */ ?", ("b",)),
        ("SELECT $b -- trailing $c", "qmark", "SELECT ? -- trailing $c", ("b",)),
        # Positional $1 is not a name; an identifier with $ inside is one word.
        ("SELECT $1, a$b FROM t", "qmark", "SELECT $1, a$b FROM t", ()),
    ],
)
def test_placeholders(sql: str, style: str, expected: str, names: tuple[str, ...]) -> None:
    converted = convert(sql, style, "postgres")  # type: ignore[arg-type]
    assert converted.sql == expected
    assert converted.names == names


def test_postgres_dollar_quoted_bodies_keep_their_dollars() -> None:
    sql = "SELECT $$ $a $$, $tag$ it's $b $tag$, $c"
    converted = convert(sql, "qmark", "postgres")
    assert converted.sql == "SELECT $$ $a $$, $tag$ it's $b $tag$, ?"
    assert converted.names == ("c",)


def test_postgres_nested_comments_and_escape_strings() -> None:
    sql = "SELECT /* outer /* inner $a */ still $b */ E'\\' $c', $d"
    converted = convert(sql, "qmark", "postgres")
    assert converted.names == ("d",)
    # Without the E prefix a backslash is an ordinary character.
    plain = convert("SELECT '\\', $d", "qmark", "postgres")
    assert plain.names == ("d",)


def test_mysql_backslashes_backticks_and_hash_comments() -> None:
    sql = "SELECT 'a\\' $x', `$y`, \"$z\" # $w\n, $v"
    converted = convert(sql, "qmark", "mysql")
    assert converted.names == ("v",)
    assert converted.sql.endswith("# $w\n, ?")


def test_percent_is_doubled_for_pyformat_drivers_everywhere() -> None:
    sql = "SELECT '100%' AS p, x % 2, $a -- 5% off"
    converted = convert(sql, "pyformat", "postgres")
    assert converted.sql == "SELECT '100%%' AS p, x %% 2, %(a)s -- 5%% off"
    # Python's % operator, which the drivers apply, gives the text back.
    assert converted.sql % {"a": "?"} == "SELECT '100%' AS p, x % 2, ? -- 5% off"
    assert convert(sql, "qmark", "postgres").sql.count("%") == 3


def test_statements_are_counted_outside_literals() -> None:
    assert convert("SELECT 1", "qmark").statements == 1
    assert convert("SELECT 1;", "qmark").statements == 1
    assert convert("SELECT ';' -- ;\n", "qmark").statements == 1
    assert convert("SELECT 1; DROP TABLE t", "qmark").statements == 2
    assert convert("  -- only a comment\n", "qmark").statements == 0
    assert convert("/* c */ with x as (select 1) select * from x", "qmark").first_word == "WITH"


@pytest.mark.parametrize(
    ("sql", "line", "what"),
    [
        ("SELECT 'open", 1, "string opened with '"),
        ('SELECT 1,\n"open', 2, 'quoted name opened with "'),
        ("SELECT 1 /* never closed", 1, "/* comment"),
        ("SELECT\n\n$q$ body", 3, "$q$ quoted body"),
    ],
)
def test_unclosed_tokens_name_the_line(sql: str, line: int, what: str) -> None:
    with pytest.raises(SQLTokenError) as caught:
        convert(sql, "qmark", "postgres")
    assert what in str(caught.value)
    assert f"(line {line} of the SQL)" in str(caught.value)


_name = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
_text = st.text(alphabet=st.sampled_from("ab $%;:-/*'\"\n"), max_size=12)


@given(
    names=st.lists(_name, min_size=1, max_size=4),
    literal=_text,
)
def test_parameters_are_found_around_any_literal(names: list[str], literal: str) -> None:
    """Whatever a string literal holds, it comes back intact and only real $names bind."""
    quoted = "'" + literal.replace("'", "''") + "'"
    sql = "SELECT " + ", ".join(f"${n}" for n in names) + f", {quoted} AS lit"
    converted = convert(sql, "pyformat", "postgres")
    assert list(converted.names) == names
    rendered = converted.sql % {n: f"<{n}>" for n in names}
    assert rendered.endswith(f", {quoted} AS lit")


@given(body=_text, tag=st.sampled_from(["", "x", "body_1"]))
def test_dollar_quoted_bodies_are_opaque(body: str, tag: str) -> None:
    fence = f"${tag}$"
    if fence in body:
        return
    sql = f"SELECT {fence}{body}{fence}, $p"
    converted = convert(sql, "qmark", "postgres")
    assert converted.names == ("p",)
    assert converted.sql == f"SELECT {fence}{body}{fence}, ?"
