"""Running many pipelines once, in parallel: the engine behind ``eil-run --once``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..spec.loader import Pipeline
from .context import make_context
from .pipeline import RunResult, run_pipeline, utc_now

if TYPE_CHECKING:
    from ..charts.processes import ChartProcesses


def run_once(
    pipelines: Sequence[Pipeline],
    *,
    reports_dir: Path,
    at: datetime | None = None,
    workers: int = 4,
    clock: Callable[[], datetime] = utc_now,
    on_result: Callable[[RunResult], None] | None = None,
    chart_processes: ChartProcesses | None = None,
) -> list[RunResult]:
    """Run each pipeline once, as if scheduled at ``at`` (default: now), up to ``workers`` at a time.

    A naive ``at`` is read in each pipeline's own zone, so ``--at 2026-11-27T07:00``
    means 07:00 wherever each report lives.  Results come back in input order;
    one failing pipeline never stops the others.  Charts are drawn in
    ``chart_processes`` when given, else in the runs' threads.
    """
    moment = at if at is not None else clock()

    def one(pipeline: Pipeline) -> RunResult:
        ctx = make_context(pipeline, moment)
        result = run_pipeline(
            pipeline, ctx, reports_dir, clock=clock, chart_processes=chart_processes
        )
        if on_result is not None:
            on_result(result)
        return result

    if len(pipelines) <= 1 or workers <= 1:
        return [one(p) for p in pipelines]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eil-run") as pool:
        return list(pool.map(one, pipelines))
