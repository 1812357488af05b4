"""Shared by the report checks (HTML validity, markdownlint, the browser test).

The example reports are generated once per test session; each external tool
is looked up here. A missing one skips the test with what is missing and the
command that installs it, and fails it when ``CI`` is set (CI must have every
tool). These tests are marked ``external`` (tests/conftest.py).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "node_modules"
SETUP = "bash scripts/setup-test-env.sh"

AT = "2026-11-23T09:00"
#: The example pipelines and the stamp of their report at ``AT``.
EXAMPLES = {
    "daily_sales": "2026-11-23",
    "weekly_executive_summary": "2026-11-23",
    "hourly_operations": "2026-11-23T0900",
}
#: An earlier report, so the site has a history to list.
EARLIER = ("daily_sales", "2026-11-20T09:00", "2026-11-20")


def missing(what: str, why: str) -> None:
    """Skip the calling test (fail it when ``CI`` is set): ``what`` is not installed,
    and how to install it."""
    reason = f"{what} is missing ({why}). Install the test tools with: {SETUP}"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def java() -> str:
    path = shutil.which("java")
    if path is None:
        missing("java (Debian package default-jre-headless)", "it runs the W3C Nu HTML checker")
    return path


def vnu_jar() -> Path:
    jar = NODE_MODULES / "vnu-jar" / "build" / "dist" / "vnu.jar"
    if not jar.is_file():
        missing(f"the npm package vnu-jar ({jar.relative_to(REPO)})", "the W3C Nu HTML checker")
    return jar


def node() -> str:
    path = shutil.which("node")
    if path is None:
        missing("node (Debian package nodejs)", "it runs markdownlint-cli2")
    return path


def markdownlint_cli2() -> Path:
    script = NODE_MODULES / "markdownlint-cli2" / "markdownlint-cli2-bin.mjs"
    if not script.is_file():
        missing(
            f"the npm package markdownlint-cli2 ({script.relative_to(REPO)})", "the Markdown linter"
        )
    return script


def axe_script() -> str:
    script = NODE_MODULES / "axe-core" / "axe.min.js"
    if not script.is_file():
        missing(f"the npm package axe-core ({script.relative_to(REPO)})", "the accessibility scan")
    return script.read_text(encoding="utf-8")


def chromium() -> str:
    """Debian's Chromium; ``EIL_CHROMIUM`` may name another Chromium or Chrome binary."""
    path = os.environ.get("EIL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        missing(f"chromium ({path}; Debian package chromium)", "the browser test drives it")
    return path


def titles() -> dict[str, str]:
    """Each example pipeline's name and title, read from its TOML file."""
    out = {}
    for path in sorted((REPO / "pipelines").glob("*.toml")):
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
        out[spec.get("name", path.stem)] = spec["title"]
    return out


def chart_count(name: str) -> int:
    spec = tomllib.loads((REPO / "pipelines" / f"{name}.toml").read_text(encoding="utf-8"))
    return len(spec.get("charts", []))


def eil(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eil_pipelines", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TZ": "UTC"},
        cwd=REPO,
    )


@functools.cache
def example_reports() -> Path:
    """A reports folder with every example run at ``AT``, plus one earlier report.

    Made once per test session (the three test modules share it) and deleted
    at exit.
    """
    root = Path(tempfile.mkdtemp(prefix="eil-report-checks-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    reports = root / "reports"
    name, earlier, _ = EARLIER
    runs = [
        ("--only", name, "--at", earlier),
        ("--at", AT),
    ]
    for extra in runs:
        result = eil("--once", str(REPO / "pipelines"), "--reports", str(reports), *extra)
        if result.returncode != 0:
            pytest.fail(
                f"eil-run --once {' '.join(extra)} failed (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}",
                pytrace=False,
            )
    return reports


def report_html(reports: Path) -> list[Path]:
    """The dated HTML report of every example, and the earlier one."""
    files = [reports / name / f"{stamp}.html" for name, stamp in EXAMPLES.items()]
    return [*files, reports / EARLIER[0] / f"{EARLIER[2]}.html"]


def site_pages(reports: Path) -> list[Path]:
    """The report site: the index and one page per pipeline."""
    return [reports / "index.html", *(reports / name / "index.html" for name in EXAMPLES)]
