"""``eil-run schema``: print, write and check the pipeline file's JSON Schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from eil_pipelines.cli import main
from eil_pipelines.spec.schema import schema_text

REPO = Path(__file__).resolve().parents[2]


def test_schema_prints_the_generated_schema_as_a_subprocess(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "eil_pipelines", "schema"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == schema_text()
    schema = json.loads(result.stdout)
    assert schema["title"] == "eil-pipelines pipeline file"
    assert {"title", "schedule", "queries", "charts"} <= set(schema["properties"])


def test_output_writes_the_file_and_then_says_it_is_up_to_date(tmp_path, capsys):
    target = tmp_path / "pipelines" / "pipeline.schema.json"
    assert main(["schema", "--output", str(target)]) == 0
    assert capsys.readouterr().out == f"wrote {target}\n"
    assert target.read_text(encoding="utf-8") == schema_text()
    assert main(["schema", "--output", str(target)]) == 0
    assert capsys.readouterr().out == f"{target} is up to date.\n"


def test_check_passes_on_the_committed_schema(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["schema", "--check", "pipelines/pipeline.schema.json"]) == 0
    assert capsys.readouterr().out == "pipelines/pipeline.schema.json is up to date.\n"


def test_check_fails_on_a_stale_or_missing_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("stale.json").write_text("{}\n")
    assert main(["schema", "--check", "stale.json"]) == 2
    assert capsys.readouterr().err == (
        "eil-run schema: stale.json is out of date; regenerate it with: "
        "eil-run schema --output stale.json\n"
    )
    assert main(["schema", "--check", "gone.json"]) == 2
    assert capsys.readouterr().err == (
        "eil-run schema: gone.json is missing; regenerate it with: "
        "eil-run schema --output gone.json\n"
    )


def test_output_and_check_are_exclusive(capsys):
    assert main(["schema", "--output", "a.json", "--check", "b.json"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
