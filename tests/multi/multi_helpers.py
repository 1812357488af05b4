"""A project run by several ``eil-run`` processes on one Postgres ledger.

Each runner is a real process (``python -m eil_pipelines PIPELINES --node NAME``)
in its own session, with its log in a file the tests read to wait for events.
Nothing waits a fixed time to synchronise: every wait polls a predicate with a
generous deadline that is reached only when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pg_ledger import RUNNER_PASSWORD
from servers import DATABASE, READER_PASSWORD

from eil_pipelines.ledger.postgres import PostgresLedger

#: The lease of the tests' runners: short, so fail-over is quick, yet long enough that a
#: heartbeat starved by a loaded machine doesn't lose its runs.
LEASE_S = 5


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds (a failing test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: did not happen in {timeout:.0f}s")


def pipeline_text(every: str, *, sql: str = "SELECT 1 AS x", source: str | None = None) -> str:
    """A tiny scheduled pipeline."""
    head = f'source = "{source}"\n' if source else ""
    return (
        f'title = "Report"\n{head}'
        "[schedule]\n"
        f'every = "{every}"\n'
        'timezone = "UTC"\n'
        "[queries.q]\n"
        f'sql = "{sql}"\n'
    )


@dataclass
class Runner:
    """One ``eil-run`` process."""

    node: str
    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        """Its log so far."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class Cluster:
    """A project folder with an ``eil.toml`` naming the shared ledger."""

    def __init__(self, root: Path, server: Any):
        self.root = root
        self.server = server
        self.pipelines = root / "pipelines"
        self.pipelines.mkdir()
        self.reports = root / "reports"
        port = server.pg.port
        (root / "eil.toml").write_text(
            "[ledger]\n"
            f'url = "postgresql://${{EIL_LEDGER_USER}}:${{EIL_LEDGER_PASSWORD}}@127.0.0.1:{port}/eil"\n'
            f'lease = "{LEASE_S}s"\n'
            "[connections.pg]\n"
            f'url = "postgresql://reader:${{PG_READER_PASSWORD}}@127.0.0.1:{port}/{DATABASE}"\n'
        )
        self.runners: list[Runner] = []

    def pipeline(self, name: str, text: str) -> None:
        """Write ``pipelines/<name>.toml``."""
        (self.pipelines / f"{name}.toml").write_text(text)

    def env(self, **extra: str) -> dict[str, str]:
        """A runner's environment: the secrets as ``${ENV}``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("EIL_")}
        env.update(
            EIL_LEDGER_USER="eil_runner",
            EIL_LEDGER_PASSWORD=RUNNER_PASSWORD,
            PG_READER_PASSWORD=READER_PASSWORD,
            PYTHONUNBUFFERED="1",
            **extra,
        )
        return env

    def start(self, node: str, **env: str) -> Runner:
        """Start a runner named ``node`` and wait until the ledger has heard its heartbeat."""
        log = self.root / f"{node}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "eil_pipelines",
                    str(self.pipelines),
                    "--node",
                    node,
                    "--workers",
                    "3",
                    "--chart-processes",
                    "0",
                    "--grace",
                    "20",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env(**env),
                cwd=self.root,
                start_new_session=True,
            )
        runner = Runner(node, process, log)
        self.runners.append(runner)

        def beating() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"runner {node} exited: {runner.text()[-3000:]}")
            return any(n.node == node and not n.stopped for n in self.ledger_nodes())

        wait_for(beating, f"runner {node} beating")
        return runner

    def ledger(self) -> PostgresLedger:
        """A ledger connection of the test's own (read what the runners wrote)."""
        return PostgresLedger(self.server.url, create=False)

    def ledger_nodes(self) -> list[Any]:
        """The runners' heartbeats."""
        with self.ledger() as ledger:
            return ledger.nodes()

    def rows(self) -> list[Any]:
        """Every run row."""
        with self.ledger() as ledger:
            return ledger.history(limit=None)

    def ledger_get(self, pipeline: str, at: Any) -> Any:
        """One run row."""
        with self.ledger() as ledger:
            return ledger.get(pipeline, at)

    def stop(self, runner: Runner, timeout: float = 120.0) -> int:
        """SIGTERM, and wait for the process to end (its runs in flight finish first)."""
        if runner.process.poll() is None:
            os.killpg(runner.process.pid, signal.SIGTERM)
        return runner.process.wait(timeout)

    def kill_all(self) -> None:
        """Kill every runner still alive (a failed test's leftovers)."""
        for runner in self.runners:
            if runner.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(runner.process.pid, signal.SIGCONT)
                    os.killpg(runner.process.pid, signal.SIGKILL)
                runner.process.wait(30)


def run_three_until_each_ran(
    cluster: Cluster, names: int, *, timeout: float, **env: str
) -> list[Runner]:
    """Start runners ``r0``-``r2``, wait until each of the ``names`` pipelines has
    succeeded 3 times, then stop them (each must exit 0); return them."""
    from collections import Counter

    runners = [cluster.start(f"r{n}", **env) for n in range(3)]

    def enough() -> bool:
        counts = Counter(r.pipeline for r in cluster.rows() if r.status == "succeeded")
        return len(counts) == names and min(counts.values()) >= 3

    wait_for(enough, "every pipeline ran 3 times", timeout=timeout)
    for runner in runners:
        assert cluster.stop(runner) == 0
    return runners
