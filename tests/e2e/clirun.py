"""Running ``eil-run`` as a user does: a subprocess, never raising on a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def eil(
    *args: str, cwd: Path, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run ``python -m eil_pipelines ARGS`` in ``cwd`` with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, "-m", "eil_pipelines", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def wait_for(predicate, timeout: float = 60.0) -> bool:
    """Poll ``predicate`` until it holds; the deadline is only reached when a test fails."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def ledger_query(reports: Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the run ledger of ``reports``, read as another process would.

    Empty while the ledger does not exist or is not migrated yet.
    """
    import sqlite3
    from contextlib import closing

    from eil_pipelines.app import ledger_path

    path = ledger_path(reports)
    if not path.exists():
        return []
    try:
        with closing(sqlite3.connect(path, timeout=5)) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # created but not migrated yet
        return []
