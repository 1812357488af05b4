"""What one run costs as the reports folder grows, and the CPU of a tiny run.

Run from anywhere::

    python benchmarks/bench_run_cost.py [--sizes 10,1000,20000] [--runs 15] [--profile]

What it does:

1. Writes a throwaway project (``tempfile.mkdtemp``) holding one tiny
   pipeline: one small DuckDB query over a 3-row CSV, one metric, no charts,
   Markdown and HTML, a daily schedule.
2. For each size N: a fresh reports folder gets N existing reports, made
   cheaply by hard-linking the Markdown, HTML and manifest of one real run N
   times under older stamps (one a day back from 1960).  The report site is
   brought up to date once (untimed: the first look at a folder with no index
   scans it), then ``--runs`` runs of the pipeline, each for the next day, go
   through ``run_pipeline`` in this process (queries, render, write, retention,
   status and site update: the path the scheduler's service takes), each timed
   with ``time.perf_counter`` (wall) and ``time.process_time`` (CPU).  It
   prints the median wall and CPU per run, the median ``write`` stage (files,
   retention, status and site update), and the median CPU outside the query:
   the run's CPU minus the median CPU of the query stage alone
   (``run_queries``: open DuckDB, run the SQL, fetch, close), measured
   beside it.
3. For comparison, the full rebuild (``build_site``, a scan of the folder,
   with the index's cached manifests and from no index at all: the path every
   run took before the site was incremental).
4. The CPU of a tiny run against the target of 20 ms outside the query.

``--profile`` prints the top of a cProfile of 50 tiny runs (at 10 reports).

``--tables 1000,100000`` (the default) also times what a document does with a
large result, at each row count: ``table()`` in Markdown and in HTML with
``max_rows = 1000`` (a document holds at most 1,000 rows per table: the cap),
and a template loop over ``itertuples()`` in the report sandbox (capped the
same way), each with its peak memory (``tracemalloc``).  The last column is
the cost at N rows over the cost at the first size: flat means about 1.
Before the cap, 100,000 rows took 16 s in ``table()`` and 22 s and 1 GB in
the loop.

This is a benchmark, not a test: nothing imports it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from eil_pipelines.outputs.site import build_site
from eil_pipelines.render.environment import create_environment
from eil_pipelines.render.filters import render_table
from eil_pipelines.run import make_context, run_pipeline
from eil_pipelines.run.pipeline import run_queries
from eil_pipelines.spec import load_pipeline

PIPELINE = """
title = "Tiny"
description = "One small query, no charts."
[schedule]
cron = "0 7 * * *"
timezone = "UTC"
period = "day"
[queries.kpis]
sql = "SELECT sum(v) AS v, sum(v) / 2 AS p FROM 'data/s.csv'"
[[metrics]]
label = "Value"
query = "kpis"
column = "v"
compare = "p"
"""

UTC = ZoneInfo("UTC")
START = datetime(2030, 1, 1, 7, 0, tzinfo=UTC)
TARGET_CPU_MS = 20.0


def make_project(root: Path):
    """The tiny pipeline, loaded."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "s.csv").write_text("v\n1\n2\n3\n")
    (root / "pipelines").mkdir()
    path = root / "pipelines" / "tiny.toml"
    path.write_text(PIPELINE)
    return load_pipeline(path, root=root)


def fill(reports: Path, pipeline, count: int) -> None:
    """``count`` older reports: one real run's files hard-linked under older stamps."""
    result = run_pipeline(pipeline, make_context(pipeline, START - timedelta(days=1)), reports)
    assert result.ok, result.error
    folder = reports / pipeline.name
    sources = [p for p in folder.iterdir() if p.name.startswith(result.stamp + ".")]
    first = date(1960, 1, 1)
    for i in range(count - 1):
        stamp = (first + timedelta(days=i)).isoformat()
        for source in sources:
            os.link(source, folder / (stamp + source.suffix))


def timed_runs(reports: Path, pipeline, runs: int, start: int) -> dict[str, list[float]]:
    """``runs`` runs for the days after START + ``start``; per-run figures in ms."""
    out: dict[str, list[float]] = {"wall": [], "cpu": [], "write": []}
    for i in range(runs):
        ctx = make_context(pipeline, START + timedelta(days=start + i))
        w0, c0 = time.perf_counter(), time.process_time()
        result = run_pipeline(pipeline, ctx, reports)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        assert result.ok, result.error
        out["wall"].append(wall * 1000)
        out["cpu"].append(cpu * 1000)
        out["write"].append(result.stages.write * 1000)
    return out


def query_cpu(pipeline, runs: int) -> float:
    """Median CPU (ms) of the query stage alone: ``run_queries``, which opens the
    source, runs the SQL, fetches the rows and closes it, as a run does."""
    values = []
    for i in range(runs):
        ctx = make_context(pipeline, START + timedelta(days=i))
        c0 = time.process_time()
        run_queries(pipeline, ctx)
        values.append((time.process_time() - c0) * 1000)
    return statistics.median(values)


def med(values: list[float]) -> float:
    return statistics.median(values)


LOOP = "{% for r in data.orders.itertuples() %}| {{ r.region }} | {{ r.revenue }} |\n{% endfor %}"


def orders(rows: int) -> pd.DataFrame:
    """A result of ``rows`` rows: a date, a text, money and a count."""
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "day": pd.date_range("2020-01-01", periods=rows, freq="h"),
            "region": rng.choice(["North", "South", "East", "West"], rows),
            "revenue": rng.uniform(10, 10_000, rows).round(2),
            "orders": rng.integers(1, 500, rows),
        }
    )


def measured(work) -> tuple[float, float]:
    """Median wall ms of 3 calls of ``work``, and the peak MiB of one more."""
    times = []
    for _ in range(3):
        t = time.perf_counter()
        work()
        times.append((time.perf_counter() - t) * 1000)
    tracemalloc.start()
    work()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return med(times), peak


def bench_tables(sizes: list[int]) -> None:
    """``table()`` and a template row loop on large results: capped, so flat."""
    print()
    header = (
        f"{'rows':>8} | {'table() md+html':>15} | {'peak':>8} | {'row loop':>9} | {'peak':>8} | "
        f"{'vs first size':>13}"
    )
    print(header)
    print("-" * len(header))
    template = create_environment("md").from_string(LOOP)
    first = None
    for rows in sizes:
        frame = orders(rows)

        def table(frame: pd.DataFrame = frame) -> None:
            render_table(frame, "md", 1000)
            render_table(frame, "html", 1000)

        def loop(frame: pd.DataFrame = frame) -> None:
            template.render(data={"orders": frame})

        table_ms, table_mib = measured(table)
        loop_ms, loop_mib = measured(loop)
        first = first or (table_ms + loop_ms)
        print(
            f"{rows:>8,} | {table_ms:>12.1f} ms | {table_mib:>4.1f} MiB | {loop_ms:>6.1f} ms | "
            f"{loop_mib:>4.1f} MiB | {(table_ms + loop_ms) / first:>12.2f}x"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="10,1000,20000", help="existing reports, comma-separated"
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per size")
    parser.add_argument("--profile", action="store_true", help="cProfile 50 tiny runs")
    parser.add_argument(
        "--tables", default="1000,100000", help="result rows for table() and a row loop ('' skips)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="eil-bench-run-cost-"))
    try:
        pipeline = make_project(tmp / "project")
        # Warm up imports, templates and DuckDB once, outside every figure.
        warm = tmp / "warm"
        for i in range(3):
            run_pipeline(pipeline, make_context(pipeline, START + timedelta(days=i)), warm)

        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {args.runs} runs per size")
        print()
        header = (
            f"{'reports':>8} | {'wall/run':>9} | {'CPU/run':>8} | {'CPU - query':>11} | "
            f"{'write+site':>10} | {'full rebuild (index)':>20} | {'full rebuild (cold)':>19}"
        )
        print(header)
        print("-" * len(header))
        small = None
        for size in sizes:
            reports = tmp / f"reports-{size}"
            fill(reports, pipeline, size)
            build_site(reports)  # the one-time scan of a folder without an index
            figures = timed_runs(reports, pipeline, args.runs, start=0)
            query = query_cpu(pipeline, args.runs)
            figures["cpu_no_query"] = [c - query for c in figures["cpu"]]
            figures["query"] = [query]
            t = time.perf_counter()
            build_site(reports, [pipeline.name])
            warm_full = (time.perf_counter() - t) * 1000
            shutil.rmtree(reports / ".eil" / "site")
            t = time.perf_counter()
            build_site(reports, [pipeline.name])
            cold_full = (time.perf_counter() - t) * 1000
            print(
                f"{size:>8,} | {med(figures['wall']):>6.1f} ms | {med(figures['cpu']):>5.1f} ms | "
                f"{med(figures['cpu_no_query']):>8.1f} ms | {med(figures['write']):>7.1f} ms | "
                f"{warm_full:>17.1f} ms | {cold_full:>16.1f} ms"
            )
            if small is None:
                small = figures
            shutil.rmtree(reports)
        print()
        assert small is not None
        cpu = med(small["cpu_no_query"])
        verdict = "PASS" if cpu <= TARGET_CPU_MS else "MISS"
        print(
            f"tiny run: {cpu:.1f} ms CPU outside the query (median; query "
            f"{small['query'][0]:.1f} ms); target <= {TARGET_CPU_MS:.0f} ms: {verdict}"
        )
        if args.tables:
            bench_tables([int(n) for n in args.tables.split(",")])
        if args.profile:
            reports = tmp / "reports-profile"
            fill(reports, pipeline, 10)
            build_site(reports)
            profiler = cProfile.Profile()
            profiler.enable()
            timed_runs(reports, pipeline, 50, start=100)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
            print(out.getvalue())
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
