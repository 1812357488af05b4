"""The Markdown reports pass markdownlint-cli2 with the committed configuration.

One ``markdownlint-cli2`` run (the npm package, pinned in package-lock.json)
lints every example report with ``.markdownlint-cli2.jsonc``; each report is
then its own test.  A file with known problems goes into the same run,
proving the linter ran with that configuration.  The reports' links, charts
included, are relative and lead to files that exist.  Tools are installed by
``bash scripts/setup-test-env.sh``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import toolchain

CONFIG = toolchain.REPO / ".markdownlint-cli2.jsonc"

# Inline HTML other than details/summary (MD033), a table whose delimiter row
# breaks the compact style (MD060), no blank line before a list (MD032).
CANARY = """# Canary

<div>raw HTML the reports never write</div>

| a | b |
|---|---|
| 1 | 2 |

Text right before a list:
- item
"""
CANARY_RULES = {"MD033", "MD060", "MD032"}

# "path:line[:column] [error] MD000/name description [detail]"
ISSUE = re.compile(r"^(?P<path>.+?):(?P<line>\d+)(?::\d+)?\s+(?:error\s+)?(?P<rule>MD\d{3})/\S+")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


@pytest.fixture(scope="module")
def reports() -> Path:
    return toolchain.example_reports()


def markdown_reports(reports: Path) -> list[Path]:
    return [reports / name / f"{stamp}.md" for name, stamp in toolchain.EXAMPLES.items()]


@pytest.fixture(scope="module")
def lint(reports, tmp_path_factory) -> dict[str, list[str]]:
    """Each linted file (``<pipeline>/<stamp>.md`` or ``<canary>``) and its issues."""
    node = toolchain.node()
    cli = toolchain.markdownlint_cli2()
    canary = tmp_path_factory.mktemp("markdownlint") / "canary.md"
    canary.write_text(CANARY, encoding="utf-8")
    files = markdown_reports(reports)
    for f in files:
        if not f.is_file():
            pytest.fail(f"{f} was not written by eil-run --once", pytrace=False)
    result = subprocess.run(
        [node, str(cli), "--config", str(CONFIG), *map(str, [*files, canary])],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=toolchain.REPO,
    )
    output = result.stdout + result.stderr
    if result.returncode not in (0, 1) or f"Linting: {len(files) + 1} files" not in output:
        pytest.fail(
            f"markdownlint-cli2 did not lint the {len(files) + 1} files "
            f"(exit {result.returncode}):\n{output}",
            pytrace=False,
        )
    keys = {f.resolve(): f"{f.parent.name}/{f.name}" for f in files}
    keys[canary.resolve()] = "<canary>"
    found: dict[str, list[str]] = {key: [] for key in keys.values()}
    for line in result.stderr.splitlines():
        m = ISSUE.match(line.strip())
        assert m is not None, f"an unexpected line from markdownlint-cli2: {line}"
        path = (toolchain.REPO / m["path"]).resolve()
        assert path in keys, f"markdownlint-cli2 reported a file it was not given: {line}"
        found[keys[path]].append(line.strip())
    return found


def test_the_configuration_is_enforced(lint):
    rules = {ISSUE.match(line)["rule"] for line in lint["<canary>"]}
    assert rules >= CANARY_RULES, lint["<canary>"]


@pytest.mark.parametrize(("name", "stamp"), toolchain.EXAMPLES.items())
def test_report_passes_markdownlint(lint, name, stamp):
    issues = lint[f"{name}/{stamp}.md"]
    assert issues == [], "\n".join(issues)


@pytest.mark.parametrize(("name", "stamp"), toolchain.EXAMPLES.items())
def test_links_are_relative_and_lead_to_files(reports, name, stamp):
    md = reports / name / f"{stamp}.md"
    links = LINK.findall(md.read_text(encoding="utf-8"))
    images = [link for link in links if link.endswith(".png")]
    assert len(images) == toolchain.chart_count(name), links
    for link in links:
        parsed = urlparse(link)
        assert not parsed.scheme and not parsed.netloc, f"{link} is not a relative link"
        assert not link.startswith("/"), f"{link} is absolute"
        target = (md.parent / unquote(parsed.path)).resolve()
        assert target.is_file(), f"{link} in {md.name} leads to no file"
        assert target.is_relative_to(reports.resolve()), f"{link} leads out of the reports folder"
    for link in images:
        assert link.startswith(f"{stamp}_charts/"), link
        assert (md.parent / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", link
