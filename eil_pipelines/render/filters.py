"""Template filters: numbers, changes, dates, tables and code blocks.

Every filter exists in both renderings.  Where the output is markup, the
``md`` rendering returns Markdown text and the ``html`` rendering returns
:class:`markupsafe.Markup` (trusted HTML: the filter escaped every value it
put in), so the same template line works for both formats.

Filters that need the run's settings (``max_rows``, the currency symbol) or
the format are built per rendering by :func:`make_filters`.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from numbers import Real
from typing import TYPE_CHECKING, Any

from jinja2.exceptions import TemplateRuntimeError
from markupsafe import Markup, escape

from .._lazy import LazyModule
from ..formatting import (
    COMPACT_MONEY_FROM,
    MISSING,
    format_change,
    format_compact,
    format_currency,
    format_id,
    format_number,
    format_percent,
    format_signed_percent,
    infer_column_format,
    is_missing,
)
from .markdown import escape_markdown

# pandas loads only when a report renders: `eil-run validate` compiles templates without it.
if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class TemplateDataError(TemplateRuntimeError):
    """A template used a filter or a name wrongly.

    Its message is shown to the user as it is (the renderer adds the
    template name and line), so it says what was wrong and what would work.
    """


# -- numbers ------


def _plain(value: Any) -> Any:
    """Decimals (DuckDB DECIMAL columns) print like floats; the formatters take Reals."""
    if isinstance(value, Decimal):
        return float(value)
    return value


def number(value: Any, decimals: int | None = None) -> str:
    """``1234567.8`` → ``1,234,568``; ``12.345`` → ``12.35``; missing → ``–``."""
    return format_number(_plain(value), decimals)


def percent(value: Any, decimals: int | None = None) -> str:
    """A fraction as a percentage: ``0.1234`` → ``12.3%``."""
    return format_percent(_plain(value), decimals)


def compact(value: Any, decimals: int | None = None) -> str:
    """``1_240_000`` → ``1.24M``; ``5300`` → ``5.3K``."""
    return format_compact(_plain(value), decimals)


def make_currency(default_symbol: str) -> Callable[..., str]:
    """The ``currency`` filter with the report's symbol as its default."""

    def currency(value: Any, symbol: str | None = None, decimals: int | None = None) -> str:
        """``1234.5`` → ``$1,234.50``; the symbol defaults to the report's ``currency``."""
        return format_currency(
            _plain(value), default_symbol if symbol is None else symbol, decimals
        )

    return currency


# -- change arrows ------


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def delta_parts(value: Any, good: str = "up") -> tuple[str, str | None, str]:
    """``(text, direction, sentiment)`` of a change for the ``delta`` filter.

    ``value`` is a fractional change (``0.124``) or a metric with
    ``change_pct`` and ``good`` (and, when it has them, the metric's own
    ``direction`` and ``sentiment`` win, so the report agrees with the
    metric computation).  ``direction`` is ``None`` when there is no change
    to show (no previous value, or a previous value of zero).
    """
    if isinstance(value, str):
        raise TemplateDataError(
            f'filter "delta": expected a change such as 0.124 or a metric, got {value!r}'
        )
    is_metric = not (value is None or isinstance(value, Real | Decimal))
    if is_metric:
        pct = _plain(_field(value, "change_pct"))
        good = _field(value, "good", good) or good
    else:
        pct = _plain(value)
    if good not in ("up", "down"):
        raise TemplateDataError(f'filter "delta": good must be "up" or "down", not {good!r}')
    # A metric's own change text wins: it says "pts" for percent metrics, so the
    # KPI card, the insight and the site all state the same change.
    own = _field(value, "change_text") if is_metric else None
    text = own if isinstance(own, str) and own else format_change(pct)
    if text == MISSING:
        return text, None, "neutral"
    direction = _field(value, "direction") if is_metric else None
    if direction not in ("up", "down", "flat"):
        direction = "up" if pct > 0 else "down" if pct < 0 else "flat"
    sentiment = _field(value, "sentiment") if is_metric else None
    if sentiment not in ("good", "bad", "neutral"):
        sentiment = "neutral" if direction == "flat" else "good" if direction == good else "bad"
    return text, direction, sentiment


def make_delta(fmt: str) -> Callable[..., Any]:
    """The ``delta`` filter: ``▲ +12.4%`` in Markdown, a classed ``<span>`` in HTML."""

    def delta(value: Any, good: str = "up") -> Any:
        """A change with arrow and sign; in HTML, classes say which way and whether it is good."""
        text, direction, sentiment = delta_parts(value, good)
        if fmt == "md":
            return text
        classes = " ".join(c for c in ("delta", direction, sentiment) if c)
        return Markup('<span class="{}">{}</span>').format(classes, text)

    return delta


# -- dates ------


def _as_datetime(value: Any) -> datetime | None:
    if is_missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _is_midnight(value: datetime) -> bool:
    return value.time() == time()


def format_datetime(value: Any) -> str:
    """``2026-11-27`` for a date or a midnight, ``2026-11-27 08:30`` otherwise."""
    if is_missing(value):
        return MISSING
    moment = _as_datetime(value)
    if moment is None:
        return str(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if _is_midnight(moment):
        return moment.strftime("%Y-%m-%d")
    if moment.second or moment.microsecond:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def date_filter(value: Any, fmt: str | None = None) -> str:
    """A date as people read it (``27 Nov 2026``; ``27 Nov 2026 08:30`` with a time),
    or formatted with ``strftime`` codes such as ``"%Y-%m-%d"``."""
    moment = _as_datetime(value)
    if fmt is None:
        if moment is None:
            return MISSING if is_missing(value) else str(value)
        if isinstance(value, date) and not isinstance(value, datetime):
            return _day(value)
        if _is_midnight(moment):
            return _day(moment)
        # Minutes, not seconds: "08:30", never "07:49:50" for an ad-hoc run.
        return f"{_day(moment)} {moment:%H:%M}"
    return MISSING if moment is None else moment.strftime(fmt)


def _day(value: date) -> str:
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def format_period(start: Any, end: Any = None) -> str:
    """A period as people read it: ``1–30 Nov 2026``, ``24 Nov – 1 Dec 2026``.

    The period is half-open, as the queries see it (``ts >= start AND ts <
    end``): when both ends are whole days the last day shown is the one
    before ``end``.  Without ``end``, the one day (or moment) ``start``.
    """
    first = _as_datetime(start)
    if first is None:
        return MISSING
    if end is None or is_missing(end):
        return _day(first) if _is_midnight(first) else f"{_day(first)} {first:%H:%M}"
    last = _as_datetime(end)
    if last is None:
        return MISSING
    if _is_midnight(first) and _is_midnight(last) and last > first:
        a, b = first.date(), (last - timedelta(days=1)).date()
        if a == b:
            return _day(a)
        if (a.year, a.month) == (b.year, b.month):
            return f"{a.day}–{_day(b)}"
        if a.year == b.year:
            return f"{a.day} {_MONTHS[a.month - 1]} – {_day(b)}"
        return f"{_day(a)} – {_day(b)}"
    if first.date() == last.date():
        return f"{_day(first)} {first:%H:%M}–{last:%H:%M}"
    return f"{_day(first)} {first:%H:%M} – {_day(last)} {last:%H:%M}"


# -- tables ------

DOCUMENT_MAX_ROWS = 1000
"""No table in a document holds more rows than this, whatever ``max_rows`` says:
a report is read, not searched, and 100,000 rows took 16 s and made a page
nobody opens.  Every row is in the exports."""

COLUMNS_ATTR = "eil_columns"
"""``DataFrame.attrs`` key under which a run passes a query's ``[queries.x.columns]``
(column name → ``{"label", "format", "decimals"}``) to the ``table`` filter."""

EXPORT_ATTR = "eil_export"
"""``DataFrame.attrs`` key holding ``(relative href, label)`` of the query's full-data export."""

_NUMERIC_FORMATS = {"number", "currency", "percent", "compact", "compact_currency", "change"}


def _datetime_column(values: pd.Series) -> list[str]:
    """Dates when every value is a midnight; otherwise every value with its time (vectorised)."""
    present = values.dropna()
    if present.empty:
        return [MISSING] * len(values)
    if bool((present == present.dt.normalize()).all()):
        pattern = "%Y-%m-%d"
    elif bool(((present.dt.second != 0) | (present.dt.microsecond != 0)).any()):
        pattern = "%Y-%m-%d %H:%M:%S"
    else:
        pattern = "%Y-%m-%d %H:%M"
    return values.dt.strftime(pattern).fillna(MISSING).tolist()


def _cell_text(value: Any) -> str:
    """One value of a column with no single type (object dtype)."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime | date | pd.Timestamp):
        return format_datetime(value)
    if isinstance(value, Real | Decimal):
        return format_number(_plain(value))
    return str(value)


def _numbers(values: pd.Series) -> Any:
    """The column as a float64 array (NaN where missing) when every present value is a
    number (DuckDB DECIMALs arrive as objects), else ``None``."""
    import numpy as np

    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_numeric_dtype(dtype):
        # Straight to an array: a float Series first cost a copy and a dtype lookup per cell.
        return values.to_numpy(dtype="float64", na_value=np.nan)
    if not pd.api.types.is_object_dtype(dtype):
        return None
    present = values.dropna()
    if present.empty or not all(
        isinstance(v, Real | Decimal) and not isinstance(v, bool) for v in present
    ):
        return None
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _column_decimals(finite: Any) -> int:
    """One number of decimals per column, so the figures line up."""
    if finite.size == 0 or bool((finite == finite.round()).all()):
        return 0
    largest = float(abs(finite).max())
    return 4 if 0 < largest < 0.1 else 2


def _number_cells(
    name: Any,
    values: pd.Series,
    arr: Any,
    fmt: str | None,
    decimals: int | None,
    currency: str,
) -> list[str]:
    """A numeric column formatted as a whole: one format and one precision per column.

    Only the final ``str.format`` runs per cell; the decisions (format,
    decimals, compactness) are made once from the column's values.
    """
    import numpy as np

    missing = np.isnan(arr)
    finite = arr[~missing & np.isfinite(arr)]
    if fmt is None:
        fmt = infer_column_format(name, finite.tolist())
    if fmt == "id" or fmt == "text":
        if pd.api.types.is_integer_dtype(values.dtype):
            texts = values.astype(str).tolist()  # exact, even above 2**53
        else:
            texts = [format_id(_plain(v)) for v in values.tolist()]
        return [MISSING if m else t for t, m in zip(texts, missing.tolist(), strict=True)]
    if fmt == "currency":
        largest = float(abs(finite).max()) if finite.size else 0.0
        if decimals is None and largest >= COMPACT_MONEY_FROM:
            cells = [format_compact(v, symbol=currency) for v in arr.tolist()]
        else:
            places = decimals
            if places is None:
                whole = finite.size == 0 or bool((finite == finite.round()).all())
                places = 0 if whole or largest >= 10_000 else 2
            pattern = f"{{sign}}{currency}{{:,.{places}f}}"
            cells = [pattern.format(abs(v), sign="-" if v < 0 else "") for v in arr.tolist()]
    elif fmt == "percent":
        pattern = f"{{:,.{1 if decimals is None else decimals}f}}%"
        cells = [pattern.format(v * 100) for v in arr.tolist()]
    elif fmt == "change":
        cells = [format_signed_percent(v, decimals) for v in arr.tolist()]
    elif fmt == "compact":
        cells = [format_compact(v, decimals) for v in arr.tolist()]
    elif fmt == "compact_currency":
        cells = [format_compact(v, decimals, symbol=currency) for v in arr.tolist()]
    else:
        places = _column_decimals(finite) if decimals is None else decimals
        pattern = f"{{:,.{places}f}}"
        cells = [pattern.format(v) for v in arr.tolist()]
    return [MISSING if m else c for c, m in zip(cells, missing.tolist(), strict=True)]


def _format_column(
    name: Any, values: pd.Series, spec: Mapping[str, Any] | None = None, currency: str = "$"
) -> tuple[list[str], bool]:
    """The column's cells as text, and whether it is numeric (right-aligned)."""
    fmt = spec.get("format") if spec else None
    decimals = spec.get("decimals") if spec else None
    dtype = values.dtype
    if fmt == "text":
        return [_cell_text(v) for v in values.tolist()], False
    if pd.api.types.is_bool_dtype(dtype):
        return [_cell_text(v if is_missing(v) else bool(v)) for v in values.tolist()], False
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _datetime_column(values), False
    floats = _numbers(values)
    if floats is not None and fmt != "date":
        cells = _number_cells(name, values, floats, fmt, decimals, currency)
        shown = fmt or infer_column_format(name, [])
        return cells, shown in _NUMERIC_FORMATS
    if fmt == "date":
        return [format_datetime(v) for v in values.tolist()], False
    return [_cell_text(v) for v in values.tolist()], False


def _md_cell(text: str) -> str:
    # Data is text, never Markdown or inline HTML: no link, image, emphasis or
    # comment from a value ("<" as a reference also keeps markdownlint MD033 quiet).
    return escape_markdown(" ".join(text.splitlines()))


def _html_cell(text: str) -> str:
    # A line break inside a raw HTML block would let a blank line end the block early.
    if "\n" in text or "\r" in text:
        return "<br>".join(str(escape(line)) for line in text.splitlines())
    return str(escape(text))


def _as_frame(value: Any) -> pd.DataFrame:
    if isinstance(value, pd.DataFrame):
        frame = value
    elif isinstance(value, pd.Series):
        frame = value.to_frame()
    else:
        raise TemplateDataError(
            f'filter "table": expected a query result such as data.orders, '
            f"got {type(value).__name__}"
        )
    # A meaningful index (set_index, groupby) is data; the default 0..n-1 is not.
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    return frame


def _select(frame: pd.DataFrame, columns: Any) -> pd.DataFrame:
    if columns is None:
        return frame
    if isinstance(columns, str):
        columns = [columns]
    if not isinstance(columns, Sequence):
        raise TemplateDataError('filter "table": columns must be a list of column names')
    available = [str(c) for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TemplateDataError(
            f'filter "table": no column {missing[0]!r} (columns: {", ".join(available)})'
        )
    return frame[list(columns)]


def render_table(
    value: Any,
    fmt: str,
    max_rows: int,
    columns: Any = None,
    caption: str | None = None,
    *,
    currency: str = "$",
) -> Any:
    """A query result as a Markdown pipe table or an HTML ``<table>``.

    Shows the first ``max_rows`` rows (never more than
    :data:`DOCUMENT_MAX_ROWS`) and then says how many there were, with a
    link to the full data when the run exported it.  Each column is
    formatted as a whole, by its ``[queries.x.columns]`` entry or else by its
    type and name: money, rates, counts, IDs and dates each look right.
    Numeric columns are right-aligned.
    """
    if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1:
        raise TemplateDataError(f'filter "table": max_rows must be 1 or more, not {max_rows!r}')
    source = _as_frame(value)
    specs: Mapping[str, Any] = source.attrs.get(COLUMNS_ATTR) or {}
    export = source.attrs.get(EXPORT_ATTR)
    frame = _select(source, columns)
    total = len(frame)
    if total == 0 or len(frame.columns) == 0:
        return Markup("_No rows._" if fmt == "md" else '<p class="empty">No rows.</p>')
    # Cut before formatting: the cost is the rows shown, not the rows fetched.
    limit = min(max_rows, DOCUMENT_MAX_ROWS)
    shown = frame.head(limit) if total > limit else frame
    headers: list[str] = []
    cells: list[list[str]] = []
    numeric: list[bool] = []
    # items(), not iloc[:, i]: a column by position without the indexer's checks
    # (a third of a small table's cost), and still right for repeated names.
    for name, column in shown.items():
        spec = specs.get(str(name))
        texts, is_number = _format_column(name, column, spec, currency)
        headers.append(str(spec.get("label") or name) if spec else str(name))
        cells.append(texts)
        numeric.append(is_number)
    rows = list(zip(*cells, strict=True))
    note = None
    if total > len(shown):
        note = f"Showing {format_number(len(shown))} of {format_number(total)} rows."
        if max_rows > DOCUMENT_MAX_ROWS:
            note += f" A report holds at most {format_number(DOCUMENT_MAX_ROWS)} rows per table."
    link = tuple(export) if isinstance(export, list | tuple) and len(export) == 2 else None
    if fmt == "md":
        # Markup in Markdown too: the cells are escaped, the table must not be again.
        return Markup(_markdown_table(headers, rows, numeric, note, link))
    return _html_table(headers, rows, numeric, note, caption, link)


def _markdown_table(
    headers: list[str],
    rows: list[tuple[str, ...]],
    numeric: list[bool],
    note: str | None,
    link: tuple[str, str] | None = None,
) -> str:
    lines = [
        "| " + " | ".join(_md_cell(h) for h in headers) + " |",
        "| " + " | ".join("---:" if n else "---" for n in numeric) + " |",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    if link:
        href, label = link
        more = f"[Full data ({escape_markdown(label)})](<{href}>)"
        note = f"{note} {more}" if note else more
    if note:
        lines += ["", note]
    return "\n".join(lines)


def _html_table(
    headers: list[str],
    rows: list[tuple[str, ...]],
    numeric: list[bool],
    note: str | None,
    caption: str | None,
    link: tuple[str, str] | None = None,
) -> Markup:
    opens = [' class="num"' if n else "" for n in numeric]
    # A wide table scrolls inside its wrapper; tabindex lets keyboard users scroll it.
    if caption:
        wrap = Markup('<div class="table-wrap" tabindex="0" role="region" aria-label="{}">')
        parts = [str(wrap.format(caption))]
    else:
        parts = ['<div class="table-wrap" tabindex="0">']
    parts.append('<table class="data">')
    if caption:
        parts.append(str(Markup("<caption>{}</caption>").format(caption)))
    head = "".join(
        f'<th scope="col"{o}>{escape(h)}</th>' for h, o in zip(headers, opens, strict=True)
    )
    parts += ["<thead>", f"<tr>{head}</tr>", "</thead>", "<tbody>"]
    # Strings, not Markup.format per cell: every cell is escaped once by _html_cell,
    # and this loop is the whole cost of a large table.
    for row in rows:
        tds = "".join(f"<td{o}>{_html_cell(c)}</td>" for c, o in zip(row, opens, strict=True))
        parts.append(f"<tr>{tds}</tr>")
    parts += ["</tbody>", "</table>", "</div>"]
    if note or link:
        text = str(escape(note)) if note else ""
        if link:
            more = str(Markup('<a href="{}">Full data ({})</a>').format(link[0], link[1]))
            text = f"{text} {more}" if text else more
        parts.append(f'<p class="table-note">{text}</p>')
    return Markup("\n".join(parts))


# -- code ------


def render_code(text: Any, fmt: str, lang: str = "") -> Any:
    """A fenced code block (Markdown) or ``<pre><code>`` (HTML).

    Templates use this instead of writing a fence around ``{{ sql }}``: in
    the HTML rendering the value is HTML-escaped before Markdown sees it,
    and Markdown shows escapes inside a fence literally.
    """
    body = textwrap.dedent(str(text)).strip("\n")
    lang = re.sub(r"[^A-Za-z0-9_+-]", "", str(lang))
    if fmt == "md":
        longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
        fence = "`" * max(3, longest + 1)
        return Markup(f"{fence}{lang}\n{body}\n{fence}")  # inside a fence: literal
    if lang:
        return Markup('<pre><code class="language-{}">{}</code></pre>').format(lang, body)
    return Markup("<pre><code>{}</code></pre>").format(body)


# -- assembly ------


def make_filters(fmt: str, *, max_rows: int, currency: str) -> dict[str, Callable[..., Any]]:
    """The filters one rendering registers, bound to its format and settings."""

    def table(
        value: Any,
        max_rows: int | None = None,
        columns: Any = None,
        caption: str | None = None,
    ) -> Any:
        """A query result as a table, cut to ``max_rows`` (default: the report's)."""
        return render_table(
            value,
            fmt,
            default_rows if max_rows is None else max_rows,
            columns,
            caption,
            currency=currency,
        )

    def code(text: Any, lang: str = "") -> Any:
        """A code block, such as ``{{ sql.orders | code("sql") }}``."""
        return render_code(text, fmt, lang)

    default_rows = max_rows
    return {
        "table": table,
        "number": number,
        "currency": make_currency(currency),
        "percent": percent,
        "compact": compact,
        "delta": make_delta(fmt),
        "date": date_filter,
        "period": format_period,
        "code": code,
    }
