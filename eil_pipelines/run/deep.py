"""Deep validation (``eil-run validate --deep``): what a run would trip over, without running.

Plain validation checks a pipeline file on its own.  This goes on to the
data and the template, as a run "now" would see them:

* each query is *prepared* against its source with the run's parameters:
  DuckDB and SQLite bind it (tables, files, columns, functions, ``$params``)
  inside ``SELECT * FROM (…) LIMIT 0``, which returns no rows, so nothing is
  scanned; in a query of several statements the ones before the last run,
  since the last one usually reads what they set up;
* each metric and chart column exists in its query's result columns;
* the custom template, and the ``subject`` templates of deliveries and the
  alert, use only variables a report has, and ``data.<query>``,
  ``charts.<chart>``, ``sql.<query>``, ``params.<name>``, ``run.<key>`` and
  ``pipeline.<key>`` name things that exist (and ``data.<query>.<column>``
  a column of that query, where the columns are known).

It lives in ``run/`` rather than ``spec/`` because it needs the run context
and the data sources, which sit above the spec in the import order.

Every problem is a ``(key path, message)`` pair, as the loader's are, so the
CLI prints both kinds the same way.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import meta, nodes
from jinja2.exceptions import TemplateSyntaxError

from ..errors import ConfigError, EilError, SourceError
from ..outputs.exports import export_problems
from ..render import SAFE_DATA_ATTRIBUTES, create_environment
from ..render.pdf import format_problems
from ..spec.loader import (
    PROJECT_FILE,
    Pipeline,
    display_path,
    load_pipelines_lenient,
    project_root_for,
)
from ..spec.project import load_project_settings
from .context import RunContext, make_context

__all__ = [
    "TEMPLATE_VARIABLES",
    "check_path",
    "deep_problems",
    "result_columns",
    "template_problems",
]

#: The variables a report template (and a subject template) sees.
TEMPLATE_VARIABLES = (
    "pipeline",
    "run",
    "params",
    "data",
    "charts",
    "metrics",
    "insights",
    "sql",
    "format",
)

# The read-only dict methods a template may call on data, charts, params, run …
_MAPPING_METHODS = frozenset({"items", "keys", "values", "get"})


def check_path(
    path: Path | str, *, deep: bool, now: datetime | None = None
) -> tuple[list[Pipeline], list[ConfigError]]:
    """Validate every pipeline file PATH names, and deep-check the valid ones when ``deep``.

    Returns the pipelines without a problem and one :class:`ConfigError` per
    file with problems, sorted by file.  Unlike :func:`load_pipelines` it does
    not stop at the folder's first invalid file: the valid ones are still
    deep-checked, so one pass shows everything.  Raises :class:`EilError` for
    a PATH that names no pipeline files.
    """

    path = Path(path)
    # One pass: the valid pipelines and the others' problems (files are not loaded twice).
    pipelines, errors = load_pipelines_lenient(path)
    # Formats and exports that need an optional extra (pdf, parquet, xlsx): detectable
    # without running.
    project_file = project_root_for(path) / PROJECT_FILE
    if project_file.exists():
        # The project settings (SMTP, delivery) are configuration too: a typo there
        # would otherwise surface only when the scheduler starts.

        try:
            load_project_settings(project_file.parent)
        except ConfigError as error:
            errors.append(error)

    ready = []
    for pipeline in pipelines:
        problems = format_problems(pipeline) + export_problems(pipeline)
        if problems:
            errors.append(ConfigError(pipeline.file, problems, shown=pipeline.display_path))
        else:
            ready.append(pipeline)
    pipelines = ready
    if deep:
        passed = []
        for pipeline in pipelines:
            problems = deep_problems(pipeline, now=now)
            if problems:
                errors.append(ConfigError(pipeline.file, problems, shown=pipeline.display_path))
            else:
                passed.append(pipeline)
        pipelines = passed
    errors.sort(key=lambda e: str(e.file))
    return pipelines, errors


def deep_problems(pipeline: Pipeline, *, now: datetime | None = None) -> list[tuple[str, str]]:
    """Every problem a run of ``pipeline`` at ``now`` (default: the clock) would meet
    before its data arrives, as ``(key path, message)`` pairs."""
    moment = now if now is not None else datetime.now(UTC)
    ctx = make_context(pipeline, moment)
    problems: list[tuple[str, str]] = []
    columns = _query_columns(pipeline, ctx, problems)
    problems.extend(_column_problems(pipeline, columns))
    spec = pipeline.spec
    if spec.alert is not None and spec.alert.query not in spec.queries:
        problems.append(
            (
                "alert.query",
                f'no query named "{spec.alert.query}"{_hint(spec.alert.query, spec.queries)}'
                f" (queries defined: {', '.join(sorted(spec.queries))})",
            )
        )
    template_path = pipeline.template_path
    if template_path is not None and template_path.is_file():
        shown = display_path(template_path)
        text = template_path.read_text(encoding="utf-8-sig")
        problems.extend(
            ("report.template", message)
            for message in template_problems(text, pipeline, columns, name=shown)
        )
    for i, deliver in enumerate(spec.deliver):
        problems.extend(
            (f"deliver[{i}].subject", message)
            for message in template_problems(deliver.subject, pipeline, columns)
        )
    if spec.alert is not None:
        problems.extend(
            ("alert.subject", message)
            for message in template_problems(spec.alert.subject, pipeline, columns)
        )
    return problems


# --------------------------------------------------------------------------- queries


def _query_columns(
    pipeline: Pipeline, ctx: RunContext, problems: list[tuple[str, str]]
) -> dict[str, list[str] | None]:
    """Each query's result columns (``None`` where the query could not be prepared)."""

    columns: dict[str, list[str] | None] = dict.fromkeys(pipeline.sql)
    params: dict[str, Any] = {**ctx.params(), **pipeline.spec.params}
    from ..sources import open_source  # the deep check only: sources cost start-up time

    try:
        source = open_source(pipeline.name, pipeline.spec.source, pipeline.root)
    except EilError as exc:
        spec_source = pipeline.spec.source
        key = "source.path" if not isinstance(spec_source, str) and spec_source.path else "source"
        message = str(exc).removeprefix(f'pipeline "{pipeline.name}": ')
        problems.append((key, message))
        return columns
    with source:
        for name, sql in pipeline.sql.items():
            try:
                columns[name] = result_columns(source, name, sql, params)
            except SourceError as exc:
                problems.append((f"queries.{name}", exc.detail))
            except EilError as exc:
                problems.append((f"queries.{name}", str(exc)))
    return columns


def result_columns(source: Any, query: str, sql: str, params: Mapping[str, Any]) -> list[str]:
    """The column names ``sql`` returns, found without fetching a row.

    Raises :class:`SourceError` with the database's message made one line,
    and the line number in the query's own text where the database gives one.
    """
    if source.kind == "duckdb":
        text = _duckdb_describe_sql(source.pipeline, query, sql)
    elif source.kind == "sqlite":
        text = _wrap(sql)
    else:  # another kind of source: its own way of describing
        return source.describe(query, sql, params)
    if text is None:  # a last statement that is not a SELECT: run it as it is
        text = sql
    try:
        return [str(c) for c in source.run(query, text, params).columns]
    except SourceError as exc:
        # The line numbers would point into our wrapper, not the user's SQL.
        raise SourceError(source.pipeline, query, _one_line(exc.detail, None)) from None


def _wrap(sql: str) -> str:
    # Newlines around the query, so a trailing "-- comment" can't swallow the wrapper.
    body = sql.strip().rstrip(";").rstrip()
    return f"SELECT * FROM (\n{body}\n) AS q LIMIT 0"


def _duckdb_describe_sql(pipeline: str, query: str, sql: str) -> str | None:
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SourceError(pipeline, query, _one_line(str(exc), 0)) from None
    if not statements:
        raise SourceError(pipeline, query, "the SQL holds no statement")
    last = statements[-1]
    if last.type.name != "SELECT":
        return None
    earlier = [s.query.strip().rstrip(";").rstrip() for s in statements[:-1]]
    # "\n;\n" between statements: a statement ending in a comment keeps its ";".
    return "\n;\n".join([*earlier, _wrap(last.query)])


def _one_line(message: str, line_offset: int | None) -> str:
    """A database message on one line: DuckDB's ``LINE n:`` excerpt becomes ``(line n)``
    when ``line_offset`` says how to map it to the user's text, and is dropped otherwise."""
    head, _, excerpt = message.strip().partition("\n\nLINE ")
    text = " ".join(part.strip() for part in head.splitlines() if part.strip())
    number = re.match(r"(\d+):", excerpt)
    if number and line_offset is not None:
        text += f" (line {int(number.group(1)) - line_offset} of the SQL)"
    return text


def _column_problems(
    pipeline: Pipeline, columns: Mapping[str, list[str] | None]
) -> Iterable[tuple[str, str]]:
    spec = pipeline.spec

    def check(key: str, query: str, column: str | None) -> Iterable[tuple[str, str]]:
        known = columns.get(query)
        if column is None or known is None or column in known:
            return
        yield (
            key,
            f'no column "{column}" in the result of query "{query}"{_hint(column, known)}'
            f" (columns: {', '.join(known) or 'none'})",
        )

    for i, metric in enumerate(spec.metrics):
        yield from check(f"metrics[{i}].column", metric.query, metric.column)
        yield from check(f"metrics[{i}].compare", metric.query, metric.compare)
    for i, chart in enumerate(spec.charts):
        yield from check(f"charts[{i}].x", chart.query, chart.x)
        if isinstance(chart.y, str):
            yield from check(f"charts[{i}].y", chart.query, chart.y)
        else:
            for j, y in enumerate(chart.y):
                yield from check(f"charts[{i}].y[{j}]", chart.query, y)
        yield from check(f"charts[{i}].series", chart.query, chart.series)


# --------------------------------------------------------------------------- templates


def template_problems(
    text: str,
    pipeline: Pipeline,
    columns: Mapping[str, list[str] | None] | None = None,
    *,
    name: str | None = None,
) -> list[str]:
    """What in a template names a variable, query, chart, parameter or column that
    doesn't exist.  Messages start with ``name:line:`` when ``name`` is given.

    A syntax error is one message; the names are then not checked.  A root
    name the template assigns itself (``{% set data = … %}``, a loop
    variable) is left alone: its attributes are the template's business.
    """

    env = create_environment("md")
    where: Callable[[int | None], str] = (
        (lambda line: f"{name}:{line}: " if line else f"{name}: ") if name else (lambda line: "")
    )
    try:
        tree = env.parse(text)
    except TemplateSyntaxError as exc:
        return [f"{where(exc.lineno)}template syntax error: {exc.message}"]

    messages: list[tuple[int, str]] = []  # (line, message): reported in the template's order
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    allowed = set(TEMPLATE_VARIABLES) | set(env.globals)
    for unknown in sorted(meta.find_undeclared_variables(tree) - allowed):
        line = next(
            (n.lineno for n in tree.find_all(nodes.Name) if n.name == unknown and n.ctx == "load"),
            None,
        )
        messages.append(
            (
                line or 0,
                f'{where(line)}unknown variable "{unknown}"{_hint(unknown, TEMPLATE_VARIABLES)}'
                f" (a report template sees: {', '.join(TEMPLATE_VARIABLES)})",
            )
        )

    names = _attribute_names(pipeline)
    seen: set[tuple[str, ...]] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)  # what find_all was asked for
        attr = _attribute(node)
        target = node.node
        if attr is None:
            continue
        if isinstance(target, nodes.Name) and target.ctx == "load":
            root = target.name
            if root in assigned or root not in names or (root, attr) in seen:
                continue
            kind, plural, known = names[root]
            if attr in known or attr in _MAPPING_METHODS:
                continue
            seen.add((root, attr))
            listed = ", ".join(sorted(known)) or "none"
            messages.append(
                (
                    node.lineno,
                    f'{where(node.lineno)}{root}.{attr}: no {kind} named "{attr}"'
                    f"{_hint(attr, known)} ({plural}: {listed})",
                )
            )
        elif (
            columns is not None
            and isinstance(target, nodes.Getattr | nodes.Getitem)
            and isinstance(target.node, nodes.Name)
            and target.node.name == "data"
            and "data" not in assigned
        ):
            query = _attribute(target)
            known_columns = columns.get(query) if query else None
            if known_columns is None or attr in known_columns or (query, attr) in seen:
                continue

            if attr in SAFE_DATA_ATTRIBUTES:
                continue
            seen.add((query, attr))  # type: ignore[arg-type]
            messages.append(
                (
                    node.lineno,
                    f'{where(node.lineno)}data.{query}.{attr}: no column "{attr}" in the result '
                    f'of query "{query}"{_hint(attr, known_columns)} '
                    f"(columns: {', '.join(known_columns) or 'none'})",
                )
            )
    return [message for _line, message in sorted(messages, key=lambda m: m[0])]


def _attribute(node: Any) -> str | None:
    """The name in ``x.name`` or ``x["name"]``; None for a computed key."""

    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        value = node.arg.value
        return value if isinstance(value, str) else None
    return None


def _attribute_names(pipeline: Pipeline) -> dict[str, tuple[str, str, set[str]]]:
    """For each root variable with known keys: (what a key is, plural, the keys)."""

    spec = pipeline.spec
    utc = ZoneInfo("UTC")
    moment = datetime(2000, 1, 1, tzinfo=utc)
    sample = RunContext("p", moment, utc, moment, moment, moment, moment, "day", "2000-01-01")
    queries = set(spec.queries)
    return {
        "data": ("query", "queries", queries),
        "sql": ("query", "queries", queries),
        "charts": ("chart", "charts", {c.name for c in spec.charts}),
        "params": ("parameter", "parameters", set(spec.params)),
        "run": ("run value", "run has", set(sample.template_run())),
        "pipeline": ("pipeline value", "pipeline has", {"name", "title", "description"}),
    }


def _hint(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""
