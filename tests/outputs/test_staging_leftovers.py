"""Staging folders and temp files a killed process leaves are removed by the next
write into the folder, and a live process's never are."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from eil_pipelines.outputs import ReportFiles, write_report
from eil_pipelines.outputs.atomic import OWNER, _start_time, owner_is_alive
from eil_pipelines.outputs.report_files import remove_leftovers

REPO = Path(__file__).resolve().parents[2]

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="process start times come from /proc (Linux)"
)


def token_of(process: subprocess.Popen) -> str:
    start = _start_time(process.pid)
    assert start is not None and start != "zombie"
    return f"{process.pid}-{start}"


@pytest.fixture
def live_process():
    """A real process that stays alive for the test."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def dead_token() -> str:
    """The owner token of a real process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    token = token_of(process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return token


def staging(folder: Path, owner: str) -> Path:
    path = folder / f".staging-{owner}-{uuid.uuid4().hex}"
    (path / "2026-11-27_charts").mkdir(parents=True)
    (path / "2026-11-27.md").write_text("half a report")
    return path


def report(stamp: str = "2026-11-28") -> ReportFiles:
    return ReportFiles(stamp=stamp, documents={"md": "# new\n"})


@needs_proc
def test_a_dead_processs_staging_is_removed_and_a_live_ones_kept(
    tmp_path: Path, live_process: subprocess.Popen, dead_token: str
):
    folder = tmp_path / "sales"
    folder.mkdir()
    dead = staging(folder, dead_token)
    dead_temp = folder / f".latest.md.{dead_token}.abc_1234.tmp"
    dead_temp.write_text("half")
    live = staging(folder, token_of(live_process))
    live_temp = folder / f".latest.md.{token_of(live_process)}.abc_1234.tmp"
    live_temp.write_text("being written")
    mine = staging(folder, OWNER)  # another thread of this process, writing now

    write_report(folder, report())

    assert not dead.exists() and not dead_temp.exists()
    assert live.exists() and live_temp.read_text() == "being written"
    assert mine.exists()
    assert (folder / "2026-11-28.md").read_text() == "# new\n"


@needs_proc
def test_a_reused_pid_does_not_keep_a_dead_processs_staging(
    tmp_path: Path, live_process: subprocess.Popen
):
    # The same pid with another start time: the pid was reused by a newer process.
    stale = f"{live_process.pid}-1"
    assert not owner_is_alive(stale)
    assert owner_is_alive(token_of(live_process))
    path = staging(tmp_path, stale)
    assert remove_leftovers(tmp_path) == [path]


def test_unowned_staging_of_the_previous_version_goes_only_when_old(tmp_path: Path):
    old = tmp_path / f".staging-{uuid.uuid4().hex}"
    young = tmp_path / f".staging-{uuid.uuid4().hex}"
    old.mkdir()
    young.mkdir()
    now = time.time()
    os.utime(old, (now - 7200, now - 7200))
    assert remove_leftovers(tmp_path, now=now) == [old]
    assert young.exists()


def test_other_hidden_files_and_reports_are_never_touched(tmp_path: Path, dead_token: str):
    keep = ["notes.md", ".gitignore", ".staging-notes", f".staging-{dead_token}", "2026-11-27.md"]
    for name in keep:
        (tmp_path / name).write_text("x")
    assert remove_leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


@needs_proc
def test_a_folder_swapped_out_by_a_killed_run_is_put_back(tmp_path: Path, dead_token: str):
    # Killed between the two renames of _replace_dir: the charts are only in the trash.
    trash = tmp_path / f".old-{dead_token}-{uuid.uuid4().hex}.2026-11-27_charts"
    trash.mkdir()
    (trash / "a.png").write_bytes(b"png")
    remove_leftovers(tmp_path)
    assert (tmp_path / "2026-11-27_charts" / "a.png").read_bytes() == b"png"
    assert not trash.exists()


CHILD = """
import sys, time
from pathlib import Path
from eil_pipelines.outputs import ReportFiles, write_report
from eil_pipelines.outputs import atomic

ready = Path(sys.argv[2])
real = atomic.write_all

def write_all(handle, data):
    real(handle, data[: len(data) // 2])
    handle.flush()
    ready.write_text("half written")
    time.sleep(600)  # killed here, mid-write

atomic.write_all = write_all
write_report(Path(sys.argv[1]), ReportFiles(stamp="2026-11-28", documents={"md": "# new\\n" * 1000}))
"""


@needs_proc
def test_kill_9_mid_write_leaves_earlier_reports_and_the_next_write_cleans_up(tmp_path: Path):
    folder = tmp_path / "sales"
    write_report(folder, ReportFiles(stamp="2026-11-27", documents={"md": "# old\n"}))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), str(ready)], cwd=REPO, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "the child never started writing"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stderr:
            child.stderr.close()
    leftovers = [p for p in folder.iterdir() if p.name.startswith(".staging-")]
    # The half-written file is inside the staging folder, never in place.
    assert len(leftovers) == 1 and any(p.is_file() for p in leftovers[0].rglob("*"))
    # Earlier reports untouched, no half-written report in place.
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before

    # What the next process does at its first write into the folder.
    remove_leftovers(folder)
    write_report(folder, ReportFiles(stamp="2026-11-29", documents={"md": "# next\n"}))
    assert sorted(p.name for p in folder.iterdir()) == [
        "2026-11-27.md",
        "2026-11-29.md",
        "latest.md",
    ]
