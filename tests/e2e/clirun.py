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
