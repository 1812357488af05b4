"""Template filters: numbers, changes, dates, tables and code blocks.

Every filter exists in both renderings.  Where the output is markup, the
``md`` rendering returns Markdown text and the ``html`` rendering returns
:class:`markupsafe.Markup` (trusted HTML: the filter escaped every value it
put in), so the same template line works for both formats.

Filters that need the run's settings (``max_rows``, the currency symbol) or
the format are built per rendering by :func:`make_filters`.
"""

from __future__ import annotations

import math
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
    MISSING,
    format_change,
    format_compact,
    format_currency,
    format_number,
    format_percent,
    is_missing,
)
from .markdown import escape_markdown

# pandas loads only when a report renders: `eil-run validate` compiles templates without it.
if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Integer columns that are labels, not quantities: "2,026" would be wrong for a year.
_LABEL_COLUMN = re.compile(r"(^|[_\s])(year|yr|id|code|zip|postcode)$", re.IGNORECASE)


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
    """A date or date-time as ISO text (``2026-11-27``, ``2026-11-27 08:30``), or
    formatted with ``strftime`` codes such as ``"%d %b %Y"``."""
    if fmt is None:
        return format_datetime(value)
    moment = _as_datetime(value)
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


def _float_decimals(values: pd.Series) -> int:
    """One number of decimals per column, so the figures line up."""
    finite = [float(v) for v in values if not is_missing(v) and math.isfinite(float(v))]
    if not finite or all(v.is_integer() for v in finite):
        return 0
    largest = max(abs(v) for v in finite)
    return 4 if 0 < largest < 0.1 else 2


def _datetime_column(values: pd.Series) -> list[str]:
    """Dates when every value is a midnight; otherwise every value with its time."""
    present = [v for v in values if not is_missing(v)]
    if all(_is_midnight(v) for v in present):
        pattern = "%Y-%m-%d"
    elif any(v.second or v.microsecond for v in present):
        pattern = "%Y-%m-%d %H:%M:%S"
    else:
        pattern = "%Y-%m-%d %H:%M"
    return [MISSING if is_missing(v) else v.strftime(pattern) for v in values]


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


def _format_column(name: Any, values: pd.Series) -> tuple[list[str], bool]:
    """The column's cells as text, and whether it is numeric (right-aligned)."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return [_cell_text(v if is_missing(v) else bool(v)) for v in values], False
    if pd.api.types.is_integer_dtype(dtype):
        if _LABEL_COLUMN.search(str(name)):
            return [MISSING if is_missing(v) else str(v) for v in values], False
        return [format_number(v) for v in values], True
    if pd.api.types.is_float_dtype(dtype):
        places = _float_decimals(values)
        return [format_number(v, places) for v in values], True
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _datetime_column(values), False
    present = [v for v in values if not is_missing(v)]
    numeric = bool(present) and all(
        isinstance(v, Real | Decimal) and not isinstance(v, bool) for v in present
    )
    return [_cell_text(v) for v in values], numeric


def _md_cell(text: str) -> str:
    # Data is text, never Markdown or inline HTML: no link, image, emphasis or
    # comment from a value ("<" as a reference also keeps markdownlint MD033 quiet).
    return escape_markdown(" ".join(text.splitlines()))


def _html_cell(text: str) -> Markup:
    # A line break inside a raw HTML block would let a blank line end the block early.
    return Markup("<br>").join(escape(line) for line in text.splitlines() or [""])


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
) -> Any:
    """A query result as a Markdown pipe table or an HTML ``<table>``.

    Shows the first ``max_rows`` rows and then says how many there were.
    Numeric columns are right-aligned; dates at midnight print as dates.
    """
    if not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 1:
        raise TemplateDataError(f'filter "table": max_rows must be 1 or more, not {max_rows!r}')
    frame = _select(_as_frame(value), columns)
    total = len(frame)
    if total == 0 or len(frame.columns) == 0:
        return Markup("_No rows._" if fmt == "md" else '<p class="empty">No rows.</p>')
    shown = frame.head(max_rows)
    headers = [str(c) for c in shown.columns]
    cells: list[list[str]] = []
    numeric: list[bool] = []
    for position, name in enumerate(shown.columns):
        texts, is_number = _format_column(name, shown.iloc[:, position])
        cells.append(texts)
        numeric.append(is_number)
    rows = list(zip(*cells, strict=True))
    note = None
    if total > len(shown):
        note = f"Showing {format_number(len(shown))} of {format_number(total)} rows."
    if fmt == "md":
        # Markup in Markdown too: the cells are escaped, the table must not be again.
        return Markup(_markdown_table(headers, rows, numeric, note))
    return _html_table(headers, rows, numeric, note, caption)


def _markdown_table(
    headers: list[str], rows: list[tuple[str, ...]], numeric: list[bool], note: str | None
) -> str:
    lines = [
        "| " + " | ".join(_md_cell(h) for h in headers) + " |",
        "| " + " | ".join("---:" if n else "---" for n in numeric) + " |",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    if note:
        lines += ["", note]
    return "\n".join(lines)


def _html_table(
    headers: list[str],
    rows: list[tuple[str, ...]],
    numeric: list[bool],
    note: str | None,
    caption: str | None,
) -> Markup:
    def cls(is_number: bool) -> Markup:
        return Markup(' class="num"') if is_number else Markup("")

    # A wide table scrolls inside its wrapper; tabindex lets keyboard users scroll it.
    if caption:
        wrap = Markup('<div class="table-wrap" tabindex="0" role="region" aria-label="{}">')
        parts = [wrap.format(caption)]
    else:
        parts = [Markup('<div class="table-wrap" tabindex="0">')]
    parts.append(Markup('<table class="data">'))
    if caption:
        parts.append(Markup("<caption>{}</caption>").format(caption))
    head = Markup("").join(
        Markup('<th scope="col"{}>{}</th>').format(cls(n), h)
        for h, n in zip(headers, numeric, strict=True)
    )
    parts += [Markup("<thead>"), Markup("<tr>{}</tr>").format(head), Markup("</thead>")]
    parts.append(Markup("<tbody>"))
    for row in rows:
        tds = Markup("").join(
            Markup("<td{}>{}</td>").format(cls(n), _html_cell(c))
            for c, n in zip(row, numeric, strict=True)
        )
        parts.append(Markup("<tr>{}</tr>").format(tds))
    parts += [Markup("</tbody>"), Markup("</table>"), Markup("</div>")]
    if note:
        parts.append(Markup('<p class="table-note">{}</p>').format(note))
    return Markup("\n").join(parts)


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
            value, fmt, default_rows if max_rows is None else max_rows, columns, caption
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
