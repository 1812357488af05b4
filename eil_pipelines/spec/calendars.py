"""Business calendars from names: public holidays (the ``holidays`` package) and eil.toml.

A schedule names its calendar with ``calendar = "DE-BE"`` (a country code, an
optional subdivision), a list of them (merged: a day is a holiday when any
says so), or the name of a ``[calendars.NAME]`` table in ``eil.toml``, which
adds company shutdown days and extra business days (a Saturday close) to
public holidays::

    [calendars.acme]
    holidays = ["DE-BE"]
    closed = { 2026-12-24 = "Christmas shutdown", 2026-12-31 = "Year-end shutdown" }
    business_days = [2026-12-19]
    weekend = ["sat", "sun"]

The ``holidays`` package is imported only when a calendar is used (it takes
most of a second), and its version is recorded in each manifest.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import Field, field_validator

from ..schedule.calendar import BusinessCalendar
from .models import StrictModel

__all__ = [
    "CalendarDefinition",
    "CalendarSettings",
    "business_calendar",
    "code_problem",
    "holidays_version",
    "resolve_calendar",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_NAME = 64


def _default_weekend() -> list[Weekday]:
    return ["sat", "sun"]


class CalendarSettings(StrictModel):
    """A company calendar: ``[calendars.NAME]`` in eil.toml."""

    holidays: str | list[str] = Field(default_factory=list)
    """Public holiday calendars it starts from, such as ``"DE-BE"`` or ``["US", "GB"]``."""

    closed: dict[date, str] = Field(default_factory=dict)
    """Extra days off, each with the name reports and the ledger show
    (``2026-12-24 = "Christmas shutdown"``)."""

    @field_validator("closed", mode="before")
    @classmethod
    def _dates_as_keys(cls, value: Any) -> Any:
        # TOML keys are strings: "2026-12-24" is read here, and nowhere else.
        if not isinstance(value, dict):
            return value
        out: dict[Any, Any] = {}
        for key, name in value.items():
            if isinstance(key, str):
                try:
                    key = date.fromisoformat(key)
                except ValueError:
                    raise ValueError(
                        f'"{key[:40]}" is not a date: write days off as 2026-12-24 = "Name"'
                    ) from None
            out[key] = name
        return out

    business_days: list[date] = Field(default_factory=list)
    """Days that are business days even on a weekend or a public holiday."""

    weekend: list[Weekday] = Field(default_factory=lambda: _default_weekend())
    """The weekdays that are not business days."""


@dataclass(frozen=True)
class CalendarDefinition:
    """A schedule's calendar, resolved: plain data, no ``holidays`` objects yet."""

    name: str
    """How it is named in descriptions: ``"DE-BE"``, ``"acme"``, ``"US + GB"``."""
    codes: tuple[str, ...]
    """Public holiday calendars, as ``COUNTRY`` or ``COUNTRY-SUBDIVISION``."""
    closed: Mapping[date, str] = field(default_factory=dict)
    """Company days off and their names."""
    business_days: frozenset[date] = frozenset()
    """Days that are business days whatever else says."""
    weekend: frozenset[int] = frozenset({5, 6})
    """Weekday numbers that are not business days (Monday is 0)."""


def _split(code: str) -> tuple[str, str | None]:
    country, _, subdivision = code.partition("-")
    return country, subdivision or None


@functools.cache
def _countries() -> frozenset[str]:
    # The registry's codes, not ``list_supported_countries()``: that imports all
    # 500 country modules to list their subdivisions, a quarter of what
    # `validate` of 1,000 files cost.  ``holidays`` is pinned, so the registry stays.
    from holidays.registry import EntityLoader

    return frozenset(EntityLoader.get_country_codes(include_aliases=True))


@functools.cache
def _subdivisions(country: str) -> list[str]:
    import holidays

    return list(getattr(holidays, country).subdivisions)


def code_problem(code: str) -> str | None:
    """Why ``code`` is not a public holiday calendar, or None when it is one."""
    if not code or len(code) > _MAX_NAME or not code.isascii():
        return f'"{code[:_MAX_NAME]}" is not a calendar name such as "DE" or "DE-BE"'
    country, subdivision = _split(code)
    if country not in _countries():
        return (
            f'no public holidays known for country "{country}"; use an ISO 3166 code such as '
            '"DE", "US" or "JP", or a [calendars.NAME] table in eil.toml'
        )
    if subdivision is not None and subdivision not in (subdivisions := _subdivisions(country)):
        known = ", ".join(subdivisions[:12]) + (" …" if len(subdivisions) > 12 else "")
        return f'"{country}" has no subdivision "{subdivision}"; known: {known or "none"}'
    return None


def resolve_calendar(
    names: str | Sequence[str], custom: Mapping[str, CalendarSettings]
) -> CalendarDefinition:
    """The calendar a schedule names; ``ValueError`` with the user's words when it can't be.

    Names are ``[calendars.NAME]`` tables first, then public holiday codes.
    """
    listed = [names] if isinstance(names, str) else list(names)
    if not listed:
        raise ValueError('calendar needs at least one name, such as "DE-BE"')
    codes: list[str] = []
    closed: dict[date, str] = {}
    business: set[date] = set()
    weekend: set[int] | None = None
    for name in listed:
        settings = custom.get(name)
        if settings is None:
            problem = code_problem(name)
            if problem:
                raise ValueError(problem)
            codes.append(name)
            continue
        inner = [settings.holidays] if isinstance(settings.holidays, str) else settings.holidays
        for code in inner:
            problem = code_problem(code)
            if problem:
                raise ValueError(f"in [calendars.{name}]: {problem}")
            codes.append(code)
        closed.update(settings.closed)
        business.update(settings.business_days)
        days = {_WEEKDAYS.index(d) for d in settings.weekend}
        weekend = days if weekend is None else weekend & days
    return CalendarDefinition(
        name=" + ".join(listed),
        codes=tuple(dict.fromkeys(codes)),
        closed=closed,
        business_days=frozenset(business),
        weekend=frozenset({5, 6} if weekend is None else weekend),
    )


@functools.cache
def _public(code: str) -> Any:
    import holidays

    country, subdivision = _split(code)
    return holidays.country_holidays(country, subdiv=subdivision)


def business_calendar(definition: CalendarDefinition) -> BusinessCalendar:
    """The :class:`BusinessCalendar` of a resolved definition (imports ``holidays`` if needed)."""
    public = [_public(code) for code in definition.codes]
    closed = dict(definition.closed)

    def holiday_name(day: date) -> str | None:
        names = [name for name in (table.get(day) for table in public) if name]
        if day in closed:
            names.insert(0, closed[day])
        return "; ".join(dict.fromkeys(names)) or None

    return BusinessCalendar(
        holiday_name,
        name=definition.name,
        weekend=definition.weekend,
        extra_business_days=definition.business_days,
    )


def holidays_version() -> str:
    """The ``holidays`` package's version, for the manifest."""
    import holidays

    return str(holidays.__version__)
