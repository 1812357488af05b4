"""``--at``, ``--from`` and ``--to`` outside the years 1900-9000 are usage errors (exit 2),
never an internal error from the clock arithmetic (in-process: ``cli.main``)."""

from __future__ import annotations

import gc

import pytest

from eil_pipelines.cli import main

PIPELINE = """
title = "Yearly"
[schedule]
cron = "0 0 29 2 *"
timezone = "America/New_York"
period = "month"
[queries.q]
sql = "SELECT 1 AS x"
"""


@pytest.fixture(autouse=True)
def _keep_gc_thresholds():
    """``--once`` raises the collector's thresholds for its short life; put them back."""
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("explain", "pipelines/y.toml", "--from", "0001-01-01T00:00"),
            'eil-run explain: --from: "0001-01-01T00:00" is out of range: '
            "the year must be 1900 to 9000",
        ),
        (
            ("backfill", "pipelines/y.toml", "--from", "2026-01-01", "--to", "9999-12-31"),
            'eil-run backfill: --to: "9999-12-31" is out of range: the year must be 1900 to 9000',
        ),
        (
            ("--once", "pipelines", "--at", "0001-01-01T00:00"),
            'eil-run: --at: "0001-01-01T00:00" is out of range: the year must be 1900 to 9000',
        ),
    ],
)
def test_moments_out_of_range_are_usage_errors(project, monkeypatch, capsys, args, message):
    project.pipeline("y", PIPELINE)
    monkeypatch.chdir(project.root)
    assert main(list(args)) == 2
    assert capsys.readouterr().err.strip() == message


def test_moments_at_the_edges_of_the_range_work(project, monkeypatch, capsys):
    project.pipeline("y", PIPELINE)
    monkeypatch.chdir(project.root)
    assert main(["explain", "pipelines/y.toml", "--from", "9000-12-31T23:59"]) == 0
    assert "Wed 9004-02-29 00:00 -05:00" in capsys.readouterr().out
    assert main(["--once", "pipelines", "--at", "1900-01-01T00:00"]) == 0
    assert (project.root / "reports/y/latest.md").exists()
