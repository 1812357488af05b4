"""``backfill --with-dependents``: after an upstream range, the pipelines that wait for it.

Once the upstream pipeline's range is backfilled, every pipeline of the same
folder that waits for it (``[schedule] after``), directly or through others, is
backfilled over the same range, upstream first (a topological order): each
dependent's own fire times in the range, as scheduled then, through the same
:func:`~.backfill.backfill` (its lease, its plan, ``--reprocess``).

A dependent's time runs only when its upstream runs for that period succeeded,
by the rule of :mod:`.dependencies` (the one the scheduler's waiting runs use);
otherwise it is recorded ``failed``, naming the upstream runs that did not
succeed.  Nothing waits: a backfill's upstream runs are already over.  The
freshness gate (``require``) is not checked, as a backfill of the upstream does
not check its own.
"""

from __future__ import annotations

import graphlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..run.pipeline import utc_now
from ..spec.dependencies import upstream_names
from ..spec.loader import Pipeline, display_path, load_pipelines_lenient
from .backfill import Outcome, Planned, backfill, backfill_trigger, fire_times

__all__ = ["Dependent", "Dependents", "backfill_dependent", "dependents_of", "find_dependents"]


@dataclass(frozen=True)
class Dependent:
    """One pipeline that waits for the backfilled one, and its fire times in the range."""

    pipeline: Pipeline
    """The dependent pipeline."""
    times: list[datetime]
    """Its fire times in the range (up to now), oldest first."""
    described: str
    """Its schedule in words (``every Monday at 08:00 Europe/Berlin``)."""

    @property
    def name(self) -> str:
        """The pipeline's name."""
        return self.pipeline.name


@dataclass(frozen=True)
class Dependents:
    """The dependents of a pipeline, upstream first, and what the rule needs to check them."""

    upstream: Pipeline
    """The backfilled pipeline."""
    order: list[Dependent]
    """Every pipeline that waits for it, directly or transitively, upstream first."""
    known: dict[str, Pipeline]
    """Every valid pipeline of the folder by name (the upstream as given, with its params)."""
    invalid: list[str]
    """Files of the folder that did not validate (left out: their dependents are unknown)."""
    disabled: list[str]
    """Dependents with ``enabled = false``: left out, as the scheduler leaves them."""


def dependents_of(pipeline: str, pipelines: Sequence[Pipeline]) -> list[Pipeline]:
    """Every pipeline that waits for ``pipeline`` (``after``), directly or through
    others, upstream first; pipelines at the same depth by name, so the order is stable."""
    by_name = {p.name: p for p in pipelines}
    below: dict[str, list[str]] = {}
    for p in pipelines:
        for up in upstream_names(p):
            below.setdefault(up, []).append(p.name)
    found: set[str] = set()
    todo = [pipeline]
    while todo:
        for name in below.get(todo.pop(), []):
            if name not in found and name != pipeline:
                found.add(name)
                todo.append(name)
    sorter = graphlib.TopologicalSorter(
        {n: [u for u in upstream_names(by_name[n]) if u in found] for n in found}
    )
    sorter.prepare()  # valid pipelines have no cycles: the loader refuses them
    order: list[Pipeline] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(by_name[n] for n in ready)
        sorter.done(*ready)
    return order


def find_dependents(
    pipeline: Pipeline, start: datetime, end: datetime, *, now: datetime | None = None
) -> Dependents:
    """The dependents of ``pipeline`` in its folder, with their fire times from ``start``
    to ``end`` (fire times after ``now`` are the scheduler's, as for the upstream)."""
    pipelines, errors = load_pipelines_lenient(pipeline.file.parent)
    known = {p.name: p for p in pipelines}
    known[pipeline.name] = pipeline
    last = min(end, now if now is not None else utc_now())
    order, disabled = [], []
    for dependent in dependents_of(pipeline.name, list(known.values())):
        if not dependent.spec.enabled:
            disabled.append(dependent.name)
            continue
        trigger = backfill_trigger(dependent)
        order.append(Dependent(dependent, fire_times(trigger, start, last), trigger.describe()))
    invalid = [e.shown or display_path(e.file) for e in errors]
    return Dependents(pipeline, order, known, invalid, disabled)


def backfill_dependent(
    dependents: Dependents,
    dependent: Dependent,
    *,
    reports_dir: Path,
    reprocess: str,
    holder: str,
    workers: int = 1,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] = utc_now,
    on_planned: Callable[[list[Planned]], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
) -> tuple[list[Planned], list[Outcome]]:
    """Backfill one dependent over its fire times (call them in ``dependents.order``):
    a time runs only when its upstream runs succeeded, else it is recorded ``failed``."""
    return backfill(
        dependent.pipeline,
        dependent.times,
        reports_dir=reports_dir,
        reprocess=reprocess,
        holder=holder,
        workers=workers,
        stop=stop,
        clock=clock,
        on_planned=on_planned,
        on_done=on_done,
        known=dependents.known,
    )
