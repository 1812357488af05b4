"""The folder, the disk and the ledger: a read-only reports folder, a full disk,
``reports/.eil`` as a file, a read-only ledger; real processes, real refusals."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clirun import eil, wait_for

from eil_pipelines.app import ledger_path
from eil_pipelines.ledger import Ledger

REPO = Path(__file__).resolve().parents[2]

SALES = """
title = "Sales"
[schedule]
daily = "07:00"
timezone = "UTC"
[queries.rows]
sql = "SELECT range AS n, 'row ' || range AS label FROM range(200)"
"""

# Linux capabilities that let root write where the permissions say no.
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3
_PR_CAPBSET_DROP = 24


def _drop_root_file_capabilities() -> None:  # in the child, before exec
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _unskippable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def run_cli(
    args: list[str], cwd: Path, *, preexec=None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``eil-run ARGS`` in a child process, with ``preexec`` run in it before exec."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "eil_pipelines", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            preexec_fn=preexec,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        _unskippable(f"cannot start the child process here: {exc}")
        raise


def without_write_permission() -> object:
    """The ``preexec`` that makes file permissions apply (root ignores them)."""
    if os.geteuid() != 0:
        return None
    if not sys.platform.startswith("linux"):
        _unskippable("running as root, and dropping root's file capabilities needs Linux")
    return _drop_root_file_capabilities


def with_file_size_limit(limit: int):
    """The ``preexec`` of a process for which the disk is full past ``limit`` bytes a file."""

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails with EFBIG

    return preexec


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".eil" not in p.parts
    }


@pytest.fixture
def sales(project):
    project.pipeline("sales", SALES)
    return project


def test_once_on_a_read_only_reports_folder_says_so(sales):
    sales.reports.mkdir()
    sales.reports.chmod(0o555)
    try:
        result = run_cli(
            ["--once", "pipelines", "--at", "2026-11-28T07:00"],
            sales.root,
            preexec=without_write_permission(),
        )
    finally:
        sales.reports.chmod(0o755)
    assert "internal error" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert (
        f"sales failed: cannot create the reports folder {sales.reports.resolve() / 'sales'}: "
        "no permission to write there (Permission denied); no file was left half-written"
    ) in result.stdout
    # Exit 1 (a failed run) until `--once` maps WriteRefused to 3 (cli/once.py).
    assert result.returncode == 3, result.stderr
    assert list(sales.reports.iterdir()) == []


def test_the_scheduler_on_a_read_only_reports_folder_exits_3(sales):
    sales.reports.mkdir()
    sales.reports.chmod(0o555)
    try:
        result = run_cli(["pipelines"], sales.root, preexec=without_write_permission())
    finally:
        sales.reports.chmod(0o755)
    assert result.returncode == 3, result.stderr
    assert "internal error" not in result.stderr
    assert (
        f"eil-run: could not write {sales.reports.resolve() / '.eil'}: Permission denied"
        in result.stderr
    )


def test_a_full_disk_fails_the_run_clearly_and_leaves_earlier_reports_whole(sales):
    first = run_cli(["--once", "pipelines", "--at", "2026-11-27T07:00"], sales.root)
    assert first.returncode == 0, first.stderr
    folder = sales.reports / "sales"
    before = snapshot(folder)
    assert "2026-11-27.html" in before
    limit = 4096  # the Markdown fits, the HTML (with its style sheet) does not
    assert len(before["2026-11-27.html"]) > limit

    result = run_cli(
        ["--once", "pipelines", "--at", "2026-11-28T07:00"],
        sales.root,
        preexec=with_file_size_limit(limit),
    )
    assert "internal error" not in result.stdout + result.stderr
    assert (
        f"sales failed: cannot write the report into {folder.resolve()}: the file is larger "
        "than this process may write (the disk is full for it) (File too large); "
        "no file was left half-written"
    ) in result.stdout
    assert result.returncode == 3, result.stderr  # the machine refused: could not run
    assert snapshot(folder) == before  # no new report, no half-written file, nothing replaced
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_reports_eil_as_a_file_fails_once_naming_the_path(sales):
    sales.reports.mkdir()
    (sales.reports / ".eil").write_text("not a folder")
    result = eil("--once", "pipelines", "--at", "2026-11-28T07:00", cwd=sales.root)
    assert result.returncode == 3, result.stderr
    assert "succeeded" not in result.stdout.splitlines()[1]
    assert (
        f"sales failed: {sales.reports.resolve() / '.eil'} is a file, but it must be a folder "
        "(it holds the run ledger and the report site's state): move the file away"
    ) in result.stdout
    assert "internal error" not in result.stdout + result.stderr


def test_history_and_list_read_a_read_only_ledger(sales):
    when = datetime(2026, 11, 28, 7, tzinfo=UTC)
    with Ledger(ledger_path(sales.reports)) as ledger:
        ledger.claim("sales", when, run_id="r1", now=when)
        ledger.finish("sales", when, status="failed", now=when, error="boom \x1b[2J")
    state = ledger_path(sales.reports).parent
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    for path in (ledger_path(sales.reports), state, sales.reports):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        history = run_cli(["history", "pipelines"], sales.root, preexec=without_write_permission())
        listing = run_cli(["list", "pipelines"], sales.root, preexec=without_write_permission())
    finally:
        for path in (sales.reports, state, ledger_path(sales.reports)):
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert history.returncode == 0, history.stderr
    assert history.stdout.splitlines() == [
        "SCHEDULED                  PIPELINE  STATUS  ATTEMPT  DURATION",
        "2026-11-28T07:00:00+00:00  sales     failed  1        0.00s",
        "    boom \\x1b[2J",  # a terminal escape in an error is shown, never obeyed
    ]
    assert listing.returncode == 0, listing.stderr
    assert "  last run: failed (scheduled 2026-11-28T07:00:00+00:00)" in listing.stdout
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before


KILLED_MID_WRITE = """
import sys, time
from pathlib import Path
from eil_pipelines.outputs import atomic
from eil_pipelines.cli import main

ready = Path(sys.argv[1])
real = atomic.write_all

def write_all(handle, data):
    real(handle, data[: len(data) // 2])
    handle.flush()
    ready.write_text("half written")
    time.sleep(600)  # killed here, mid-write

atomic.write_all = write_all
sys.exit(main(["--once", "pipelines", "--at", "2026-11-28T07:00"]))
"""


def test_a_once_killed_mid_write_leaves_a_staging_folder_the_next_once_removes(sales, tmp_path):
    first = run_cli(["--once", "pipelines", "--at", "2026-11-27T07:00"], sales.root)
    assert first.returncode == 0, first.stderr
    folder = sales.reports / "sales"
    before = snapshot(folder)
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_WRITE, str(ready)],
        cwd=sales.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert wait_for(lambda: ready.exists() or child.poll() is not None, timeout=120)
        assert child.poll() is None, "the run ended before it was killed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    left = [p.name for p in folder.iterdir() if p.name.startswith(".staging-")]
    assert len(left) == 1
    assert snapshot(folder) == before | {
        str(p.relative_to(folder)): p.read_bytes()
        for p in (folder / left[0]).rglob("*")
        if p.is_file()
    }

    second = run_cli(["--once", "pipelines", "--at", "2026-11-29T07:00"], sales.root)
    assert second.returncode == 0, second.stderr
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    after = snapshot(folder)
    assert {k: v for k, v in after.items() if k.startswith("2026-11-27")} == {
        k: v for k, v in before.items() if k.startswith("2026-11-27")
    }
    assert "2026-11-28.md" not in after and "2026-11-29.md" in after
