"""Number formats shared by KPI figures, template filters and chart axes.

Pure functions of their arguments, so a figure prints the same in the KPI
block, in a table and on a chart axis.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

MISSING = "–"
_COMPACT_STEPS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


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
    """``1234.5`` → ``$1,234.50``; ``-50`` → ``-$50.00``; large values drop the cents."""
    if is_missing(value):
        return MISSING
    if not isinstance(value, Real):
        return str(value)
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


def format_value(
    value: Any, fmt: str = "number", *, currency: str = "$", decimals: int | None = None
) -> str:
    """Format by name: ``number``, ``currency``, ``percent`` or ``compact``."""
    if fmt == "currency":
        return format_currency(value, currency, decimals)
    if fmt == "percent":
        return format_percent(value, decimals)
    if fmt == "compact":
        return format_compact(value, decimals)
    return format_number(value, decimals)


def format_change(change_pct: Any, decimals: int = 1) -> str:
    """A fractional change with sign and arrow: ``0.124`` → ``▲ +12.4%``, ``0`` → ``■ 0.0%``."""
    if is_missing(change_pct) or (isinstance(change_pct, float) and math.isinf(change_pct)):
        return MISSING
    if change_pct > 0:
        return f"▲ +{change_pct * 100:,.{decimals}f}%"
    if change_pct < 0:
        return f"▼ −{abs(change_pct) * 100:,.{decimals}f}%"
    return f"■ {0:.{decimals}f}%"
