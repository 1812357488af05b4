"""The HTML reports and the report site pass the W3C Nu HTML checker with no errors.

One ``vnu.jar`` run (from the npm package vnu-jar, on the machine's Java)
checks every file; each file is then its own test.  A page known to be
invalid goes into the same run, proving the checker ran and its output is
read.  Tools are installed by ``bash scripts/setup-test-env.sh``.
"""

from __future__ import annotations

import json
import subprocess
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import toolchain

from eil_pipelines.outputs.site import build_site

INVALID = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>x</title></head>
<body><p><div>block in a paragraph</div></p><img src="x.png"></body></html>
"""


@pytest.fixture(scope="module")
def reports() -> Path:
    return toolchain.example_reports()


#: The pages of a site whose pipeline has archive pages (more than 200 reports).
PAGINATED = ("index.html", "long/index.html", "long/page-1.html")


@pytest.fixture(scope="module")
def paginated(tmp_path_factory) -> Path:
    """A reports folder with 250 reports of one pipeline, and its site."""
    root = tmp_path_factory.mktemp("paginated")
    folder = root / "long"
    folder.mkdir()
    for i in range(250):
        stamp = (date(2026, 1, 1) + timedelta(days=i)).isoformat()
        (folder / f"{stamp}.html").write_text("<p>report</p>")
        manifest = {"manifest_version": 1, "title": "Long <history>", "stamp": stamp}
        manifest["metrics"] = [{"label": "Revenue", "text": "$1", "direction": ""}]
        (folder / f"{stamp}.json").write_text(json.dumps(manifest))
    build_site(root)
    return root


@pytest.fixture(scope="module")
def vnu(reports, paginated, tmp_path_factory) -> dict[Path, list[dict]]:
    """Every checked file and the error messages the checker gave for it."""
    java = toolchain.java()
    jar = toolchain.vnu_jar()
    canary = tmp_path_factory.mktemp("vnu") / "invalid.html"
    canary.write_text(INVALID, encoding="utf-8")
    files = [
        p for p in toolchain.report_html(reports) + toolchain.site_pages(reports) if p.exists()
    ]
    files += [paginated / page for page in PAGINATED]
    files.append(canary)
    result = subprocess.run(
        [java, "-jar", str(jar), "--errors-only", "--format", "json", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # vnu writes its JSON to stderr and exits 1 when it found errors.
    try:
        messages = json.loads(result.stderr)["messages"]
    except (ValueError, KeyError) as err:
        pytest.fail(
            f"could not read vnu.jar's output ({err}); exit {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr[:4000]}",
            pytrace=False,
        )
    found: dict[Path, list[dict]] = {Path(p).resolve(): [] for p in files}
    for m in messages:
        url = m.get("url")
        if url is None:  # a message about the run, not a file: an error in itself
            pytest.fail(f"vnu.jar: {m.get('type')}: {m.get('message')}", pytrace=False)
        found.setdefault(Path(unquote(urlparse(url).path)).resolve(), []).append(m)
    found[Path("<canary>")] = found.pop(canary.resolve())
    return found


def describe(messages: list[dict]) -> str:
    return "\n".join(
        f"  line {m.get('lastLine', '?')}:{m.get('firstColumn', m.get('lastColumn', '?'))}: "
        f"{m.get('type')}: {m.get('message')}\n    {m.get('extract', '').strip()[:160]}"
        for m in messages
    )


def test_the_checker_runs_and_reports_errors(vnu):
    errors = [m["message"] for m in vnu[Path("<canary>")]]
    assert any("No “p” element in scope" in m for m in errors), errors
    assert any("“img” element must have an “alt” attribute" in m for m in errors), errors


@pytest.mark.parametrize(("name", "stamp"), [*toolchain.EXAMPLES.items(), toolchain.EARLIER[::2]])
def test_report_has_no_html_errors(reports, vnu, name, stamp):
    path = (reports / name / f"{stamp}.html").resolve()
    assert path in vnu, f"{path} was not written"
    assert vnu[path] == [], f"{path.relative_to(reports.resolve())}:\n{describe(vnu[path])}"


@pytest.mark.parametrize("page", ["index.html", *(f"{n}/index.html" for n in toolchain.EXAMPLES)])
def test_site_page_has_no_html_errors(reports, vnu, page):
    path = (reports / page).resolve()
    assert path.exists(), (
        f"{page} was not written by eil-run --once: the report site "
        "(reports/index.html and reports/<pipeline>/index.html) is missing"
    )
    assert vnu[path] == [], f"{page}:\n{describe(vnu[path])}"


@pytest.mark.parametrize("page", PAGINATED)
def test_paginated_site_page_has_no_html_errors(paginated, vnu, page):
    path = (paginated / page).resolve()
    assert path in vnu, f"{page} was not written"
    assert vnu[path] == [], f"{page}:\n{describe(vnu[path])}"
