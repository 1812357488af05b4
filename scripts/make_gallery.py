"""Screenshots of every example report for docs/gallery.md, so the gallery stays current.

Run from the repository root after a change to the templates, the style sheet
or the examples::

    python scripts/make_gallery.py            # writes docs/gallery/*.png and docs/gallery.md

It runs each example with ``eil-run --once --at 2026-11-23T09:00`` into a
temporary reports folder, opens each HTML report in headless Chromium (Debian's
``/usr/bin/chromium`` or ``EIL_CHROMIUM``, driven by Playwright) at 1280 and
375 px, and saves the top of the page (1280 × 1600 and 375 × 1400 CSS px) at
device scale 1.  Nothing is fetched from the network: the reports are
self-contained files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "gallery"
AT = "2026-11-23T09:00"
SHOTS = ((1280, 1600), (375, 1400))


def main() -> int:
    """Run the examples, take the screenshots, write the gallery page."""
    chromium = os.environ.get("EIL_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        print("make_gallery: no chromium (install Debian's chromium or set EIL_CHROMIUM)")
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="eil-gallery-") as tmp:
        reports = Path(tmp) / "reports"
        subprocess.run(
            [sys.executable, "-m", "eil_pipelines", "--once", str(REPO / "pipelines"),
             "--at", AT, "--reports", str(reports)],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        entries = []
        for path in sorted((REPO / "pipelines").glob("*.toml")):
            spec = tomllib.loads(path.read_text(encoding="utf-8"))
            name = spec.get("name", path.stem)
            html = sorted((reports / name).glob("2026-*.html"))
            if html:
                entries.append((name, spec["title"], spec.get("description", ""), html[-1]))
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                for name, _title, _about, html in entries:
                    for width, height in SHOTS:
                        page = browser.new_page(viewport={"width": width, "height": height})
                        page.goto(html.as_uri(), wait_until="load")
                        page.screenshot(path=str(OUT / f"{name}-{width}.png"))
                        page.close()
            finally:
                browser.close()
    lines = [
        "# Gallery",
        "",
        "The shipped examples as a reader sees them, at 1280 px and on a phone (375 px).",
        "The pictures are made by `python scripts/make_gallery.py`; run it after changing",
        "a template, the style sheet or an example, so they stay current.",
        "",
    ]
    for name, title, about, _html in entries:
        lines += [f"## {title}", ""]
        if about:
            lines += [about, ""]
        lines += [
            f"Pipeline file: `pipelines/{name}.toml`.",
            "",
            f"![{title}, at 1280 px](gallery/{name}-1280.png)",
            "",
            f"![{title}, on a phone at 375 px](gallery/{name}-375.png)",
            "",
        ]
    (REPO / "docs" / "gallery.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"make_gallery: {len(entries)} examples, {len(entries) * len(SHOTS)} screenshots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
