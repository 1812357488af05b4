"""The cache of parsed pipeline files (spec/cache.py): hits, invalidation, damage, safety."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from eil_pipelines.spec import cache as cache_module
from eil_pipelines.spec.cache import CACHE_FILE, ParseCache, cache_folder
from eil_pipelines.spec.loader import load_pipelines, load_pipelines_lenient

TEXT = 'title = "R"\n[queries.q]\nsql = "SELECT 1 AS x"\n'


def age(path: Path, seconds: float = 3600) -> None:
    """Date a file back: a file written just now is never cached (its times are racy)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def parse_counting(calls: list[str]):
    import tomllib

    def parse(text: str):
        calls.append(text)
        return tomllib.loads(text)

    return parse


def test_an_unchanged_file_is_parsed_once_and_each_caller_gets_its_own_copy(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(TEXT)
    age(path)
    cache, calls = ParseCache(), []
    first = cache.parsed(path, parse_counting(calls))
    first["title"] = "changed by a caller"
    second = cache.parsed(path, parse_counting(calls))
    assert len(calls) == 1
    assert second["title"] == "R"
    assert (cache.hits, cache.misses) == (1, 1)


def test_an_edit_invalidates_the_entry(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(TEXT)
    age(path)
    cache, calls = ParseCache(), []
    cache.parsed(path, parse_counting(calls))
    path.write_text(TEXT.replace('"R"', '"S"'))  # same size, a new time and ctime
    age(path, 1800)
    assert cache.parsed(path, parse_counting(calls))["title"] == "S"
    assert len(calls) == 2


def test_a_save_by_rename_invalidates_the_entry(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(TEXT)
    age(path)
    cache, calls = ParseCache(), []
    cache.parsed(path, parse_counting(calls))
    stat = os.stat(path)
    new = tmp_path / "a.toml.new"
    new.write_text(TEXT.replace('"R"', '"S"'))
    os.utime(new, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old times
    os.replace(new, path)
    assert cache.parsed(path, parse_counting(calls))["title"] == "S"


def test_a_file_written_just_now_is_not_cached(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(TEXT)
    cache, calls = ParseCache(), []
    cache.parsed(path, parse_counting(calls))
    cache.parsed(path, parse_counting(calls))
    assert len(calls) == 2


def test_a_syntax_error_is_never_cached(tmp_path):
    import tomllib

    path = tmp_path / "a.toml"
    path.write_text("title = \n")
    age(path)
    cache = ParseCache()
    for _ in range(2):
        with pytest.raises(tomllib.TOMLDecodeError):
            cache.parsed(path, tomllib.loads)
    assert cache.hits == 0


# -- the cache file -------------------------------------------------------------------


@pytest.fixture
def aged_project(project, monkeypatch):
    """Three aged pipeline files, and a fresh process cache in the loader."""
    for name in ("a", "b", "c"):
        age(project.pipeline(name, TEXT))
    project.reports.mkdir()
    monkeypatch.delenv("EIL_CACHE_DIR", raising=False)
    fresh = ParseCache()
    monkeypatch.setattr(cache_module, "PARSED", fresh)
    import eil_pipelines.spec.loader as loader

    monkeypatch.setattr(loader, "PARSED", fresh)
    return project


def new_process(monkeypatch) -> ParseCache:
    """What the next command starts with: an empty process cache."""
    import eil_pipelines.spec.loader as loader

    fresh = ParseCache()
    monkeypatch.setattr(loader, "PARSED", fresh)
    return fresh


def test_the_next_command_starts_warm_from_the_cache_file(aged_project, monkeypatch):
    load_pipelines(aged_project.pipelines)
    cache_file = aged_project.reports / ".eil" / "cache" / CACHE_FILE
    assert cache_file.is_file()
    fresh = new_process(monkeypatch)
    assert [p.name for p in load_pipelines(aged_project.pipelines)] == ["a", "b", "c"]
    assert (fresh.hits, fresh.misses) == (3, 0)


def test_an_edit_between_commands_is_seen(aged_project, monkeypatch):
    load_pipelines(aged_project.pipelines)
    path = aged_project.pipeline("b", TEXT.replace('"R"', '"Changed"'))
    age(path, 1800)
    fresh = new_process(monkeypatch)
    titles = {p.name: p.spec.title for p in load_pipelines(aged_project.pipelines)}
    assert titles == {"a": "R", "b": "Changed", "c": "R"}
    assert (fresh.hits, fresh.misses) == (2, 1)


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"not a pickle at all",
        pickle.dumps({"format": "something else", "entries": {}}),
        b"truncated",
    ],
)
def test_a_damaged_cache_file_is_ignored_and_replaced(aged_project, monkeypatch, damage):
    load_pipelines(aged_project.pipelines)
    cache_file = aged_project.reports / ".eil" / "cache" / CACHE_FILE
    if damage == b"truncated":
        damage = cache_file.read_bytes()[: cache_file.stat().st_size // 2]
    cache_file.write_bytes(damage)
    fresh = new_process(monkeypatch)
    assert [p.name for p in load_pipelines(aged_project.pipelines)] == ["a", "b", "c"]
    assert fresh.misses == 3
    fresh = new_process(monkeypatch)  # rewritten whole by the load above
    load_pipelines(aged_project.pipelines)
    assert fresh.hits == 3


def test_damaged_entries_are_parsed_again(aged_project, monkeypatch):
    load_pipelines(aged_project.pipelines)
    cache_file = aged_project.reports / ".eil" / "cache" / CACHE_FILE
    stored = pickle.loads(cache_file.read_bytes())
    for path, (key, _) in stored["entries"].items():
        stored["entries"][path] = (key, b"\x80\x05garbage")
    cache_file.write_bytes(pickle.dumps(stored))
    fresh = new_process(monkeypatch)
    assert [p.spec.title for p in load_pipelines(aged_project.pipelines)] == ["R", "R", "R"]
    assert fresh.misses == 3


def test_a_planted_cache_file_cannot_run_code(aged_project, monkeypatch, tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    load_pipelines(aged_project.pipelines)
    cache_file = aged_project.reports / ".eil" / "cache" / CACHE_FILE
    stored = pickle.loads(cache_file.read_bytes())
    path, (key, _) = next(iter(stored["entries"].items()))
    stored["entries"][path] = (key, pickle.dumps(Evil()))
    cache_file.write_bytes(pickle.dumps(stored))
    new_process(monkeypatch)
    assert len(load_pipelines(aged_project.pipelines)) == 3
    cache_file.write_bytes(pickle.dumps(Evil()))  # the whole file, too
    new_process(monkeypatch)
    assert len(load_pipelines(aged_project.pipelines)) == 3
    assert not marker.exists()


def test_no_cache_file_without_a_reports_folder_or_when_turned_off(project, monkeypatch):
    monkeypatch.delenv("EIL_CACHE_DIR", raising=False)
    age(project.pipeline("a", TEXT))
    assert cache_folder(project.root) is None
    load_pipelines_lenient(project.pipelines)
    assert not project.reports.exists()  # validate on a fresh checkout writes nothing
    project.reports.mkdir()
    monkeypatch.setenv("EIL_CACHE_DIR", "")
    assert cache_folder(project.root) is None
    monkeypatch.setenv("EIL_CACHE_DIR", str(project.root / "elsewhere"))
    assert cache_folder(project.root) == project.root / "elsewhere"


def test_an_unwritable_cache_folder_is_not_an_error(aged_project, monkeypatch):
    (aged_project.reports / ".eil").write_text("a file where a folder should be")
    assert [p.name for p in load_pipelines(aged_project.pipelines)] == ["a", "b", "c"]
