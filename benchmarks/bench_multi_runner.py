"""Several runners on one Postgres ledger: fail-over time, claims per second, runs per minute.

Starts a throwaway PostgreSQL on 127.0.0.1 (Debian's package, see
``tests/sources/servers.py``) and stops it at the end::

    python benchmarks/bench_multi_runner.py [--claims 2000] [--pipelines 200] [--window 30]
                                             [--skip-failover] [--skip-throughput]

1. **Fail-over**: two runners (``eil-run --node``) with a lease of 3 s and one
   slow report (``pg_sleep``); the runner holding it is killed with SIGKILL,
   and the time until the other runner has reclaimed it (attempt 2) is
   printed, against the lease plus one heartbeat.
2. **Claims per second**: 3 processes claiming the same ``--claims`` keys on
   the Postgres ledger (each key won by exactly one), against one process
   claiming them on the SQLite ledger.
3. **Runs per minute** with 1, 2 and 3 runners on ``--pipelines`` small
   pipelines due every 5 s, counted over ``--window`` seconds, with the CPU
   time of the runners and of Postgres, to tell which one is the limit.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "sources"))
sys.path.insert(0, str(REPO / "tests" / "ledger"))
sys.path.insert(0, str(REPO / "tests" / "multi"))

CLAIMER = """
import sys, time
from datetime import datetime, timedelta, timezone
from eil_pipelines.ledger import open_ledger
ledger = open_ledger(sys.argv[1], create=False) if "://" in sys.argv[1] else open_ledger(sys.argv[1])
t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
n = int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
won = sum(1 for i in range(n) if ledger.claim("bench", t0 + timedelta(seconds=i), run_id=f"r{i}"))
print(won, time.perf_counter() - start, flush=True)
"""


def claims_per_second(target: str, processes: int, n: int) -> tuple[float, int]:
    """Claims attempted per second by ``processes`` processes on ``target``, and keys won."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, target, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [proc.communicate(timeout=600)[0].split() for proc in procs]
    wall = time.perf_counter() - start
    won = sum(int(out[0]) for out in outputs)
    return processes * n / wall, won


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


def postgres_cpu(server) -> float:
    """CPU seconds of every process of the Postgres server (its process group)."""
    total = 0.0
    pgid = server.pg.server.process.pid
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


def failover(server) -> None:
    from multi_helpers import LEASE_S, Cluster, pipeline_text, wait_for

    server.wipe()
    with tempfile.TemporaryDirectory() as folder:
        cluster = Cluster(Path(folder), server)
        try:
            sql = "SELECT 1 AS x FROM (SELECT pg_sleep(6)) AS s"
            cluster.pipeline("slow", pipeline_text("30s", sql=sql, source="pg"))
            first = cluster.start("a")

            def held():
                return next(
                    (r for r in cluster.rows() if r.pipeline == "slow" and r.status == "running"),
                    None,
                )

            row = wait_for(held, "the slow report claimed")
            cluster.start("b")
            os.killpg(first.process.pid, signal.SIGKILL)
            killed = time.monotonic()
            wait_for(
                lambda: (r := cluster.ledger_get("slow", row.scheduled_at)) and r.attempt == 2,
                "the takeover",
            )
            took = time.monotonic() - killed
            print(
                f"fail-over after kill -9: {took:.1f} s "
                f"(lease {LEASE_S} s + heartbeat {LEASE_S / 3:.1f} s = {LEASE_S * 4 / 3:.1f} s)"
            )
        finally:
            cluster.kill_all()


def runs_per_minute(server, pipelines: int, window: float) -> None:
    from multi_helpers import Cluster, pipeline_text, wait_for

    for count in (1, 2, 3):
        server.wipe()
        with tempfile.TemporaryDirectory() as folder:
            cluster = Cluster(Path(folder), server)
            try:
                for n in range(pipelines):
                    cluster.pipeline(f"p{n:03d}", pipeline_text("5s"))
                runners = [cluster.start(f"r{n}") for n in range(count)]
                wait_for(lambda c=cluster: len(c.rows()) > 0, "a first run", timeout=300)
                with cluster.ledger() as ledger:
                    start_db = ledger.now()
                cpu0 = sum(cpu_seconds(r.process.pid) for r in runners), postgres_cpu(server)
                t0 = time.monotonic()
                while time.monotonic() - t0 < window:
                    time.sleep(1)  # a measurement window, not a synchronisation
                cpu1 = sum(cpu_seconds(r.process.pid) for r in runners), postgres_cpu(server)
                with cluster.ledger() as ledger:
                    end_db = ledger.now()
                    done = [
                        r
                        for r in ledger.history(limit=None)
                        if r.status == "succeeded"
                        and r.finished_at is not None
                        and start_db <= r.finished_at < end_db
                    ]
                    skipped = sum(
                        1
                        for r in ledger.history(limit=None)
                        if r.status == "skipped"
                        and r.finished_at is not None
                        and start_db <= r.finished_at < end_db
                    )
                minutes = (end_db - start_db).total_seconds() / 60
                print(
                    f"{count} runner(s), {pipelines} pipelines every 5 s: "
                    f"{len(done) / minutes:.0f} runs/min ({skipped} fire times skipped as "
                    f"overlapping; due: {pipelines * 12:.0f}/min); CPU runners "
                    f"{cpu1[0] - cpu0[0]:.1f} s, Postgres {cpu1[1] - cpu0[1]:.1f} s "
                    f"over {window:.0f} s on {os.cpu_count()} CPUs"
                )
            finally:
                cluster.kill_all()


def main() -> None:
    """Start Postgres, print the figures, stop Postgres."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=2000, help="keys per claimer")
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument("--window", type=float, default=30.0, help="seconds per measurement")
    parser.add_argument("--skip-failover", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    options = parser.parse_args()
    from pg_ledger import start_ledger_server

    server = start_ledger_server()
    try:
        if not options.skip_failover:
            failover(server)
        server.wipe()
        rate, won = claims_per_second(server.url, 3, options.claims)
        print(f"claims/s, Postgres, 3 processes: {rate:.0f} (keys won: {won}/{options.claims})")
        with tempfile.TemporaryDirectory() as folder:
            db = str(Path(folder) / "ledger.sqlite3")
            rate, won = claims_per_second(db, 1, options.claims)
        print(f"claims/s, SQLite, 1 process:     {rate:.0f} (keys won: {won}/{options.claims})")
        if not options.skip_throughput:
            runs_per_minute(server, options.pipelines, options.window)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
