"""Issue 14, item 6: the docs are published as a site; ``mkdocs build --strict`` fails
on a broken link or anchor, or a page left out of the navigation."""

from __future__ import annotations

import shutil

import yaml
from deploykit import BIN, REPO, need, run


def test_mkdocs_builds_the_site_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs") or (BIN / "mkdocs" if (BIN / "mkdocs").is_file() else None)
    need("mkdocs", mkdocs, "pip install -e '.[test]' (or '.[docs]')")
    result = run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")], REPO)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "deploy" / "index.html").is_file()


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(nav):
        for item in nav:
            for value in item.values():
                yield from pages(value) if isinstance(value, list) else [value]

    listed = sorted(pages(config["nav"]))
    assert listed == sorted(p.name for p in (REPO / "docs").glob("*.md"))
