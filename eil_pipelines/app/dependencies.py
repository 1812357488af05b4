"""Which upstream runs a dependent run waits for, and which of them have not succeeded.

The rule (docs/scheduler.md, "Dependencies"): a run of a pipeline with
``after = ["up"]`` waits for every run of ``up`` scheduled after the start of
its period and no later than its own fire time.  A daily report at 07:00 after
a daily load at 06:00 waits for that morning's load; a weekly summary waits for
each daily of its week; a monthly close (``period = "month"``) waits for every
weekly that ran in the month.  It never waits for a run scheduled after its own
fire time.  Upstream times it skipped (a holiday, downtime) and times from
before its first run do not hold anything up.  At most :data:`MAX_UPSTREAM_RUNS` runs of one upstream are checked
(the newest), so a 1-second upstream cannot make a check unbounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..ledger.base import LedgerBackend
from ..run.context import RunContext, pipeline_trigger
from ..spec.dependencies import upstream_names
from ..spec.loader import Pipeline

__all__ = ["MAX_UPSTREAM_RUNS", "Unmet", "required_runs", "unmet_upstreams"]

#: The most runs of one upstream a dependent run waits for (the newest of them).
MAX_UPSTREAM_RUNS = 1000
_TICK = timedelta(microseconds=1)
#: Upstream states that do not hold a run up: done, or skipped on purpose (a holiday,
#: downtime under the catch-up policy), which waiting would never change.
_SETTLED = ("succeeded", "skipped")


@dataclass(frozen=True)
class Unmet:
    """An upstream run a dependent run is still waiting for."""

    pipeline: str
    """The upstream pipeline."""
    scheduled_at: datetime | None
    """Its fire time, or None when the upstream cannot be found or has no schedule."""
    state: str
    """``not run yet``, ``running``, ``failed``, ``skipped`` …, or why it cannot run."""

    def describe(self) -> str:
        """``daily_sales 2026-06-03 07:00 (failed)``."""
        if self.scheduled_at is None:
            return f"{self.pipeline} ({self.state})"
        return f"{self.pipeline} {self.scheduled_at:%Y-%m-%d %H:%M} ({self.state})"


def required_runs(upstream: Pipeline, start: datetime, fire_time: datetime) -> list[datetime]:
    """Fire times of ``upstream`` in ``(start, fire_time]``, oldest first (the newest
    :data:`MAX_UPSTREAM_RUNS` of them)."""
    trigger = pipeline_trigger(upstream)
    if trigger is None:
        return []
    found = deque(trigger.fires(start, fire_time), maxlen=MAX_UPSTREAM_RUNS)
    return list(found)


def unmet_upstreams(
    ledger: LedgerBackend, pipeline: Pipeline, ctx: RunContext, known: Mapping[str, Pipeline]
) -> list[Unmet]:
    """The upstream runs ``pipeline``'s run ``ctx`` still waits for; empty when it may start."""
    unmet: list[Unmet] = []
    for name in upstream_names(pipeline):
        upstream = known.get(name)
        if upstream is None:
            unmet.append(Unmet(name, None, "its file is not valid"))
            continue
        if upstream.spec.schedule is None:
            unmet.append(Unmet(name, None, "it has no schedule"))
            continue
        times = required_runs(upstream, ctx.period_start, ctx.scheduled_at)
        if not times:
            continue
        first, last = times[0].astimezone(UTC), times[-1].astimezone(UTC)
        succeeded = ledger.succeeded_times(name, first, last + _TICK)
        rows = {
            moment: ledger.get(name, moment)
            for moment in times
            if moment.astimezone(UTC) not in succeeded
        }
        recorded = [m.astimezone(UTC) for m, row in rows.items() if row is not None]
        started = min([*recorded, *succeeded], default=None)
        for moment, row in rows.items():
            if row is None:
                if started is not None and moment.astimezone(UTC) < started:
                    continue  # before the upstream's first run: nothing will ever run it
                unmet.append(Unmet(name, moment, "not run yet"))
            elif row.status not in _SETTLED:
                unmet.append(Unmet(name, moment, row.status))
    return unmet
