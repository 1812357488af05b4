"""The write stage of a run, in-process: manifest, exports, PDF, retention, status and site."""

from __future__ import annotations

import hashlib
import io
import json
import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.outputs import atomic as atomic_module
from eil_pipelines.outputs.manifest import VOLATILE_KEYS, read_manifest, stable_view
from eil_pipelines.run import make_context, run_pipeline
from eil_pipelines.spec import load_pipeline

BERLIN = ZoneInfo("Europe/Berlin")
AT = datetime(2026, 11, 28, 7, 0, tzinfo=BERLIN)

# 120 rows: more than the table shows (max_rows = 5), all of them in every export.
ROWS = "d,region,v\n" + "".join(
    f"2026-11-{1 + i % 27:02d},{('EMEA', 'APAC', 'AMER')[i % 3]},{i * 1.5}\n" for i in range(120)
)

PIPELINE = """
title = "Sales"
description = "How much did we sell?"
[schedule]
cron = "0 7 * * *"
timezone = "Europe/Berlin"
period = "day"
[queries.kpis]
sql = "SELECT sum(v) AS v, sum(v) / 2 AS p FROM 'data/s.csv'"
[queries.rows]
sql = "SELECT d, region, v FROM 'data/s.csv' ORDER BY v"
[[metrics]]
label = "Sales"
query = "kpis"
column = "v"
compare = "p"
format = "currency"
[report]
max_rows = 5
"""


def line_segments(pdf: bytes) -> int:
    """How many straight line segments (``x y l``) the PDF's content streams draw."""
    import re
    import zlib

    count = 0
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, flags=re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            content = stream
        count += len(re.findall(rb"[-\d.]+ [-\d.]+ l\b", content))
    return count


def make(project, extra: str = "", *, data: str = ROWS, name: str = "sales"):
    project.write("data/s.csv", data)
    return load_pipeline(project.pipeline(name, PIPELINE + extra), root=project.root)


def run(project, pipeline, at: datetime = AT):
    result = run_pipeline(pipeline, make_context(pipeline, at), project.reports)
    return result


def test_manifest_answers_what_was_sent_and_from_which_definitions(project):
    pipeline = make(project)
    result = run(project, pipeline)
    assert result.ok, result.error
    folder = project.reports / "sales"
    assert result.manifest == folder / "2026-11-28.json"
    manifest = json.loads(result.manifest.read_text())
    assert manifest["manifest_version"] == 1
    assert manifest["pipeline"] == "sales"
    assert manifest["title"] == "Sales"
    assert manifest["schedule"] == "every day at 07:00 Europe/Berlin"
    assert manifest["scheduled_at"] == "2026-11-28T07:00:00+01:00"
    assert manifest["scheduled_at_utc"] == "2026-11-28T06:00:00+00:00"
    assert manifest["period"] == {
        "kind": "day",
        "start": "2026-11-27T00:00:00+01:00",
        "end": "2026-11-28T00:00:00+01:00",
        "prev_start": "2026-11-26T00:00:00+01:00",
        "prev_end": "2026-11-27T00:00:00+01:00",
    }
    assert manifest["run_id"] == result.run_id == make_context(pipeline, AT).run_id
    assert manifest["status"] == "succeeded"
    started = datetime.fromisoformat(manifest["started_at"])
    finished = datetime.fromisoformat(manifest["finished_at"])
    assert started <= finished and manifest["duration_s"] >= 0
    assert set(manifest["stages_s"]) == {"query", "charts", "template", "pdf"}

    sql = pipeline.sql["rows"]
    rows = manifest["queries"]["rows"]
    assert rows["sql_sha256"] == hashlib.sha256(sql.encode()).hexdigest()
    assert rows["rows"] == 120
    assert list(rows["columns"]) == ["d", "region", "v"]
    assert len(rows["result_sha256"]) == 64
    toml_bytes = (project.pipelines / "sales.toml").read_bytes()
    assert manifest["pipeline_file"] == {
        "path": "pipelines/sales.toml",
        "sha256": hashlib.sha256(toml_bytes).hexdigest(),
    }
    assert manifest["template"]["name"] == "<built-in executive>"
    assert len(manifest["template"]["sha256"]) == 64
    assert manifest["git"] is None  # the temporary project is not a git checkout
    assert manifest["software"]["eil-pipelines"]
    assert manifest["metrics"][0]["label"] == "Sales"
    assert manifest["metrics"][0]["text"].startswith("$")

    # Every file named exists, with the bytes the manifest says.
    paths = [f["path"] for f in manifest["files"]]
    assert paths == ["2026-11-28.md", "2026-11-28.html"]
    for entry in manifest["files"]:
        data = (folder / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)


def test_result_hash_follows_the_data_and_nothing_else(project):
    pipeline = make(project)
    first = read_manifest(run(project, pipeline).manifest)
    again = read_manifest(run(project, pipeline).manifest)
    # Same data, same scheduled time: only the wall-clock fields differ.
    assert stable_view(first) == stable_view(again)
    assert set(VOLATILE_KEYS) <= first.keys()

    project.write("data/s.csv", ROWS + "2026-11-27,EMEA,1000\n")
    changed = read_manifest(run(project, pipeline).manifest)
    assert changed["queries"]["rows"]["result_sha256"] != first["queries"]["rows"]["result_sha256"]
    assert changed["queries"]["rows"]["rows"] == 121
    assert changed["queries"]["rows"]["sql_sha256"] == first["queries"]["rows"]["sql_sha256"]


def test_manifest_records_sql_files_custom_templates_and_git(project, tmp_path):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    project.write("sql/rows.sql", "SELECT d, v FROM 'data/s.csv'")
    project.write("templates/t.md.j2", "# {{ pipeline.title }}\n")
    text = (
        PIPELINE.replace(
            "[queries.rows]\nsql = \"SELECT d, region, v FROM 'data/s.csv' ORDER BY v\"",
            '[queries.rows]\nfile = "sql/rows.sql"',
        )
        + 'template = "templates/t.md.j2"\n'
    )
    project.write("data/s.csv", ROWS)
    project.pipeline("sales", text)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", *args], cwd=project.root, check=True, env=env)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project.root, capture_output=True, text=True
    ).stdout.strip()
    pipeline = load_pipeline(project.pipelines / "sales.toml", root=project.root)

    manifest = read_manifest(run(project, pipeline).manifest)
    assert manifest["queries"]["rows"]["file"] == "sql/rows.sql"
    assert manifest["template"] == {
        "name": "templates/t.md.j2",
        "sha256": hashlib.sha256(b"# {{ pipeline.title }}\n").hexdigest(),
    }
    # reports/ is inside the checkout, but writing reports does not make it dirty.
    assert manifest["git"] == {"commit": head, "dirty": False}
    project.write("sql/rows.sql", "SELECT d, v, 1 AS x FROM 'data/s.csv'")
    pipeline = load_pipeline(project.pipelines / "sales.toml", root=project.root)
    assert read_manifest(run(project, pipeline).manifest)["git"] == {"commit": head, "dirty": True}


def test_exports_hold_every_row_in_every_format(project):
    import pandas as pd

    pipeline = make(project, 'exports = ["csv", "xlsx", "parquet"]\n')
    result = run(project, pipeline)
    assert result.ok, result.error
    folder = project.reports / "sales" / "2026-11-28_data"
    assert sorted(p.name for p in folder.iterdir()) == [
        "kpis.csv",
        "kpis.parquet",
        "kpis.xlsx",
        "rows.csv",
        "rows.parquet",
        "rows.xlsx",
    ]
    assert sorted(result.exports) == sorted(folder.iterdir())
    # The report's table stops at max_rows; the exports do not.
    md = (project.reports / "sales" / "2026-11-28.md").read_text()
    assert "Showing 5 of 120 rows." in md
    frames = {
        "csv": pd.read_csv(folder / "rows.csv"),
        "parquet": pd.read_parquet(folder / "rows.parquet"),
        "xlsx": pd.read_excel(folder / "rows.xlsx"),
    }
    for fmt, df in frames.items():
        assert len(df) == 120, fmt
        assert list(df.columns) == ["d", "region", "v"], fmt
        assert df["v"].sum() == pytest.approx(sum(i * 1.5 for i in range(120))), fmt
    manifest = read_manifest(result.manifest)
    # The result hash is the hash of the CSV export: checkable with sha256sum.
    csv_hash = hashlib.sha256((folder / "rows.csv").read_bytes()).hexdigest()
    assert manifest["queries"]["rows"]["result_sha256"] == csv_hash
    assert "2026-11-28_data/rows.xlsx" in [f["path"] for f in manifest["files"]]


def test_exports_are_byte_identical_on_rerun(project):
    import time

    pipeline = make(project, 'exports = ["csv", "xlsx", "parquet"]\n')
    run(project, pipeline)
    folder = project.reports / "sales" / "2026-11-28_data"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    time.sleep(1.1)  # a wall-clock second later: zip and workbook dates must not move
    run(project, pipeline)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_dropping_an_export_removes_its_old_files(project):
    run(project, make(project, 'exports = ["csv", "parquet"]\n'))
    run(project, make(project, 'exports = ["csv"]\n'))
    folder = project.reports / "sales" / "2026-11-28_data"
    assert sorted(p.name for p in folder.iterdir()) == ["kpis.csv", "rows.csv"]
    run(project, make(project))
    assert not folder.exists()


def test_retention_keeps_the_newest_reports_and_foreign_files(project):
    pipeline = make(project, 'keep = 2\nexports = ["csv"]\n')
    folder = project.reports / "sales"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    (folder / "2026-11-01.md.bak").write_text("mine too")
    for day in range(4):
        result = run(project, pipeline, AT + timedelta(days=day))
        assert result.ok, result.error
    (folder / "2026-11-30_data" / "readme.txt").write_text("kept with its folder")
    result = run(project, pipeline, AT + timedelta(days=4))
    stamps = sorted(p.name for p in folder.iterdir())
    assert stamps == [
        "2026-11-01.md.bak",
        "2026-11-30_data",  # holds a file retention did not write
        "2026-12-01.html",
        "2026-12-01.json",
        "2026-12-01.md",
        "2026-12-01_data",
        "2026-12-02.html",
        "2026-12-02.json",
        "2026-12-02.md",
        "2026-12-02_data",
        "index.html",
        "latest.html",
        "latest.md",
        "notes.txt",
    ]
    assert sorted(p.name for p in (folder / "2026-11-30_data").iterdir()) == ["readme.txt"]
    assert folder / "2026-11-30.md" in result.deleted
    assert (folder / "notes.txt").read_text() == "mine"


def test_retention_never_deletes_the_report_just_written(project):
    pipeline = make(project, "keep = 1\n")
    run(project, pipeline, AT)
    result = run(project, pipeline, AT - timedelta(days=10))  # a backfill, older than the kept one
    assert result.ok
    folder = project.reports / "sales"
    assert (folder / "2026-11-18.md").exists() and (folder / "2026-11-28.md").exists()
    run(project, pipeline, AT + timedelta(days=1))
    assert not (folder / "2026-11-18.md").exists() and not (folder / "2026-11-28.md").exists()


def test_failed_run_is_on_the_site_and_leaves_reports_alone(project):
    pipeline = make(project)
    assert run(project, pipeline).ok
    folder = project.reports / "sales"
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    project.write("data/s.csv", "d,x\n2026-11-27,1\n")  # the column the SQL needs is gone
    failed = run(project, pipeline, AT + timedelta(days=1))
    assert not failed.ok
    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k != "index.html"} == {
        k: v for k, v in before.items() if k != "index.html"
    }
    status = json.loads((project.reports / ".eil" / "status" / "sales.json").read_text())
    assert status["status"] == "failed"
    assert status["error"].startswith('pipeline "sales", query "kpis": Binder Error')
    index = (project.reports / "index.html").read_text()
    assert "Failed" in index and "query &#34;kpis&#34;: Binder Error" in index
    assert 'href="sales/2026-11-28.html"' in index  # the earlier report is still listed
    assert "The last run failed" in (folder / "index.html").read_text()


def test_failed_first_run_creates_no_report_folder(project):
    pipeline = make(project, data="d,x\n1,2\n")
    assert not run(project, pipeline).ok
    assert not (project.reports / "sales").exists()
    assert "Failed" in (project.reports / "index.html").read_text()


def snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_failure_writing_the_manifest_leaves_the_previous_one_intact(project, monkeypatch):
    pipeline = make(project, 'exports = ["csv"]\n')
    assert run(project, pipeline).ok
    folder = project.reports / "sales"
    before = snapshot(folder)
    real = atomic_module.write_all
    calls = {"n": 0}

    def failing(handle, data):
        calls["n"] += 1
        if calls["n"] == 5:  # after 2 exports and 2 reports: the manifest
            handle.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        real(handle, data)

    monkeypatch.setattr(atomic_module, "write_all", failing)
    result = run(project, pipeline)
    assert not result.ok and "No space left on device" in result.error
    after = snapshot(folder)
    # The reports, exports and manifest are the previous ones, whole; only the
    # pipeline's page changed, to show the failure.
    assert {p: b for p, b in after.items() if p.name != "index.html"} == {
        p: b for p, b in before.items() if p.name != "index.html"
    }
    assert "The last run failed" in (folder / "index.html").read_text()
    assert not [p for p in folder.rglob(".*")]  # no staging or temp files left


def test_a_failure_writing_the_site_keeps_the_previous_pages(project, monkeypatch):
    pipeline = make(project)
    assert run(project, pipeline).ok
    index = project.reports / "index.html"
    page = project.reports / "sales" / "index.html"
    before = (index.read_bytes(), page.read_bytes())
    from eil_pipelines.outputs import site as site_module

    real_write, real_atomic = atomic_module.write_all, site_module.atomic_write_bytes
    writing_page = {"now": False}

    def page_write(path, data, **kwargs):
        writing_page["now"] = path.name == "index.html"
        try:
            return real_atomic(path, data, **kwargs)
        finally:
            writing_page["now"] = False

    def failing(handle, data):
        if writing_page["now"]:  # half a site page, then the disk "fails"
            handle.write(data[:100])
            raise OSError(28, "No space left on device")
        real_write(handle, data)

    monkeypatch.setattr(site_module, "atomic_write_bytes", page_write)
    monkeypatch.setattr(atomic_module, "write_all", failing)
    # A new report whose site update fails: the report stands, the pages are the old ones, whole.
    result = run(project, pipeline, AT + timedelta(days=1))
    assert result.ok, result.error
    assert (project.reports / "sales" / "2026-11-29.md").exists()
    assert (index.read_bytes(), page.read_bytes()) == before
    assert not [p for p in project.reports.rglob(".index.html.*")]
    monkeypatch.setattr(atomic_module, "write_all", real_write)
    run(project, pipeline, AT + timedelta(days=1))  # the next run catches the site up
    assert 'href="sales/2026-11-29.html"' in index.read_text()


def test_pdf_format(project):
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError) as exc:
        if os.environ.get("CI"):
            raise AssertionError(f"CI must install the pdf extra and Pango: {exc}") from exc
        pytest.skip(f"WeasyPrint is not installed here ({exc}): pip install 'eil-pipelines[pdf]'")
    text = PIPELINE.replace(
        "[report]",
        '[[charts]]\nname = "by_day"\nquery = "rows"\n'
        'type = "bar"\nx = "region"\ny = "v"\n[report]',
    )
    project.write("data/s.csv", ROWS)
    pipeline = load_pipeline(
        project.pipeline("sales", text + 'formats = ["pdf"]\n'), root=project.root
    )
    result = run(project, pipeline)
    assert result.ok, result.error
    pdf = result.documents["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert (project.reports / "sales" / "latest.pdf").read_bytes() == pdf
    # Only the PDF: the HTML it was made from is not written.
    assert set(result.documents) == {"pdf"}
    assert not (project.reports / "sales" / "2026-11-28.html").exists()
    assert result.stages.pdf > 0
    # The chart (inline SVG in the HTML) is drawn in the PDF as vector paths.
    assert line_segments(pdf) > 50
    again = run(project, pipeline)
    assert again.documents["pdf"].read_bytes() == pdf  # deterministic bytes


def test_missing_pdf_extra_fails_the_run_with_the_install_hint(project, monkeypatch):
    from eil_pipelines.render import pdf as pdf_module

    monkeypatch.setattr(
        pdf_module,
        "pdf_unavailable_reason",
        lambda: "needs WeasyPrint: pip install 'eil-pipelines[pdf]'",
    )
    pipeline = make(project, 'formats = ["md", "pdf"]\n')
    result = run(project, pipeline)
    assert not result.ok
    assert result.error == (
        'pipeline "sales": the "pdf" format needs WeasyPrint: pip install \'eil-pipelines[pdf]\''
    )
    assert result.stages.query == 0  # known before any query runs
    assert not (project.reports / "sales").exists()


def test_unloadable_weasyprint_names_the_system_library(monkeypatch):
    import sys

    from eil_pipelines.render import pdf as pdf_module

    class BrokenPango:
        """Import weasyprint as if Pango were missing: WeasyPrint raises OSError then."""

        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "weasyprint":
                raise OSError("cannot load library 'libpango-1.0-0'")
            return None

    monkeypatch.delitem(sys.modules, "weasyprint", raising=False)
    monkeypatch.setattr(sys, "meta_path", [BrokenPango, *sys.meta_path])
    pdf_module.pdf_unavailable_reason.cache_clear()
    try:
        reason = pdf_module.pdf_unavailable_reason()
    finally:
        pdf_module.pdf_unavailable_reason.cache_clear()
    assert reason.startswith("needs WeasyPrint, which is installed but cannot load its system")
    assert "libpango-1.0-0" in reason and "apt-get install libpango-1.0-0" in reason


def test_xlsx_of_awkward_values(project):
    import pandas as pd

    sql = (
        "SELECT TIMESTAMPTZ '2026-11-27 10:00:00+00' AS t, [1, 2] AS l, "
        "{'a': 1} AS s, NULL::DOUBLE AS n, 'x' || chr(1) AS c, INTERVAL 1 HOUR AS i, "
        "DATE '2026-11-27' AS d, 1.5::DECIMAL(10,2) AS m"
    )
    text = PIPELINE.replace("SELECT d, region, v FROM 'data/s.csv' ORDER BY v", sql)
    project.write("data/s.csv", ROWS)
    path = project.pipeline("odd", text + 'exports = ["xlsx", "parquet", "csv"]\n')
    pipeline = load_pipeline(path, root=project.root)
    result = run(project, pipeline)
    assert result.ok, result.error
    df = pd.read_excel(project.reports / "odd" / "2026-11-28_data" / "rows.xlsx")
    assert str(df.loc[0, "t"]) == "2026-11-27 11:00:00"  # Berlin local time
    assert df.loc[0, "c"] == "x" and pd.isna(df.loc[0, "n"])
    assert json.loads(df.loc[0, "l"]) == [1, 2]
    assert len(pd.read_parquet(io.BytesIO(result.exports[1].read_bytes()))) == 1


CHART = '[[charts]]\nname = "by_region"\nquery = "rows"\ntype = "bar"\nx = "region"\ny = "v"\n'


def test_each_chart_is_encoded_only_in_the_formats_the_report_needs(project, monkeypatch):
    """SVG for HTML (and PDF), PNG only for Markdown (and email); the reports are
    the same bytes whichever other formats were asked for."""
    from eil_pipelines.charts import work

    encoded: list[str] = []
    real = work.render_chart

    def counting(figure, fmt, **kwargs):
        encoded.append(fmt)
        return real(figure, fmt, **kwargs)

    monkeypatch.setattr(work, "render_chart", counting)
    documents = {}
    for formats, expected in [
        (["html"], ["svg"]),
        (["md"], ["png"]),
        (["md", "html"], ["svg", "png"]),
    ]:
        encoded.clear()
        pipeline = make(project, f"formats = {formats!r}\n" + CHART)
        reports = project.root / ("r-" + "-".join(formats))
        result = run_pipeline(pipeline, make_context(pipeline, AT), reports)
        assert result.ok, result.error
        assert encoded == expected, formats
        charts = reports / "sales" / "2026-11-28_charts"
        assert (charts / "by_region.png").exists() == ("md" in formats)
        documents[tuple(formats)] = {
            fmt: path.read_bytes() for fmt, path in result.documents.items()
        }
    both = documents[("md", "html")]
    assert documents[("html",)]["html"] == both["html"]
    assert documents[("md",)]["md"] == both["md"]
    assert b"<svg" in both["html"] and b"by_region.png" in both["md"]


def test_a_once_run_without_at_stands_for_the_whole_second(project):
    """``--once`` without ``--at`` runs "now": whole seconds, as "run now", so the
    time reads as people expect and is a valid HTML datetime on the status page."""
    from datetime import UTC

    from eil_pipelines.app.once import once

    pipeline = make(project)
    outcome = once(
        [pipeline],
        reports_dir=project.reports,
        clock=lambda: datetime(2026, 12, 7, 6, 49, 50, 644987, tzinfo=UTC),
    )
    assert outcome.ok
    manifest = json.loads((project.reports / "sales" / "2026-12-07.json").read_text())
    assert manifest["scheduled_at"] == "2026-12-07T07:49:50+01:00"
    status = json.loads((project.reports / ".eil" / "status" / "sales.json").read_text())
    assert status["scheduled_at"] == "2026-12-07T07:49:50+01:00"
