"""A freshness gate (``[schedule.require]``): one query that must return a true value."""

from __future__ import annotations

from typing import Any

from ..sources import open_source
from ..spec.loader import Pipeline
from .context import RunContext

__all__ = ["check_gate"]


def check_gate(pipeline: Pipeline, ctx: RunContext) -> tuple[bool, str]:
    """Run the gate query for ``ctx``; ``(open, words)``.

    Open when the first column of the first row is true.  No row, NULL, false
    and 0 keep it shut; ``words`` says what the query returned, for the ledger
    and ``--once``.  Query errors propagate (they are the run's failure).
    """
    schedule = pipeline.spec.schedule
    require = schedule.require if schedule is not None else None
    if require is None:
        return True, "no gate"
    params: dict[str, Any] = {**ctx.params(), **pipeline.spec.params}
    with open_source(pipeline.name, pipeline.spec.source, pipeline.root) as source:
        frame = source.run(require.query, pipeline.sql[require.query], params)
    if frame.empty or len(frame.columns) == 0:
        return False, f'the gate query "{require.query}" returned no row'
    value = frame.iat[0, 0]
    if hasattr(value, "item"):  # a NumPy scalar: say 0, not np.int64(0)
        value = value.item()
    try:
        is_open = bool(value) and value == value  # NaN != NaN: a NULL keeps it shut
    except (TypeError, ValueError):
        is_open = False
    return is_open, f'the gate query "{require.query}" returned {value!r}'
