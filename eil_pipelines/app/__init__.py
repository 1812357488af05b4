"""The use cases: what a user asks ``eil-run`` (or the web page) to do.

Each use case lives in one module and calls the one ledgered run
(:mod:`.ledgered`: claim -> run -> finish -> delivery hook):

* :mod:`.service`: the scheduler service (scheduled runs, retries, timeouts, reload);
* :mod:`.once`: ``--once``, with or without delivery;
* :mod:`.backfill`: past fire times of a range, under a lease;
* :mod:`.send`: mail the latest report, for testing;
* :mod:`.status`: what ``list`` and ``history`` show;
* :mod:`.new`: the scaffold of ``eil-run new``.

Nothing here prints or exits: results come back as values, problems as
:class:`~eil_pipelines.errors.EilError` kinds the CLI maps to exit codes.
This module stays light (no imports): the CLI's fast commands read
:func:`ledger_path` from it.
"""

from __future__ import annotations

from pathlib import Path

LEDGER_NAME = Path(".eil") / "ledger.sqlite3"


def ledger_path(reports_dir: Path) -> Path:
    """Where the run ledger of a reports folder lives."""
    return reports_dir / LEDGER_NAME
