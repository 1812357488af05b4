"""Exports byte for byte, retention by name, and the manifest's helpers."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from eil_pipelines.errors import OutputError
from eil_pipelines.outputs import ReportFiles, owned_files, write_report
from eil_pipelines.outputs import exports as exports_module
from eil_pipelines.outputs.exports import csv_bytes, export_results, result_sha256
from eil_pipelines.outputs.manifest import git_state, manifest_bytes, read_manifest, stable_view
from eil_pipelines.outputs.retention import apply_retention

UTC = ZoneInfo("UTC")
AT = datetime(2026, 11, 28, 7, tzinfo=UTC)


def frame() -> pd.DataFrame:
    return pd.DataFrame({"region": ["EMEA", None, "LATAM"], "v": [1.1, 2.0, float("nan")]})


def test_csv_is_plain_utf8_with_exact_floats():
    df = pd.DataFrame({"x": [0.1 + 0.2, 1e-20], "s": ["ä", "b,c"]})
    assert csv_bytes(df) == 'x,s\n0.30000000000000004,ä\n1e-20,"b,c"\n'.encode()
    assert pd.read_csv(io.BytesIO(csv_bytes(df)))["x"].tolist() == df["x"].tolist()


def test_result_hash_is_the_csv_hash_and_follows_data_and_order():
    df = frame()
    assert result_sha256(df) == hashlib.sha256(csv_bytes(df)).hexdigest()
    assert result_sha256(df) == result_sha256(frame())
    assert result_sha256(df) != result_sha256(df.iloc[::-1])
    changed = frame()
    changed.loc[0, "v"] = 1.2
    assert result_sha256(df) != result_sha256(changed)


def test_export_results_names_and_readability():
    files = export_results(
        "p", {"a": frame(), "b": frame()}, ["csv", "parquet", "xlsx"], scheduled_at=AT, zone=UTC
    )
    assert list(files) == ["a.csv", "b.csv", "a.parquet", "b.parquet", "a.xlsx", "b.xlsx"]
    assert pd.read_parquet(io.BytesIO(files["a.parquet"]))["region"].tolist()[::2] == [
        "EMEA",
        "LATAM",
    ]
    assert len(pd.read_excel(io.BytesIO(files["a.xlsx"]))) == 3


def test_xlsx_row_limit_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(exports_module, "XLSX_MAX_ROWS", 3)
    with pytest.raises(OutputError) as error:
        export_results("p", {"big": frame()}, ["xlsx"], scheduled_at=AT, zone=UTC)
    assert str(error.value) == (
        'pipeline "p", query "big": 3 rows do not fit an xlsx sheet (at most 2): '
        "export this result as csv or parquet"
    )


def test_unexportable_parquet_is_a_clear_error():
    df = pd.DataFrame({"mixed": [1, "a", 2.5]})
    with pytest.raises(OutputError, match=r'^pipeline "p", query "q": cannot export as parquet: '):
        export_results("p", {"q": df}, ["parquet"], scheduled_at=AT, zone=UTC)


def write(folder, stamp, *, data=True):
    write_report(
        folder,
        ReportFiles(
            stamp=stamp,
            documents={"md": "# x\n", "html": "<p>x</p>"},
            images={"c.png": b"png"},
            data={"q.csv": b"a\n"} if data else {},
            manifest={"manifest_version": 1, "stamp": stamp},
        ),
    )


def test_owned_files_lists_only_names_reports_write(tmp_path):
    write(tmp_path, "2026-11-28T0700")
    (tmp_path / "notes.md").write_text("x")
    (tmp_path / "2026-11-28T0700_charts" / "mine.svg").write_text("x")
    (tmp_path / "2026-11-28T0700.md.orig").write_text("x")
    owned = owned_files(tmp_path)
    assert list(owned) == ["2026-11-28T0700"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in owned["2026-11-28T0700"]) == [
        "2026-11-28T0700.html",
        "2026-11-28T0700.json",
        "2026-11-28T0700.md",
        "2026-11-28T0700_charts/c.png",
        "2026-11-28T0700_data/q.csv",
    ]


def test_retention_by_stamp_order_across_granularities(tmp_path):
    for stamp in ("2026-11-27", "2026-11-28", "2026-11-28T0700", "2026-11-28T0800"):
        write(tmp_path, stamp)
    (tmp_path / "keep-me.txt").write_text("x")
    deleted = apply_retention(tmp_path, 2)
    assert sorted(owned_files(tmp_path)) == ["2026-11-28T0700", "2026-11-28T0800"]
    assert len(deleted) == 10
    assert (tmp_path / "keep-me.txt").exists() and (tmp_path / "latest.md").exists()
    assert not (tmp_path / "2026-11-27_charts").exists()
    assert apply_retention(tmp_path, 2) == []
    with pytest.raises(ValueError):
        apply_retention(tmp_path, 0)


def test_manifest_bytes_are_valid_json_and_reject_nan():
    data = manifest_bytes({"a": 1, "b": "ü"})
    assert data == b'{\n  "a": 1,\n  "b": "\xc3\xbc"\n}\n'
    with pytest.raises(ValueError):
        manifest_bytes({"x": float("nan")})


def test_read_manifest_tolerates_foreign_json(tmp_path):
    (tmp_path / "a.json").write_text('{"hello": 1}')
    (tmp_path / "b.json").write_text("[")
    assert read_manifest(tmp_path / "a.json") is None
    assert read_manifest(tmp_path / "b.json") is None
    assert read_manifest(tmp_path / "missing.json") is None


def test_stable_view_drops_only_wall_clock_fields():
    manifest = {"pipeline": "p", "started_at": 1, "finished_at": 2, "duration_s": 3, "stages_s": {}}
    assert stable_view(manifest) == {"pipeline": "p"}


def test_git_state_outside_a_checkout_and_without_git(tmp_path, monkeypatch):
    assert git_state(tmp_path) is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on PATH
    assert git_state(tmp_path) is None


def test_git_state_starts_no_git_process_outside_any_repository(tmp_path, monkeypatch):
    # A git on PATH that leaves a mark each time it is started.
    tools = tmp_path / "tools"
    tools.mkdir()
    mark = tmp_path / "git-started"
    fake = tools / "git"
    fake.write_text(f"#!/bin/sh\necho x >> {mark}\nexit 128\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    monkeypatch.delenv("GIT_DIR", raising=False)
    project = tmp_path / "project"
    project.mkdir()
    if any(os.path.lexists(p / ".git") for p in (project, *project.parents)):
        pytest.skip("the temporary folder is inside a git repository")
    assert git_state(project) is None
    assert not mark.exists()
    (project / ".git").mkdir()
    assert git_state(project) is None  # the fake git fails: still no state, but it was asked
    assert mark.read_text() == "x\n"
