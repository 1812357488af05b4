"""docs/workflow.md stays true: each ``$ eil-run …`` command on it runs, in order, in a new project.

The scheduler (``eil-run pipelines/``) is left out: it runs until stopped.
Output shown under a command in the page must appear in what it prints.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from eil_pipelines.cli import main

DOC = Path(__file__).resolve().parent.parent / "docs" / "workflow.md"


def commands() -> list[tuple[list[str], list[str]]]:
    """(arguments after ``eil-run``, output lines shown) for each command on the page."""
    found: list[tuple[list[str], list[str]]] = []
    text = DOC.read_text(encoding="utf-8")
    # Fences are paired by line, so a block with a language (```sh, ```yaml: shown,
    # not run) never swallows the prose after it.
    for lang, block in re.findall(r"^```([^\n]*)\n(.*?)^```", text, flags=re.S | re.M):
        if lang.strip():
            continue
        for line in block.splitlines():
            if line.startswith("$ eil-run "):
                found.append((shlex.split(line)[2:], []))
            elif found and line.strip() and not line.startswith("$"):
                found[-1][1].append(line)
    return found


def test_the_page_shows_the_whole_path():
    names = [args[0] for args, _ in commands()]
    assert names[:4] == ["new", "schema", "validate", "--once"]
    assert {"explain", "backfill", "history"} <= set(names)
    assert ["pipelines/"] in [args for args, _ in commands()]  # the scheduler, last


def test_every_command_on_the_page_runs(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    ran = 0
    for args, shown in commands():
        if args == ["pipelines/"]:
            continue  # the scheduler: runs until stopped
        assert main(args) == 0, f"eil-run {shlex.join(args)} failed:\n{capsys.readouterr()}"
        out = capsys.readouterr().out
        for line in shown:
            assert line in out.splitlines(), f"eil-run {shlex.join(args)} no longer prints {line!r}"
        ran += 1
    assert ran >= 7
    assert (project.root / "reports" / "sales_brief" / "latest.html").exists()
