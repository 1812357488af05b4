"""``--target NAME`` on every command that reads connections: the effect of ``EIL_TARGET``.

The project names one DuckDB connection whose file the ``dev`` target
replaces, so which file a run read shows in its report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import duckdb
import pytest

from eil_pipelines.cli import main
from eil_pipelines.sources.pool import close_all

EIL_TOML = """
[connections.files]
kind = "duckdb"
path = "data/prod.duckdb"

[targets.dev.connections.files]
path = "data/dev.duckdb"

[targets.qa.connections.files]
path = "data/qa.duckdb"
"""

PIPELINE = """
title = "Orders"
source = "files"
[schedule]
cron = "0 7 * * *"
timezone = "UTC"
period = "day"
[queries.kpis]
sql = "SELECT sum(n) AS orders FROM orders"
[[metrics]]
label = "Orders"
query = "kpis"
column = "orders"
"""


@pytest.fixture
def targets(project, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A project whose prod file holds 111 orders and whose dev file holds 222."""
    monkeypatch.delenv("EIL_TARGET", raising=False)
    monkeypatch.chdir(project.root)
    project.write("eil.toml", EIL_TOML)
    project.pipeline("orders", PIPELINE)
    (project.root / "data").mkdir()
    for name, count in (("prod", 111), ("dev", 222)):
        with duckdb.connect(str(project.root / "data" / f"{name}.duckdb")) as conn:
            conn.execute(f"CREATE TABLE orders AS SELECT {count} AS n")
    close_all()
    yield project
    close_all()


def _report(project) -> str:
    return (project.reports / "orders" / "2026-06-03.md").read_text()


def test_once_reads_the_target_s_connection(targets, capsys: pytest.CaptureFixture[str]) -> None:
    project = targets
    code = main(["--once", "pipelines", "--target", "dev", "--at", "2026-06-03T07:00"])
    assert code == 0, capsys.readouterr().err
    assert "222" in _report(project) and "111" not in _report(project)
    assert "EIL_TARGET" not in os.environ  # restored once the command is done
    code = main(["--once", "pipelines", "--at", "2026-06-03T07:00"])
    assert code == 0, capsys.readouterr().err
    assert "111" in _report(project)


def test_the_option_and_the_variable_agree(
    targets, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EIL_TARGET", "dev")
    assert main(["--once", "pipelines", "--at", "2026-06-03T07:00"]) == 0
    assert "222" in _report(targets)
    # The option wins over the variable, and the variable is back afterwards.
    assert main(["validate", "pipelines", "--deep", "--target", "qa"]) == 2
    err = capsys.readouterr().err
    assert "qa.duckdb" in err, err
    assert os.environ["EIL_TARGET"] == "dev"


def test_validate_deep_opens_the_target_s_connection(
    targets, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "pipelines", "--deep", "--target", "dev"]) == 0, capsys.readouterr()
    # The qa file does not exist: only that target fails.
    assert main(["validate", "pipelines", "--deep", "--target", "qa"]) == 2
    assert "qa.duckdb" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        ["--once", "pipelines"],
        ["pipelines"],  # the scheduler: refused before it starts
        ["validate", "pipelines"],
        ["backfill", "pipelines/orders.toml", "--from", "2026-06-01", "--to", "2026-06-02"],
        ["send", "pipelines/orders.toml", "--to", "a@example.com"],
        ["connections", "pipelines"],
    ],
)
def test_an_unknown_target_is_named_with_the_known_ones(
    targets, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert main([*command, "--target", "staging"]) == 2
    err = capsys.readouterr().err
    assert "eil.toml" in err
    assert 'no target named "staging" (targets defined: dev, qa)' in err, err
    assert "Traceback" not in err and "internal error" not in err
    assert not (targets.reports / "orders").exists()


def test_a_target_without_eil_toml_is_named(project, capsys: pytest.CaptureFixture[str]) -> None:
    project.pipeline("orders", PIPELINE.replace('source = "files"\n', ""))
    assert main(["validate", str(project.pipelines), "--target", "dev"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eil-run: --target dev: there is no ") and "eil.toml" in err, err
