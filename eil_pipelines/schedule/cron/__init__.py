"""Cron: 5-field expressions and aliases, parsed, matched, described, and as a trigger.

An expression has five fields (minute, hour, day-of-month, month,
day-of-week) with names, ranges, lists, steps, ``L``, ``LW`` and ``#``, or is
an alias (``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``,
``@yearly``/``@annually``).  Day-of-month and day-of-week combine as in Vixie
cron: when both are restricted (neither starts with ``*``) a day matching
either runs; otherwise both must match.  Day-of-week 0 and 7 are both Sunday.

The engine is this project's own, in four modules that depend one way:

* :mod:`.match`: a parsed expression (:class:`~.match.Cron`, one
  :class:`~.match.Field` a field) and what it matches.  The wall-clock times
  an expression names are worked out a month at a time: the month's matching
  days by arithmetic on its length and the weekday of its 1st, the times of
  day from a sorted list made once per trigger.
* :mod:`.parse`: text to a :class:`~.match.Cron`, with messages naming the
  field and the value at fault (:func:`validate_cron`).
* :mod:`.describe`: an expression in words.
* :mod:`.trigger`: :class:`CronTrigger`, which maps those wall-clock times to
  instants by the daylight-saving rules in :mod:`eil_pipelines.schedule.triggers`.

``tests/schedule/test_triggers_cronsim.py`` cross-checks the wall-clock times
against cronsim, an independent implementation, where no daylight saving
interferes: cronsim's own zone handling differs from these rules (with a
fixed hour and a minute step, ``*/30 2 * * *``, it skips the spring-forward
day entirely and fires four times on the fall-back day).
"""

from __future__ import annotations

from .parse import ALIASES, validate_cron
from .trigger import CronTrigger

__all__ = ["ALIASES", "CronTrigger", "validate_cron"]
