"""Number formats shared by KPI figures, template filters, tables, insights and chart axes.

Pure functions of their arguments, so a figure prints the same in the KPI
block, in a table, in an insight and on a chart axis.  Column formats are
inferred here too (:func:`infer_column_format`), so a table and a chart of
the same column agree.


Babel was measured for locale-aware separators and left out (docs/reports.md,
"Number formats without Babel"): 36 MB installed, about 36 ms to import
``babel.numbers`` and 34 ms more for a locale's first number, against reports
whose numbers all follow one house style (``1,234``; ``$2.92B``).  A locale
option can be added behind this module without touching callers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from numbers import Real
from typing import Any

MISSING = "–"
_COMPACT_STEPS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))

COMPACT_MONEY_FROM = 1_000_000
"""Money from this size prints compactly (``$630M``): full precision reads as noise."""


def is_missing(value: Any) -> bool:
    """True for ``None``, NaN and pandas' missing markers."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, pd.NA and NaT are not equal to themselves
    except (TypeError, ValueError):
        return False


def format_number(value: Any, decimals: int | None = None) -> str:
    """``1234567.8`` → ``1,234,568``; whole numbers get no decimals by default."""
    if is_missing(value):
        return MISSING
    if not isinstance(value, Real):
        return str(value)
    if decimals is None:
        decimals = 0 if float(value).is_integer() or abs(float(value)) >= 100 else 2
    return f"{value:,.{decimals}f}"


def format_currency(value: Any, symbol: str = "$", decimals: int | None = None) -> str:
    """``1234.5`` → ``$1,234.50``; ``-50`` → ``-$50.00``; large values drop the cents.

    From a million up the value prints compactly (``$630M``, ``$2.92B``) unless
    ``decimals`` asks for a precision.
    """
    if is_missing(value):
        return MISSING
    if not isinstance(value, Real):
        return str(value)
    if decimals is None and abs(float(value)) >= COMPACT_MONEY_FROM:
        return format_compact(value, symbol=symbol)
    if decimals is None:
        decimals = 0 if abs(float(value)) >= 10_000 else 2
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.{decimals}f}"


def format_percent(value: Any, decimals: int | None = None) -> str:
    """A fraction as a percentage: ``0.1234`` → ``12.3%``."""
    if is_missing(value):
        return MISSING
    if not isinstance(value, Real):
        return str(value)
    return f"{value * 100:,.{1 if decimals is None else decimals}f}%"


def format_compact(value: Any, decimals: int | None = None, symbol: str = "") -> str:
    """``1_240_000`` → ``1.24M``; ``5300`` → ``5.3K``; ``950`` → ``950``."""
    if is_missing(value):
        return MISSING
    if not isinstance(value, Real):
        return str(value)
    sign = "-" if value < 0 else ""
    magnitude = abs(float(value))
    for step, suffix in _COMPACT_STEPS:
        if magnitude >= step * 0.9995:
            scaled = magnitude / step
            places = (
                decimals
                if decimals is not None
                else (2 if scaled < 10 else 1 if scaled < 100 else 0)
            )
            text = f"{scaled:.{places}f}"
            if decimals is None and "." in text:
                # Trailing zeros only after the point: 1.50M → 1.5M, but 830K stays 830K.
                text = text.rstrip("0").rstrip(".")
            return f"{sign}{symbol}{text}{suffix}"
    places = (
        decimals
        if decimals is not None
        else (0 if magnitude.is_integer() or magnitude >= 100 else 2)
    )
    return f"{sign}{symbol}{magnitude:.{places}f}"


def format_id(value: Any) -> str:
    """An identifier, code or year: ``123307`` → ``123307`` (no separators, no decimals)."""
    if is_missing(value):
        return MISSING
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_signed_percent(value: Any, decimals: int | None = None) -> str:
    """A fractional change with its sign: ``0.044`` → ``+4.4%``, ``-0.6`` → ``−60.0%``, ``0`` → ``0.0%``."""
    if is_missing(value):
        return MISSING
    if not isinstance(value, Real):
        return str(value)
    places = 1 if decimals is None else decimals
    number = float(value)
    text = f"{abs(number) * 100:,.{places}f}%"
    if float(text.rstrip("%").replace(",", "")) == 0:
        return f"{0:.{places}f}%"
    return ("+" if number > 0 else "−") + text


def format_value(
    value: Any, fmt: str = "number", *, currency: str = "$", decimals: int | None = None
) -> str:
    """Format by name: ``number``, ``currency``, ``percent``, ``compact``,
    ``compact_currency``, ``change`` (a signed percent), ``id`` or ``text``."""
    if fmt == "currency":
        return format_currency(value, currency, decimals)
    if fmt == "percent":
        return format_percent(value, decimals)
    if fmt == "compact":
        return format_compact(value, decimals)
    if fmt == "compact_currency":
        return format_compact(value, decimals, symbol=currency)
    if fmt == "change":
        return format_signed_percent(value, decimals)
    if fmt == "id":
        return format_id(value)
    if fmt == "text":
        return MISSING if is_missing(value) else str(value)
    return format_number(value, decimals)


# -- column formats, by name and type ------

COLUMN_FORMATS = (
    "number",
    "currency",
    "percent",
    "compact",
    "compact_currency",
    "change",
    "id",
    "text",
    "date",
)
"""Every format a table column (``[queries.x.columns]``) may name."""

# Words of a column name, snake_case, kebab, spaces or camelCase: "prevAvgOrderValue".
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# Integer columns that are labels, not quantities: "2,026" would be wrong for a year,
# "123,307" for a customer key.  "custkey" (TPC-H) glues the word on.
_ID_WORDS = {"id", "key", "code", "zip", "postcode", "year", "yr", "sku", "ean", "isbn", "phone"}
_ID_GLUED = re.compile(r"(key|Id|ID)$")
_MONEY_WORDS = {
    "revenue", "revenues", "sales", "amount", "price", "prices", "cost", "costs",
    "spend", "profit", "profits", "income", "gmv", "aov", "balance", "acctbal", "fee",
    "fees", "payment", "payments", "budget", "turnover", "earnings", "expense",
    "expenses", "discount", "totalprice", "extendedprice", "arpu", "ltv", "mrr", "arr",
}  # fmt: skip
_PERCENT_WORDS = {"pct", "percent", "percentage", "share", "rate", "ratio", "margin", "conversion"}
_CHANGE_WORDS = {"change", "growth", "delta", "diff", "yoy", "wow", "mom", "vs"}
# "Revenue ($)", "Margin (%)": the author put the unit in the header, the values are plain.
_UNIT_IN_NAME = re.compile(r"\([^)]*\)\s*$")


def name_words(name: Any) -> list[str]:
    """The lower-case words of a column name: ``prev_avg_order_value`` → ``[prev, avg, order, value]``."""
    return [w.lower() for w in _WORDS.findall(str(name))]


def is_id_name(name: Any) -> bool:
    """True for a column named like an identifier, code or year (``customer_key``, ``c_custkey``, ``userId``)."""
    text = str(name)
    words = name_words(text)
    if not words:
        return False
    if words[-1] in ("id", "key") or _ID_GLUED.search(text):
        return True
    # "order_year" is a label, but "revenue_last_year" is money of a year.
    return words[-1] in _ID_WORDS and not set(words) & (_MONEY_WORDS | _PERCENT_WORDS)


def infer_column_format(name: Any, values: Sequence[float] | None = None) -> str:
    """The format a numeric column gets by default, from its name and values.

    ``id`` for identifiers (no separators); ``currency`` for money words
    (revenue, sales, price, cost …); ``change`` or ``percent`` for rates and
    shares whose values are fractions (at most 10 in size, so ``12.7`` in a
    column already in percent is left alone); else ``number``.  A header that
    states its unit in brackets (``Revenue ($)``) keeps plain numbers.
    """
    if is_id_name(name):
        return "id"
    if _UNIT_IN_NAME.search(str(name)):
        return "number"
    words = set(name_words(name))
    fractions = values is None or all(
        abs(v) <= 10 for v in values if not is_missing(v) and math.isfinite(v)
    )
    if words & _PERCENT_WORDS and fractions:
        return "change" if words & _CHANGE_WORDS else "percent"
    if words & _MONEY_WORDS:
        return "currency"
    return "number"


def rounds_to_zero(value: float, decimals: int = 1) -> bool:
    """True when ``value`` prints as zero at ``decimals`` places: such a change is "no change"."""
    return round(abs(value), decimals) == 0


def format_change(change_pct: Any, decimals: int = 1) -> str:
    """A fractional change with sign and arrow: ``0.124`` → ``▲ +12.4%``, ``0`` → ``■ 0.0%``."""
    if is_missing(change_pct) or (isinstance(change_pct, float) and math.isinf(change_pct)):
        return MISSING
    if rounds_to_zero(change_pct * 100, decimals):
        # "▲ +0.0%" in red would claim a change the figure does not show.
        return f"■ {0:.{decimals}f}%"
    if change_pct > 0:
        return f"▲ +{change_pct * 100:,.{decimals}f}%"
    if change_pct < 0:
        return f"▼ −{abs(change_pct) * 100:,.{decimals}f}%"
    return f"■ {0:.{decimals}f}%"
