"""The incremental report site: the index a run updates by the stamps it touched gives the
same pages as a full rebuild, pages are stable as reports come and go, a damaged or
foreign index is rebuilt, and two processes updating at once lose nothing."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eil_pipelines.outputs import site_index
from eil_pipelines.outputs.site import build_site, update_site
from eil_pipelines.outputs.site_index import PipelineIndex, index_dir

HERE = Path(__file__).parent


def put(reports: Path, name: str, stamp: str, *, revenue: int = 1, data: bool = False) -> None:
    """A report as a run leaves it (documents, manifest, maybe an export), written cheaply."""
    folder = reports / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stamp}.md").write_text(f"# {stamp}\n")
    (folder / f"{stamp}.html").write_text(f"<p>{stamp}</p>")
    if data:
        (folder / f"{stamp}_data").mkdir(exist_ok=True)
        (folder / f"{stamp}_data" / "orders.csv").write_text("a\n1\n")
    manifest = {
        "manifest_version": 1,
        "pipeline": name,
        "title": name.title(),
        "schedule": "every day at 07:00 UTC",
        "timezone": "UTC",
        "scheduled_at": f"{stamp[:10]}T07:00:00+00:00",
        "stamp": stamp,
        "status": "succeeded",
        "metrics": [{"label": "Revenue", "text": f"${revenue}", "direction": ""}],
    }
    # Atomically, as a run writes it: a new file, not the old one rewritten in place.
    tmp = folder / f".{stamp}.json.tmp"
    tmp.write_text(json.dumps(manifest))
    os.replace(tmp, folder / f"{stamp}.json")


def drop(reports: Path, name: str, stamp: str) -> None:
    """Delete a report as retention does."""
    folder = reports / name
    for path in folder.glob(f"{stamp}.*"):
        path.unlink()
    shutil.rmtree(folder / f"{stamp}_data", ignore_errors=True)


def stamp_of(i: int) -> str:
    return f"{2000 + i // 336:04d}-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}"


def pages(reports: Path) -> dict[str, bytes]:
    """Every site page, by path."""
    found = {"index.html": (reports / "index.html").read_bytes()}
    for path in reports.glob("*/*.html"):
        if path.name == "index.html" or path.name.startswith("page-"):
            found[str(path.relative_to(reports))] = path.read_bytes()
    return found


def rows(found: dict[str, bytes]) -> dict[str, list[bytes]]:
    """Every history row of each pipeline's pages, in no particular page order."""
    out: dict[str, list[bytes]] = {}
    for path, html in found.items():
        if "/" in path:
            row = re.findall(rb'<tr><th scope="row">.*?</tr>', html)
            out.setdefault(path.split("/")[0], []).extend(row)
    return {name: sorted(found_rows) for name, found_rows in out.items()}


def assert_same_as_full_rebuild(reports: Path, tmp: Path) -> None:
    """The pages equal those of a full rebuild: byte for byte when the rebuild keeps the
    numbering of the index, and row for row when it starts from nothing."""
    incremental = pages(reports)
    assert build_site(reports) == []  # a full scan finds nothing to rewrite
    assert pages(reports) == incremental
    copy = tmp / "fresh"
    shutil.copytree(reports, copy, ignore=shutil.ignore_patterns(".eil", "index.html", "page-*"))
    status = reports / ".eil" / "status"
    if status.is_dir():
        shutil.copytree(status, copy / ".eil" / "status")
    build_site(copy)
    fresh = pages(copy)
    assert fresh["index.html"] == incremental["index.html"]
    assert rows(fresh) == rows(incremental)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks (so archive pages) of 3 reports: many pages from a few reports."""
    monkeypatch.setattr(site_index, "CHUNK", 3)


@pytest.mark.parametrize("seed", range(6))
def test_incremental_updates_equal_a_full_rebuild(tmp_path, small_chunks, seed):
    rng = random.Random(seed)
    reports = tmp_path / "reports"
    present: set[int] = set()
    for step in range(60):
        name = rng.choice(["alpha", "beta"])
        mine = sorted(i for i in present if i % 2 == (name == "beta"))
        roll = rng.random()
        if roll < 0.45 or not mine:  # the newest report
            i = (max(mine) + 2) if mine else (1 if name == "beta" else 0)
        elif roll < 0.6:  # a backfill somewhere in the past (else the newest)
            parity = int(name == "beta")
            gaps = [j for j in range(parity, max(mine), 2) if j not in present]
            i = rng.choice(gaps) if gaps else max(mine) + 2
        elif roll < 0.7:  # a re-run of an existing report, new figures
            i = rng.choice(mine)
        else:  # retention (the oldest), or a report deleted by hand
            i = mine[0] if roll < 0.85 else rng.choice(mine)
            drop(reports, name, stamp_of(i))
            present.discard(i)
            update_site(reports, touched={name: {stamp_of(i)}})
            continue
        put(reports, name, stamp_of(i), revenue=step, data=rng.random() < 0.3)
        present.add(i)
        update_site(reports, touched={name: {stamp_of(i)}})
    assert_same_as_full_rebuild(reports, tmp_path)
    for name in ("alpha", "beta"):
        index = PipelineIndex.load(reports, name)
        expected = sorted(stamp_of(i) for i in present if i % 2 == (name == "beta"))
        assert [e["s"] for e in index.all_entries()] == expected


def links(page: Path) -> list[str]:
    return re.findall(r'href="([^"]+)"', page.read_text())


def test_pipeline_pages_are_paginated_with_links_both_ways(tmp_path, small_chunks):
    for i in range(10):
        put(tmp_path, "alpha", stamp_of(i))
    build_site(tmp_path)
    folder = tmp_path / "alpha"
    # Ordinals 0..9 in chunks of 3: the newest two chunks (4 reports) on index.html.
    assert sorted(p.name for p in folder.glob("page-*.html")) == ["page-1.html", "page-2.html"]
    head = (folder / "index.html").read_text()
    assert head.count('<th scope="row">') == 4
    assert "The newest 4 reports of this pipeline" in head
    assert "page-2.html" in links(folder / "index.html")
    page2, page1 = (folder / "page-2.html"), (folder / "page-1.html")
    assert page2.read_text().count('<th scope="row">') == 3
    assert "index.html" in links(page2) and "page-1.html" in links(page2)
    assert "page-2.html" in links(page1) and "page-0.html" not in page1.read_text()
    assert f'href="{stamp_of(0)}.html"' in page1.read_text()
    for page in (folder / "index.html", page1, page2):
        for link in links(page):
            assert (page.parent / link).resolve().is_file(), (page.name, link)
    index = (tmp_path / "index.html").read_text()
    assert "1 pipeline · 10 reports" in index and "<dd>10</dd>" in index


def test_the_index_lists_the_newest_hundred_and_points_to_the_pages(tmp_path):
    for i in range(205):
        put(tmp_path, "alpha", stamp_of(i))
    build_site(tmp_path)
    index = (tmp_path / "index.html").read_text()
    assert "195 older reports" in index
    assert "The 105 older ones are on" in index
    assert index.count('<li><a href="alpha/') == 100
    head = (tmp_path / "alpha" / "index.html").read_text()
    assert head.count('<th scope="row">') == 105  # chunks of 100: 100 + 5 on the first page
    assert (tmp_path / "alpha" / "page-1.html").read_text().count('<th scope="row">') == 100


def test_a_new_report_rewrites_no_archive_page_and_retention_keeps_their_names(
    tmp_path, small_chunks
):
    for i in range(12):
        put(tmp_path, "alpha", stamp_of(i))
    build_site(tmp_path)
    folder = tmp_path / "alpha"

    def inodes() -> dict[str, int]:
        return {p.name: p.stat().st_ino for p in folder.glob("page-*.html")}

    before = inodes()
    assert sorted(before) == ["page-1.html", "page-2.html"]
    put(tmp_path, "alpha", stamp_of(12))  # chunk 4 starts: chunk 2 (page-3) leaves the head
    update_site(tmp_path, touched={"alpha": {stamp_of(12)}})
    after = inodes()
    assert after["page-1.html"] == before["page-1.html"]
    assert "page-3.html" in after
    put(tmp_path, "alpha", stamp_of(13))
    update_site(tmp_path, touched={"alpha": {stamp_of(13)}})
    assert inodes() == after  # the newest chunk grew: only index.html changed
    drop(tmp_path, "alpha", stamp_of(0))  # retention: the oldest goes, numbers stay
    update_site(tmp_path, touched={"alpha": {stamp_of(0)}})
    kept = inodes()
    assert kept["page-2.html"] == after["page-2.html"]
    assert kept["page-3.html"] == after["page-3.html"]
    for stamp in (stamp_of(1), stamp_of(2)):
        drop(tmp_path, "alpha", stamp)
        update_site(tmp_path, touched={"alpha": {stamp}})
    assert "page-1.html" not in inodes()  # its chunk is empty: its page is gone
    assert "page-1.html" not in (folder / "page-2.html").read_text()
    assert_same_as_full_rebuild(tmp_path, tmp_path / "x")


@pytest.mark.parametrize(
    "damage",
    ["garbage", "empty", "other_pipeline", "old_format", "chunk_edited", "chunk_gone", "recreated"],
)
def test_a_damaged_or_foreign_index_is_rebuilt_not_trusted(tmp_path, small_chunks, damage):
    for i in range(8):
        put(tmp_path, "alpha", stamp_of(i))
        put(tmp_path, "beta", stamp_of(i))
    build_site(tmp_path)
    where = index_dir(tmp_path, "alpha")
    head = where / "head.json"
    if damage == "garbage":
        head.write_bytes(b"\x00\xffnot json")
    elif damage == "empty":
        head.write_bytes(b"")
    elif damage == "other_pipeline":
        shutil.copy(index_dir(tmp_path, "beta") / "head.json", head)
    elif damage == "old_format":
        data = json.loads(head.read_text())
        head.write_text(json.dumps({**data, "format": 0}))
    elif damage == "chunk_edited":
        chunk = where / "chunk-0.json"
        data = json.loads(chunk.read_text())
        data["entries"] = data["entries"][:1]  # says fewer reports than there are
        chunk.write_text(json.dumps(data))
    elif damage == "chunk_gone":
        (where / "chunk-2.json").unlink()
    elif damage == "recreated":  # the folder was deleted and made again: the index is stale
        shutil.rmtree(tmp_path / "alpha")
        for i in range(3):
            put(tmp_path, "alpha", stamp_of(100 + i))
    put(tmp_path, "alpha", stamp_of(200))
    update_site(tmp_path, touched={"alpha": {stamp_of(200)}})
    assert_same_as_full_rebuild(tmp_path, tmp_path / "x")
    expected = 4 if damage == "recreated" else 9
    assert f"2 pipelines · {expected + 8} reports" in (tmp_path / "index.html").read_text()


def test_a_folder_without_an_index_is_scanned_once(tmp_path):
    for i in range(3):
        put(tmp_path, "alpha", stamp_of(i))
    put(tmp_path, "alpha", stamp_of(3))
    update_site(tmp_path, touched={"alpha": {stamp_of(3)}})  # reports from before the index
    assert "1 pipeline · 4 reports" in (tmp_path / "index.html").read_text()
    assert (index_dir(tmp_path, "alpha") / "head.json").is_file()


WRITER = """
import sys
from pathlib import Path
sys.path.insert(0, {here!r})
from test_site_incremental import put, stamp_of, drop
from eil_pipelines.outputs.site import update_site
root, name, parity = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(parity, 40, 2):
    put(root, name, stamp_of(i))
    update_site(root, touched={{name: {{stamp_of(i)}}}})
    if i >= 20:  # retention by both writers, of the same oldest reports
        old = stamp_of(i - 20)
        drop(root, name, old)
        update_site(root, touched={{name: {{old}}}})
"""


def test_two_processes_updating_one_pipeline_lose_nothing(tmp_path):
    code = WRITER.format(here=str(HERE))
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), "alpha", str(parity)])
        for parity in (0, 1)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    on_disk = sorted(p.stem for p in (tmp_path / "alpha").glob("*.json"))
    assert len(on_disk) == 20
    index = PipelineIndex.load(tmp_path, "alpha")
    assert [e["s"] for e in index.all_entries()] == on_disk
    assert_same_as_full_rebuild(tmp_path, tmp_path / "x")
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_unreadable_index_folder_does_not_fail_the_update(tmp_path):
    put(tmp_path, "alpha", stamp_of(0))
    (tmp_path / ".eil").mkdir()
    (tmp_path / ".eil" / "site").write_text("a file where the index folder goes")
    with pytest.raises(OSError):
        update_site(tmp_path, touched={"alpha": {stamp_of(0)}})
    os.unlink(tmp_path / ".eil" / "site")
    update_site(tmp_path, touched={"alpha": {stamp_of(0)}})  # the pending request is kept
    assert "1 pipeline · 1 report" in (tmp_path / "index.html").read_text()


def test_an_update_reuses_untouched_pipelines_yet_sees_every_change_on_disk(tmp_path):
    # The state of a pipeline no run touched is reused while its index head, status
    # record and folder are unchanged; a change by anyone else (another process, a hand)
    # shows at the next update all the same.
    from eil_pipelines.outputs import site

    reports = tmp_path / "reports"
    for name in ("alpha", "beta", "gamma"):
        put(reports, name, "2026-03-01", revenue=1)
    build_site(reports)
    before = (reports / "index.html").read_text()
    assert {name for (_, name) in site._KNOWN if _ == reports} >= {"alpha", "beta", "gamma"}

    # Another process writes a report of beta and updates the site for it: this
    # process's next update, for alpha only, shows beta's report too.
    put(reports, "beta", "2026-03-02", revenue=222)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from eil_pipelines.outputs.site import "
            "update_site; update_site(Path(sys.argv[1]), touched={'beta': {'2026-03-02'}})",
            str(reports),
        ],
        check=True,
    )
    put(reports, "alpha", "2026-03-02", revenue=111)
    update_site(reports, touched={"alpha": {"2026-03-02"}})
    index = (reports / "index.html").read_text()
    assert index != before
    assert "$222" in index and "$111" in index
    assert_same_as_full_rebuild(reports, tmp_path)

    # A report of gamma deleted by hand (no run, no index change) is noticed.
    drop(reports, "gamma", "2026-03-01")
    update_site(reports, touched={"alpha": {"2026-03-02"}})
    index = (reports / "index.html").read_bytes()
    assert b"gamma/2026-03-01.html" not in index
    assert b"alpha/2026-03-02.html" in index
    build_site(reports)
    assert (reports / "index.html").read_bytes() == index


def test_a_trusted_update_stats_only_the_folders_of_untouched_pipelines(tmp_path, monkeypatch):
    # While the generation file is as this process left it (no other process updated
    # the site), an update looks at each untouched pipeline's folder alone; once
    # another update marks the file, every file of every pipeline is looked at again.
    from eil_pipelines.outputs import site

    reports = tmp_path / "reports"
    names = [f"p{i}" for i in range(6)]
    for name in names:
        put(reports, name, "2026-03-01")
    build_site(reports)
    put(reports, "p0", "2026-03-02")
    update_site(reports, touched={"p0": {"2026-03-02"}})  # this process's own update

    looked: list[str] = []
    real = site._file_key

    def counting(path: str):
        looked.append(path)
        return real(path)

    monkeypatch.setattr(site, "_file_key", counting)
    put(reports, "p0", "2026-03-03")
    update_site(reports, touched={"p0": {"2026-03-03"}})
    untouched = {str(reports / name) for name in names[1:]}
    status_files = {str(site.status_path(reports, name)) for name in names[1:]}
    assert untouched <= set(looked)
    assert not status_files & set(looked)

    # Another process's update: the generation file is new, so all is looked at.
    (reports / ".eil" / "site.generation").unlink()
    (reports / ".eil" / "site.generation").write_text("another process")
    looked.clear()
    put(reports, "p0", "2026-03-04")
    update_site(reports, touched={"p0": {"2026-03-04"}})
    assert status_files <= set(looked)
    assert_same_as_full_rebuild(reports, tmp_path)


def test_a_new_pipeline_folder_shows_although_the_names_are_cached(tmp_path):
    reports = tmp_path / "reports"
    put(reports, "alpha", "2026-03-01")
    build_site(reports)
    put(reports, "beta", "2026-03-01")  # a new folder: the reports folder changed
    update_site(reports, touched={"alpha": {"2026-03-01"}})
    index = (reports / "index.html").read_text()
    assert "beta/2026-03-01.html" in index
    assert "alpha/2026-03-01.html" in index
