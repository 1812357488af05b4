"""Report files are written atomically: a failure never leaves a partial report or touches an earlier one."""

from __future__ import annotations

import os

import pytest

from eil_pipelines.errors import OutputError
from eil_pipelines.outputs import ReportFiles, atomic_write_text, write_report
from eil_pipelines.outputs import atomic as atomic_module


def snapshot(folder):
    """Every file under ``folder`` with its bytes, hidden ones included."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def files(stamp: str, text: str) -> ReportFiles:
    return ReportFiles(
        stamp=stamp,
        documents={"md": f"# {text}\n", "html": f"<p>{text}</p>"},
        images={"a.png": b"png-a-" + text.encode(), "b.png": b"png-b-" + text.encode()},
    )


def test_layout_and_latest(tmp_path):
    written = write_report(tmp_path / "daily", files("2026-11-27", "one"))
    names = [str(p.relative_to(tmp_path)) for p in written]
    assert names == [
        "daily/2026-11-27_charts/a.png",
        "daily/2026-11-27_charts/b.png",
        "daily/2026-11-27.md",
        "daily/2026-11-27.html",
        "daily/latest.md",
        "daily/latest.html",
    ]
    assert (tmp_path / "daily/latest.md").read_text() == "# one\n"
    write_report(tmp_path / "daily", files("2026-11-28", "two"))
    assert (tmp_path / "daily/latest.html").read_text() == "<p>two</p>"
    assert (tmp_path / "daily/2026-11-27.md").read_text() == "# one\n"
    # No staging or temp files are left behind.
    assert not [p for p in (tmp_path / "daily").rglob(".*")]


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4])
def test_failure_mid_write_leaves_previous_reports_intact(tmp_path, monkeypatch, fail_at):
    folder = tmp_path / "daily"
    write_report(folder, files("2026-11-27", "old"))
    write_report(folder, files("2026-11-28", "old"))
    before = snapshot(folder)

    calls = {"n": 0}
    real = atomic_module.write_all

    def failing(handle, data):
        calls["n"] += 1
        if calls["n"] == fail_at:
            handle.write(data[: len(data) // 2])  # half a file, then the disk "fails"
            raise OSError(28, "No space left on device")
        real(handle, data)

    monkeypatch.setattr(atomic_module, "write_all", failing)
    # Re-render the same stamp (overwrite) and fail part-way: nothing may change.
    with pytest.raises(OutputError, match="No space left on device"):
        write_report(folder, files("2026-11-28", "new"))
    assert snapshot(folder) == before


def test_failure_while_renaming_keeps_every_file_whole(tmp_path, monkeypatch):
    folder = tmp_path / "daily"
    write_report(folder, files("2026-11-28", "old"))
    real = os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        calls["n"] += 1
        if str(dst).endswith(".html") and "staging" in str(src):
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OutputError):
        write_report(folder, files("2026-11-28", "new"))
    # Each file is either the old or the new version, never a mix within a file.
    for path, data in snapshot(folder).items():
        assert data in {
            b"# old\n",
            b"# new\n",
            b"<p>old</p>",
            b"png-a-old",
            b"png-a-new",
            b"png-b-old",
            b"png-b-new",
        }, path
    assert (folder / "2026-11-28.html").read_text() == "<p>old</p>"


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "x.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_an_older_report_does_not_replace_latest(tmp_path):
    folder = tmp_path / "daily"
    write_report(folder, files("2026-11-28", "new"))
    written = write_report(folder, files("2026-11-20", "backfilled"))
    assert (folder / "latest.md").read_text() == "# new\n"
    assert (folder / "2026-11-20.md").read_text() == "# backfilled\n"
    assert folder / "latest.md" not in written
    write_report(folder, files("2026-11-28", "rerun"))  # the same stamp again: still the newest
    assert (folder / "latest.md").read_text() == "# rerun\n"
