"""The scheduler's file watcher (app/watch.py), driven by explicit polls, no sleeps.

Each test starts a real service on a temporary project (no loop, no watcher
thread), changes real files, and calls ``check_files()``: one poll of the
watcher, then a reload when it saw a change.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eil_pipelines.app import watch as watch_module
from eil_pipelines.app.service import SchedulerService
from eil_pipelines.app.watch import FULL_CHECK_EVERY, RACY_NS, FileWatcher, signature
from eil_pipelines.schedule.testing import ManualClock

START = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)


def text(*, every: str = "1h", sql: str = "SELECT 1 AS x", sql_file: str | None = None) -> str:
    query = f'file = "{sql_file}"' if sql_file else f'sql = "{sql}"'
    return f'title = "R"\n[schedule]\nevery = "{every}"\ntimezone = "UTC"\n[queries.q]\n{query}\n'


def age(path: Path, seconds: float = 3600) -> None:
    """Date a file back, as if written long ago (so nothing about it is racy)."""
    then = os.stat(path).st_mtime - seconds
    os.utime(path, (then, then))


@pytest.fixture(params=["inotify", "poll"])
def service(project, request, monkeypatch):
    """Services watching with inotify (where the system has it) and by polling."""
    monkeypatch.setenv("EIL_WATCH", request.param)
    made: list[SchedulerService] = []

    def make() -> SchedulerService:
        s = SchedulerService(
            project.pipelines, reports_dir=project.reports, clock=ManualClock(START)
        )
        made.append(s)
        s.start(watch=False, loop=False)
        if request.param == "inotify" and s._files.mode != "inotify":
            pytest.skip("inotify is not available here")
        return s

    yield make
    for s in made:
        s.stop(grace=5)


def test_an_idle_poll_sees_nothing(project, service):
    project.pipeline("a", text(sql_file="sql/a.sql"))
    project.write("sql/a.sql", "SELECT 1 AS x")
    s = service()
    assert s.check_files() == []
    assert s.check_files() == []
    watched = set(s._files.watched())
    assert str(project.pipelines) in watched
    assert str(project.pipelines / "a.toml") in watched
    assert str(project.root / "sql" / "a.sql") in watched


def test_an_edit_in_place_reloads(project, service):
    path = project.pipeline("a", text())
    s = service()
    with open(path, "w", encoding="utf-8") as handle:  # same inode, same folder
        handle.write(text(every="2h"))
    assert s.check_files() == ["rescheduled a, next run 2026-03-02T14:00:00+00:00"]
    assert s.check_files() == []


def test_a_save_by_rename_reloads(project, service):
    path = project.pipeline("a", text())
    s = service()
    temp = project.pipelines / ".a.toml.tmp"
    temp.write_text(text(every="2h"), encoding="utf-8")
    os.replace(temp, path)
    assert s.check_files() == ["rescheduled a, next run 2026-03-02T14:00:00+00:00"]


def test_a_new_and_a_deleted_file_reload(project, service):
    project.pipeline("a", text())
    s = service()
    project.pipeline("b", text(every="15m"))
    assert s.check_files() == ["scheduled b, next run 2026-03-02T12:45:00+00:00"]
    (project.pipelines / "b.toml").unlink()
    assert s.check_files() == ["unscheduled b: b.toml was deleted"]
    assert s.scheduler.get("b") is None


def test_an_edit_of_a_shared_sql_file_reloads_every_pipeline_using_it(project, service):
    project.write("sql/shared.sql", "SELECT 1 AS x")
    project.pipeline("a", text(sql_file="sql/shared.sql"))
    project.pipeline("b", text(sql_file="sql/shared.sql", every="2h"))
    project.pipeline("c", text())
    s = service()
    project.write("sql/shared.sql", "SELECT 2 AS x")
    changes = s.check_files()
    assert sorted(c.split(",")[0] for c in changes) == ["rescheduled a", "rescheduled b"]
    assert {p.name: p.sql["q"] for p in s.pipelines()}["b"] == "SELECT 2 AS x"


def test_an_edit_of_a_template_reloads(project, service):
    project.write("templates/r.md.j2", "# {{ title }}\n")
    project.pipeline("a", text() + '[report]\ntemplate = "templates/r.md.j2"\n')
    s = service()
    project.write("templates/r.md.j2", "# {{ title }} (new)\n")
    assert [c.split(",")[0] for c in s.check_files()] == ["rescheduled a"]


def test_fixing_the_sql_file_of_a_broken_pipeline_reloads_it(project, service):
    project.pipeline("a", text(sql_file="sql/a.sql"))  # the SQL file is missing
    project.write("sql/b.sql", "   ")  # empty SQL
    project.pipeline("b", text(sql_file="sql/b.sql"))
    s = service()
    assert sorted(f.name for f in s.broken()) == ["a.toml", "b.toml"]
    assert s.check_files() == []
    project.write("sql/a.sql", "SELECT 1 AS x")
    assert s.check_files() == ["scheduled a, next run 2026-03-02T13:00:00+00:00"]
    project.write("sql/b.sql", "SELECT 2 AS x")
    assert s.check_files() == ["scheduled b, next run 2026-03-02T13:00:00+00:00"]
    assert s.broken() == {}


def test_fixing_a_toml_syntax_error_reloads(project, service):
    path = project.pipeline("a", "title = \n")
    s = service()
    assert list(s.broken()) == [path.resolve()]
    path.write_text(text(), encoding="utf-8")
    assert s.check_files() == ["scheduled a, next run 2026-03-02T13:00:00+00:00"]


def test_a_sql_file_named_by_a_new_version_is_watched_from_then_on(project, service):
    path = project.pipeline("a", text())
    s = service()
    sql = project.write("sql/a.sql", "SELECT 1 AS x")
    age(sql)
    path.write_text(text(sql_file="sql/a.sql"), encoding="utf-8")
    assert [c.split(",")[0] for c in s.check_files()] == ["rescheduled a"]
    assert str(sql) in s._files.watched()
    sql.write_text("SELECT 22 AS x", encoding="utf-8")
    assert [c.split(",")[0] for c in s.check_files()] == ["rescheduled a"]


# -- the watcher alone, with an injected clock --------------------------------------


def test_a_recent_file_named_only_after_the_look_forces_one_more_poll(tmp_path):
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "a.toml").write_text("x = 1\n")
    age(folder / "a.toml")
    age(folder)
    sql = tmp_path / "a.sql"
    refs: list[Path] = []
    watcher = FileWatcher(folder, references=lambda: refs)
    look = watcher.look()
    assert not look.racy
    # The reload reads a new version naming a.sql; a.sql is saved after the look,
    # perhaps after it was read: its signature now cannot be trusted.
    sql.write_text("SELECT 1")
    refs.append(sql)
    watcher.settle(look)
    assert watcher.changed()
    watcher.settle(watcher.look())  # the reload that follows
    assert not watcher.changed()


def test_a_file_changed_within_the_clock_tick_of_the_look_is_compared_by_content(tmp_path):
    folder = tmp_path / "pipelines"
    folder.mkdir()
    path = folder / "a.toml"
    path.write_text("x = 1\n")
    now = [os.stat(path).st_mtime_ns]  # the look happens within the tick of the write
    watcher = FileWatcher(folder, references=list, clock_ns=lambda: now[0])
    watcher.settle(watcher.look())
    assert not watcher.changed()
    # A second write within the same tick, of the same size: on a coarse clock its
    # times stay as they were.  ctime cannot be put back, so the baseline takes the
    # new signature, as it would have been with such a clock.
    path.write_text("x = 2\n")
    watcher._baseline[str(path)] = signature(str(path))
    watcher._baseline[str(folder)] = signature(str(folder))
    assert watcher.changed()


def test_a_racy_path_stops_being_read_once_it_is_old(tmp_path):
    folder = tmp_path / "pipelines"
    folder.mkdir()
    path = folder / "a.toml"
    path.write_text("x = 1\n")
    now = [os.stat(path).st_mtime_ns]
    watcher = FileWatcher(folder, references=list, clock_ns=lambda: now[0])
    watcher.settle(watcher.look())
    assert watcher._racy  # the folder and the file, both just written
    now[0] += 2 * RACY_NS
    assert not watcher.changed()
    assert not watcher._racy


def test_a_single_file_path_is_watched(tmp_path):
    folder = tmp_path / "pipelines"
    folder.mkdir()
    path = folder / "a.toml"
    path.write_text("x = 1\n")
    watcher = FileWatcher(path, references=list)
    watcher.settle(watcher.look())
    assert watcher.watched() == [str(path)]
    (folder / "b.toml").write_text("x = 1\n")  # another file: not watched
    assert not watcher.changed()
    path.write_text("x = 22\n")
    assert watcher.changed()


# -- inotify ------------------------------------------------------------------------


def inotify_watcher(folder: Path, refs: list[Path] | None = None) -> FileWatcher:
    watcher = FileWatcher(folder, references=lambda: refs or [])
    if watcher.mode != "inotify":
        watcher.close()
        pytest.skip("inotify is not available here")
    return watcher


def aged_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "a.toml").write_text("x = 1\n")
    age(folder / "a.toml")
    age(folder)
    return folder


def test_with_inotify_an_idle_poll_stats_nothing(tmp_path, monkeypatch):
    folder = aged_folder(tmp_path)
    sql = tmp_path / "sql" / "a.sql"
    sql.parent.mkdir()
    sql.write_text("SELECT 1")
    age(sql)
    watcher = inotify_watcher(folder, [sql])
    try:
        watcher.settle(watcher.look())
        assert not watcher.changed()  # the stat pass after a settle
        stats: list[str] = []
        real = watch_module.signature

        def counting(path: str):
            stats.append(path)
            return real(path)

        monkeypatch.setattr(watch_module, "signature", counting)
        for _ in range(5):
            assert not watcher.changed()
        assert stats == []
        sql.write_text("SELECT 22")  # in place, in another folder
        assert watcher.changed()
        assert stats  # the event led to a stat pass
    finally:
        watcher.close()


def test_with_inotify_a_change_it_misses_is_seen_by_the_periodic_full_check(tmp_path):
    folder = aged_folder(tmp_path)
    watcher = inotify_watcher(folder)
    try:
        watcher.settle(watcher.look())
        assert not watcher.changed()
        (folder / "a.toml").write_text("x = 22\n")
        assert watcher._inotify is not None
        assert watcher._inotify.events()  # swallowed, as a network file system would
        seen = [watcher.changed() for _ in range(FULL_CHECK_EVERY)]
        assert not seen[0]  # no event: no stat pass
        assert any(seen)  # the periodic full stat pass finds it
    finally:
        watcher.close()


def test_polling_when_asked(tmp_path, monkeypatch):
    folder = aged_folder(tmp_path)
    assert FileWatcher(folder, references=list, use_inotify=False).mode == "poll"
    monkeypatch.setenv("EIL_WATCH", "poll")
    watcher = FileWatcher(folder, references=list)
    assert watcher.mode == "poll"
    watcher.settle(watcher.look())
    (folder / "a.toml").write_text("x = 22\n")
    assert watcher.changed()
