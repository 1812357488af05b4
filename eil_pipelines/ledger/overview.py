"""A pipeline's state at a glance, for the status page and ``eil-run status``.

:class:`PipelineOverview` is what :meth:`LedgerBackend.overview
<eil_pipelines.ledger.base.LedgerBackend.overview>` returns for each
pipeline: its newest finished run, its runs in progress and how many times
in a row it has failed.  The base class computes it from ``history()``; a
backend overrides it with a few set-wide queries, so a status page over a
thousand pipelines and a hundred thousand rows stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .records import RunRecord

__all__ = ["PipelineOverview", "assemble_overviews"]


@dataclass(frozen=True)
class PipelineOverview:
    """One pipeline's runs as the status page shows them."""

    pipeline: str
    """The pipeline's name."""
    last: RunRecord | None = None
    """Its newest row that is neither ``running``, ``waiting`` nor ``skipped`` (by scheduled
    time)."""
    running: tuple[RunRecord, ...] = field(default_factory=tuple)
    """Its rows that are ``running`` now, oldest start first."""
    waiting: tuple[RunRecord, ...] = field(default_factory=tuple)
    """Its rows that are ``waiting`` for upstream runs or a freshness gate, oldest first;
    each ``error`` says what it waits for."""
    failures_in_a_row: int = 0
    """How many of its newest finished runs failed (``failed``, ``timed_out`` or
    ``abandoned``) since its last success; skipped times are not counted and do
    not break the streak."""


def assemble_overviews(
    names: Sequence[str],
    last: Mapping[str, RunRecord],
    held: Iterable[RunRecord],
    streak: Mapping[str, int],
) -> dict[str, PipelineOverview]:
    """The overviews of ``names`` from a backend's set-wide reads: each pipeline's newest
    finished row (``last``), the ``running`` and ``waiting`` rows (``held``, oldest
    start first) and the failure streaks."""
    running: dict[str, list[RunRecord]] = {}
    waiting: dict[str, list[RunRecord]] = {}
    for record in held:
        (running if record.status == "running" else waiting).setdefault(record.pipeline, []).append(
            record
        )
    return {
        name: PipelineOverview(
            name,
            last.get(name),
            tuple(running.get(name, ())),
            tuple(waiting.get(name, ())),
            streak.get(name, 0),
        )
        for name in names
    }
