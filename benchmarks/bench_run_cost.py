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
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from eil_pipelines.outputs.site import build_site
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="10,1000,20000", help="existing reports, comma-separated"
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs per size")
    parser.add_argument("--profile", action="store_true", help="cProfile 50 tiny runs")
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
