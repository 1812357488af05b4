"""Shared by the deployment-kit tests: the repository, the tools, running commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The folder of the interpreter running the tests: eil-run and hadolint are there.
BIN = Path(sys.executable).parent
ENTRYPOINT = REPO / "deploy" / "entrypoint.sh"


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


def instructions(path: Path) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as ``(KEYWORD, arguments)``, continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            rows.append((keyword.upper(), " ".join(rest.split())))
    return rows


def unit(name: str) -> dict[str, list[str]]:
    """``Key`` -> values of a unit file (all sections)."""
    values: dict[str, list[str]] = {}
    for line in (REPO / "deploy" / name).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def health_checks() -> list[list[str]]:
    """The Dockerfile's ``HEALTHCHECK`` and the systemd health unit's command, as
    run here (the entrypoint script and this interpreter's ``eil-run``)."""
    health = next(a for k, a in instructions(REPO / "Dockerfile") if k == "HEALTHCHECK")
    image = json.loads(health.split(" CMD ", 1)[1])
    assert image[0] == "eil-entrypoint"
    unit_command = shlex.split(unit("eil-pipelines-health.service")["ExecStart"][0])
    assert unit_command[0] == "/opt/eil-pipelines/bin/eil-run"
    return [["sh", str(ENTRYPOINT), *image[1:]], [str(BIN / "eil-run"), *unit_command[1:]]]
