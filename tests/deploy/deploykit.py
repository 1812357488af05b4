"""Shared by the deployment-kit tests: the repository, the tools, running commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The folder of the interpreter running the tests: eil-run and hadolint are there.
BIN = Path(sys.executable).parent


def need(tool: str, found: object, how: str) -> None:
    """Skip (or fail when ``CI`` is set) when ``tool`` is missing; ``how`` installs it."""
    if found:
        return
    reason = f"{tool} is missing ({how})"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def tool_env(**extra: str) -> dict[str, str]:
    """The environment with this interpreter's folder first on PATH (where eil-run is)."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run a command as a user would, capturing its output; never raises on exit codes."""
    return subprocess.run(
        args,
        cwd=cwd,
        env=env or tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
