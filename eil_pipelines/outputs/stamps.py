"""The report stamp: the scheduled time in a report's file names.

A stamp is the scheduled time on the pipeline's local wall clock, at the
precision its schedule needs: ``2026-11-27`` (daily or rarer),
``2026-11-27T0700`` (every minute or more) or ``2026-11-27T070015`` (faster).
It names every file of one report (``<stamp>.md``, ``<stamp>_charts/`` …),
so it has no colon (Windows file names) and stamps of one precision sort as
text in time order; a shorter stamp sorts before a longer one of the same
day (``2026-11-27`` < ``2026-11-27T0700`` < ``2026-11-28``).

This module is the only place that writes or reads one: :func:`format_stamp`
makes it, :func:`parse_stamp` reads it back (``None`` for anything that is
not one, such as ``2026-02-30``), :func:`is_stamp` tests a name.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal, NamedTuple

Precision = Literal["day", "minute", "second"]

#: The three precisions, coarsest first.
PRECISIONS: tuple[Precision, ...] = ("day", "minute", "second")

# ASCII digits only: \d alone would also take other scripts' digits.
_STAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(\d{2})(\d{2})?)?", re.ASCII)


class Stamp(NamedTuple):
    """A parsed stamp: the local wall-clock time it names and its precision."""

    moment: datetime
    """Naive: the stamp carries no zone (it is the pipeline's local time)."""
    precision: Precision
    """``day``, ``minute`` or ``second``: how much of ``moment`` the stamp shows."""

    @property
    def text(self) -> str:
        """The stamp as written in file names."""
        return format_stamp(self.moment, self.precision)


def format_stamp(moment: datetime, precision: Precision) -> str:
    """The stamp of ``moment``'s wall-clock time at ``precision``.

    An aware ``moment`` is written as it reads on its own clock, not
    converted: pass it already in the pipeline's zone.  Finer fields than
    ``precision`` are dropped, not rounded.
    """
    # Not strftime: "%Y" does not pad years before 1000 to four digits on every platform.
    day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    if precision == "day":
        return day
    if precision == "minute":
        return f"{day}T{moment.hour:02d}{moment.minute:02d}"
    if precision == "second":
        return f"{day}T{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    raise ValueError(f"unknown stamp precision {precision!r}: expected one of {PRECISIONS}")


def parse_stamp(text: str) -> Stamp | None:
    """The time and precision ``text`` names, or ``None`` when it is not a stamp.

    Exactly the strings :func:`format_stamp` writes are stamps: four-digit
    year, two-digit fields, a date that exists (``2026-02-30`` is not one),
    nothing before or after.
    """
    match = _STAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:  # month 13, 30 February, hour 24, year 0 …
        return None
    precision: Precision = "day" if hour is None else "minute" if second is None else "second"
    return Stamp(moment, precision)


def is_stamp(text: str) -> bool:
    """Whether ``text`` is a report stamp (see :func:`parse_stamp`)."""
    return parse_stamp(text) is not None
