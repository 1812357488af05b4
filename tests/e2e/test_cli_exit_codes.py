"""Each exit code of docs/cli.md ("Exit status"), from ``eil-run`` run as a subprocess.

0 success, 1 a run failed, 2 invalid configuration or usage, 3 could not run
(the ledger locked by another process, another backfill holding the lease, the
machine refusing a write).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from clirun import eil

from eil_pipelines.app import ledger_path
from eil_pipelines.app.backfill import lease_name
from eil_pipelines.cli.exitcodes import (
    EXIT_CODES,
    EXIT_CONFIG,
    EXIT_COULD_NOT_RUN,
    EXIT_FAILED,
    EXIT_OK,
    exit_code,
)
from eil_pipelines.errors import ConfigErrors, CouldNotRun, EilError, UsageError
from eil_pipelines.ledger import Ledger, LedgerError, LedgerLockedError

GOOD = """
title = "Sales"
[schedule]
daily = "07:00"
timezone = "UTC"
period = "day"
[queries.kpis]
sql = "SELECT 1 AS v"
[report]
formats = ["md"]
"""

FAILING = GOOD.replace("SELECT 1 AS v", "SELECT * FROM no_such_table")


def test_exit_0_when_every_run_succeeds(project):
    project.pipeline("sales", GOOD)
    result = eil("--once", "pipelines", cwd=project.root)
    assert result.returncode == EXIT_OK == 0, result.stderr
    assert "1 succeeded, 0 failed." in result.stdout


def test_exit_1_when_a_run_fails(project):
    project.pipeline("sales", FAILING)
    result = eil("--once", "pipelines", cwd=project.root)
    assert result.returncode == EXIT_FAILED == 1, result.stderr
    assert "0 succeeded, 1 failed." in result.stdout
    assert "no_such_table" in result.stdout


def test_exit_2_for_an_invalid_pipeline_file(project):
    project.pipeline("sales", GOOD.replace('daily = "07:00"', 'daily = "7 o\'clock"'))
    result = eil("--once", "pipelines", cwd=project.root)
    assert result.returncode == EXIT_CONFIG == 2
    assert "pipelines/sales.toml: schedule.daily:" in result.stderr
    assert "1 problem in 1 file." in result.stderr


def test_exit_2_for_bad_usage(project):
    project.pipeline("sales", GOOD)
    result = eil("--once", "--only", "nope", "pipelines", cwd=project.root)
    assert result.returncode == 2
    assert result.stderr.startswith("eil-run: --only: no pipeline named nope")


# A child process that holds the ledger's write lock until its stdin closes.
HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


def test_exit_3_when_another_process_holds_the_ledger_locked(project):
    project.pipeline("sales", GOOD)
    Ledger(ledger_path(project.reports)).close()  # created and migrated, as a scheduler leaves it
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(ledger_path(project.reports))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        result = eil("--once", "--deliver", "pipelines", cwd=project.root)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    assert result.returncode == EXIT_COULD_NOT_RUN == 3, result.stderr
    assert "run ledger" in result.stderr and "is locked: another process held it" in result.stderr
    assert "invalid configuration" not in result.stderr and "internal error" not in result.stderr


def test_exit_3_when_another_backfill_holds_the_lease(project):
    project.pipeline("sales", GOOD)
    with Ledger(ledger_path(project.reports)) as ledger:
        taken = ledger.acquire_lease(lease_name("sales"), holder="a test", now=datetime.now(UTC))
        assert taken is None
        result = eil(
            "backfill", "pipelines/sales.toml", "--from", "2025-03-01", "--to", "2025-03-02",
            cwd=project.root,
        )  # fmt: skip
        ledger.release_lease(lease_name("sales"))
    assert result.returncode == 3
    assert 'another backfill of "sales" is running: a test (pid' in result.stderr


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_disk_or_a_refused_write_is_could_not_run(number):
    # The machine, not the configuration: exit 3, directly or wrapped in an EilError.
    bare = OSError(number, os.strerror(number), "reports/sales/x.md")
    assert exit_code(bare) == 3
    try:
        raise LedgerError("run ledger reports/.eil/ledger.sqlite3 cannot be created") from bare
    except LedgerError as wrapped:
        assert exit_code(wrapped) == 3


def test_the_table_gives_each_kind_its_code():
    assert exit_code(ConfigErrors([])) == 2
    assert exit_code(UsageError("x")) == 2
    assert exit_code(EilError("x")) == 2
    assert exit_code(CouldNotRun("x")) == 3
    assert exit_code(LedgerLockedError("x")) == 3
    assert exit_code(OSError(errno.ENOENT, "No such file")) == 1  # not the machine's fault: a bug
    assert exit_code(KeyboardInterrupt()) == 130
    assert {code for _, code in EXIT_CODES} == {2, 3, 130}


def test_an_unreadable_pipeline_file_stays_a_configuration_error():
    # The loader says "cannot read the file" itself (raise … from None): exit 2, as before.
    try:
        try:
            raise PermissionError(errno.EACCES, "Permission denied", "pipelines/x.toml")
        except OSError:
            raise EilError("pipelines/x.toml: cannot read the file: Permission denied") from None
    except EilError as exc:
        assert exit_code(exc) == 2
