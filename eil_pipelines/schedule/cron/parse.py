"""Cron expressions from text: the five fields, names, ranges, steps, ``L``, ``LW``, ``#``, aliases.

:func:`parse_cron` turns an expression into a :class:`~.match.Cron` and
refuses, with a message naming the field and the value at fault, anything it
cannot run: out-of-range values, reversed ranges, unsupported syntax
(``?``, ``15W``, a seconds field) and dates that never come (``0 0 30 2 *``).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from functools import lru_cache

from ..words import join
from .match import DAYS_IN_MONTH, Cron, Field

__all__ = ["ALIASES", "parse_cron", "validate_cron"]

#: The cron aliases understood, and what each stands for.
ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


@dataclass(frozen=True)
class _FieldSpec:
    """What one of the five fields accepts: its range, and names where it has them."""

    name: str
    lo: int
    hi: int
    names: tuple[str, ...] = ()
    names_start: int = 0
    names_hint: str = ""


_MINUTE = _FieldSpec("minute", 0, 59)
_HOUR = _FieldSpec("hour", 0, 23)
_DOM = _FieldSpec("day-of-month", 1, 31)
_MONTH = _FieldSpec(
    "month",
    1,
    12,
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    1,
    "a month name (jan-dec)",
)
_DOW = _FieldSpec(
    "day-of-week",
    0,
    7,
    ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
    0,
    "a day name (sun-sat)",
)
_SPECS = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)
_FIELD_LIST = "minute hour day-of-month month day-of-week"


class _Problem(Exception):
    """What is wrong with a cron expression, in words, before the expression is named."""


def _number(spec: _FieldSpec, token: str, term: str) -> int:
    """A field value: digits, or a month or day name where the field has names."""
    if token == "":
        raise _Problem(f'{spec.name} "{term}" is missing a number')
    if token.isascii() and token.isdigit():
        value = int(token)
    elif token.lower() in spec.names:
        return spec.names.index(token.lower()) + spec.names_start
    else:
        kind = f"a number or {spec.names_hint}" if spec.names else "a number"
        raise _Problem(f'{spec.name} "{token}" is not {kind}')
    if not spec.lo <= value <= spec.hi:
        raise _Problem(f"{spec.name} {value} is out of range {spec.lo}-{spec.hi}")
    return value


def _step(spec: _FieldSpec, token: str) -> int:
    span = spec.hi - spec.lo
    if not (token.isascii() and token.isdigit()):
        raise _Problem(f'{spec.name} step "{token}" is not a number')
    step = int(token)
    if not 1 <= step <= span:
        hint = ""
        if step > span and spec in (_MINUTE, _HOUR):
            unit = "minutes" if spec is _MINUTE else "hours"
            hint = f' (for every {step} {unit}, use an "every" schedule)'
        raise _Problem(f"{spec.name} step {step} is out of range 1-{span}{hint}")
    return step


@lru_cache(maxsize=4096)
def _parse_field(spec: _FieldSpec, text: str) -> Field:
    """One field, parsed; cached, since thousands of schedules share a few fields."""
    values: set[int] = set()
    last = last_weekday = False
    last_dows: set[int] = set()
    nth_dows: set[tuple[int, int]] = set()
    for term in text.split(","):
        low = term.lower()
        if term == "":
            raise _Problem(f'{spec.name} "{text}" has an empty item')
        if low == "?":
            raise _Problem(f'{spec.name} "?" is not supported; use *')
        if spec is _DOM and low in ("l", "lw"):
            last, last_weekday = last or low == "l", last_weekday or low == "lw"
            continue
        if spec is _DOM and low.endswith("w"):
            raise _Problem(f'{spec.name} "{term}" is not supported; use a number, a range, L or LW')
        if spec is _DOW and "#" in low:
            day_token, _, nth_token = term.partition("#")
            day = _number(spec, day_token, term) % 7
            if not (nth_token.isascii() and nth_token.isdigit()):
                raise _Problem(f'{spec.name} week number "{nth_token}" in "{term}" is not a number')
            if not 1 <= int(nth_token) <= 5:
                raise _Problem(
                    f'{spec.name} week number {int(nth_token)} in "{term}" is out of range 1-5'
                )
            nth_dows.add((day, int(nth_token)))
            continue
        if spec is _DOW and low.endswith("l") and low not in spec.names:
            if low == "l":
                raise _Problem(
                    f'{spec.name} "L" needs a day before it, such as 5L for the last Friday'
                )
            day = _number(spec, term[:-1], term) % 7
            last_dows.add(day)
            continue
        base, slash, step_token = term.partition("/")
        if spec is _DOM and slash and base.lower() in ("l", "lw"):
            raise _Problem(f'{spec.name} "{term}": {base.upper()} cannot take a step')
        step = _step(spec, step_token) if slash else 1
        if base == "*":
            first, end = spec.lo, spec.hi
        elif "-" in base:
            first_token, _, end_token = base.partition("-")
            first = _number(spec, first_token, term)
            end = _number(spec, end_token, term)
            if end < first:
                hint = f"; write {end_token}-{first_token}"
                if spec is _DOW and end == 0:
                    hint = f"; write {first_token}-7 for a range that ends on Sunday"
                raise _Problem(f"{spec.name} range {base} is reversed{hint}")
        else:
            first = _number(spec, base, term)
            # "5/15" means 5, 20, 35, 50: from the value to the end of the field.
            end = spec.hi if slash else first
        values.update(range(first, end + 1, step))
    if spec is _DOW:
        values = {v % 7 for v in values}
    return Field(
        values=frozenset(values),
        # A leading "*" is what makes the day fields unrestricted for Vixie's
        # day-of-month/day-of-week rule.
        star=text.startswith("*"),
        last=last,
        last_weekday=last_weekday,
        last_dows=frozenset(last_dows),
        nth_dows=frozenset(nth_dows),
    )


def parse_cron(expr: str) -> Cron:
    """Parse and check a cron expression; raises ``ValueError`` naming what is wrong."""
    if not isinstance(expr, str):
        raise ValueError(f'expected a cron expression such as "0 7 * * 1-5", got {expr!r}')
    try:
        return _parse_text(expr)
    except _Problem as problem:
        raise ValueError(f'invalid cron expression "{expr}": {problem}') from None


def _parse_text(expr: str) -> Cron:
    text = expr.strip()
    if text.startswith("@"):
        alias = text.lower()
        if alias not in ALIASES:
            known = join(["@hourly", "@daily", "@weekly", "@monthly", "@yearly"], "or")
            raise _Problem(f'unknown alias "{text}"; use {known}')
        text = ALIASES[alias]
    parts = text.split()
    if len(parts) != 5:
        extra = " (a seconds field is not supported)" if len(parts) == 6 else ""
        raise _Problem(f"expected 5 fields ({_FIELD_LIST}), got {len(parts)}{extra}")
    cron = Cron(expr, *(_parse_field(spec, part) for spec, part in zip(_SPECS, parts, strict=True)))

    # A day that no chosen month has, with day-of-week not widening it, never runs.
    dom = cron.dom
    if (dom.star or cron.dow.star) and not (dom.last or dom.last_weekday):
        longest = max(DAYS_IN_MONTH[m] for m in cron.month.values)
        if min(dom.values) > longest:
            names = [calendar.month_name[m] for m in sorted(cron.month.values)]
            raise _Problem(f"day-of-month {parts[2]} never occurs in {join(names, 'or')}")
    if not cron.runs_some_day():
        raise _Problem("it matches no date")
    return cron


def validate_cron(expr: str) -> None:
    """Check a cron expression; raise ``ValueError`` with a message fit for the user.

    The message reads ``invalid cron expression "61 * * * *": minute 61 is out of
    range 0-59``, naming the field and the value at fault.
    """
    parse_cron(expr)
