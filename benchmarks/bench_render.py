"""Benchmark: render many reports in one process and watch time per stage and memory.

Run from anywhere::

    python benchmarks/bench_render.py [--reports 100] [--rows 200000] [--pdf] [--keep]
                                      [--chart-processes N]

What it does:

1. Makes (once; cached by row count in ``benchmarks/.data/``) a deterministic
   orders table as Parquet, generated inside DuckDB: order_ts, order_date,
   region (5), channel (4), revenue, status.
2. Writes a throwaway project with one pipeline: a KPI query (3 metrics), and
   four charts — revenue per day and region over 60 days (line, 5 series),
   revenue by region (bar, sorted), by channel (barh) and orders per day
   (area) — plus a data table.  Markdown and HTML (and PDF with ``--pdf``).
3. Calls :func:`eil_pipelines.run_pipeline` in this process for ``--reports``
   consecutive days, each into the same reports folder (so the write stage
   also rebuilds the growing report site), twice:

   1. charts drawn in the run's own thread, as ``eil-run --once`` and library
      callers do;
   2. charts drawn in chart processes, as the scheduler does (by default one
      per CPU, up to 4; none, and no second pass, on a single CPU).

4. Prints for each pass the median, 90th percentile and maximum of each stage
   of ``RunResult.stages`` (query / charts / template / pdf / write), the
   resident memory after 10, 50 and 100 reports (of this process, and of the
   chart processes together), and the verdicts:

   * charts of a typical report (the median charts stage) under 0.5 s, in
     both passes, and the ratio of the two;
   * memory does not grow with the number of reports: RSS after the last
     report is within 30 MiB of RSS after the 10th, for this process and for
     the chart processes (figures closed, nothing kept between runs).

This is a benchmark, not a test: nothing imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data"
DATA_VERSION = 1

CHARTS_TARGET_S = 0.5
RSS_GROWTH_LIMIT_MIB = 30.0

GENERATE_SQL = """
COPY (
  SELECT
    TIMESTAMP '2026-01-01' + to_microseconds((i * 31536000000000 // $rows)::BIGINT) AS order_ts,
    CAST(order_ts AS DATE) AS order_date,
    ['EMEA', 'AMER', 'APAC', 'LATAM', 'ANZ'][(1 + hash(i, 1) % 5)::BIGINT] AS region,
    ['Web', 'Mobile', 'Retail', 'Partner'][(1 + hash(i, 2) % 4)::BIGINT] AS channel,
    round(20 + (hash(i, 3) % 40000) / 100.0, 2) AS revenue,
    CASE WHEN hash(i, 4) % 10 = 0 THEN 'cancelled' ELSE 'completed' END AS status
  FROM range($rows) t(i)
) TO $path (FORMAT parquet, COMPRESSION zstd)
"""

PIPELINE = '''\
title = "Daily Sales (render benchmark)"
description = "How did we sell yesterday?"

[schedule]
cron = "0 7 * * *"
timezone = "Europe/Berlin"
period = "day"

[queries.kpis]
sql = """
SELECT
  sum(revenue) FILTER (WHERE order_ts >= $period_start AND order_ts < $period_end) AS revenue,
  sum(revenue) FILTER (WHERE order_ts >= $prev_period_start AND order_ts < $prev_period_end)
    AS prev_revenue,
  count(*) FILTER (WHERE order_ts >= $period_start AND order_ts < $period_end) AS orders,
  count(*) FILTER (WHERE order_ts >= $prev_period_start AND order_ts < $prev_period_end)
    AS prev_orders,
  avg(revenue) FILTER (WHERE order_ts >= $period_start AND order_ts < $period_end) AS aov,
  avg(revenue) FILTER (WHERE order_ts >= $prev_period_start AND order_ts < $prev_period_end)
    AS prev_aov
FROM {orders} WHERE status = 'completed'
"""

[queries.daily]
sql = """
SELECT order_date AS day, region, sum(revenue) AS revenue, count(*) AS orders
FROM {orders}
WHERE status = 'completed' AND order_ts >= $period_end - INTERVAL 60 DAY AND order_ts < $period_end
GROUP BY ALL ORDER BY day, region
"""

[queries.by_region]
sql = """
SELECT region, sum(revenue) AS revenue FROM {orders}
WHERE order_ts >= $period_start AND order_ts < $period_end GROUP BY ALL ORDER BY region
"""

[queries.by_channel]
sql = """
SELECT channel, sum(revenue) AS revenue FROM {orders}
WHERE order_ts >= $period_start AND order_ts < $period_end GROUP BY ALL ORDER BY channel
"""

[queries.orders_per_day]
sql = """
SELECT order_date AS day, count(*) AS orders FROM {orders}
WHERE order_ts >= $period_end - INTERVAL 60 DAY AND order_ts < $period_end
GROUP BY ALL ORDER BY day
"""

[[metrics]]
label = "Revenue"
query = "kpis"
column = "revenue"
compare = "prev_revenue"
format = "currency"

[[metrics]]
label = "Orders"
query = "kpis"
column = "orders"
compare = "prev_orders"

[[metrics]]
label = "Average order value"
query = "kpis"
column = "aov"
compare = "prev_aov"
format = "currency"

[[charts]]
name = "revenue_by_day"
query = "daily"
type = "line"
x = "day"
y = "revenue"
series = "region"
format = "currency"
title = "Revenue by day and region, last 60 days"

[[charts]]
name = "revenue_by_region"
query = "by_region"
type = "bar"
x = "region"
y = "revenue"
format = "compact"

[[charts]]
name = "revenue_by_channel"
query = "by_channel"
type = "barh"
x = "channel"
y = "revenue"
format = "compact"

[[charts]]
name = "orders_per_day"
query = "orders_per_day"
type = "area"
x = "day"
y = "orders"

[report]
formats = {formats}
'''


def orders_parquet(rows: int) -> Path:
    """The cached Parquet file for ``rows`` rows, made now if missing."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"render-orders-v{DATA_VERSION}-{rows}.parquet"
    if path.exists():
        return path
    import duckdb

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with duckdb.connect(":memory:") as con:
            con.execute("SET enable_progress_bar = false")
            con.execute(GENERATE_SQL, {"rows": rows, "path": str(tmp)})
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def rss_mib() -> float:
    """Resident memory now, in MiB (Linux /proc; elsewhere the peak, as an upper bound)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident memory of this process, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def child_rss_mib(pids: list[int]) -> float:
    """Resident memory of the chart processes together, in MiB (Linux /proc)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
    return total


def run_pass(label, pipeline, reports, first_day, count, charts) -> dict:
    """Render ``count`` reports (after one untimed warm-up) and print their table."""
    from eil_pipelines import make_context, run_pipeline

    def one(day: datetime):
        return run_pipeline(pipeline, make_context(pipeline, day), reports, chart_processes=charts)

    # One untimed warm-up: imports, font cache, DuckDB's first connection, processes.
    warm = one(first_day - timedelta(days=1))
    if not warm.ok:
        raise SystemExit(f"warm-up run failed: {warm.error}")
    gc.collect()
    pids = charts.pids if charts is not None else []
    rss = {0: rss_mib()}
    child_rss = {0: child_rss_mib(pids)}
    stages: dict[str, list[float]] = {
        k: [] for k in ("query", "charts", "template", "pdf", "write")
    }
    totals = []
    t_all = time.perf_counter()
    for i in range(1, count + 1):
        result = one(first_day + timedelta(days=i - 1))
        if not result.ok:
            raise SystemExit(f"report {i} failed: {result.error}")
        totals.append(result.duration)
        for name in stages:
            stages[name].append(getattr(result.stages, name, 0.0))
        if i in (10, 50, 100) or i == count:
            gc.collect()
            rss[i] = rss_mib()
            child_rss[i] = child_rss_mib(pids)
    wall = time.perf_counter() - t_all

    print(f"{label}\n")
    print("  per report (seconds)   median      p90      max")
    for name, values in stages.items():
        if name == "pdf" and not any(values):
            continue
        print(
            f"    {name:<18} {statistics.median(values):9.3f} {pct(values, 0.9):8.3f} "
            f"{max(values):8.3f}"
        )
    print(
        f"    {'total':<18} {statistics.median(totals):9.3f} {pct(totals, 0.9):8.3f} "
        f"{max(totals):8.3f}"
    )
    print(f"\n  {count} reports in {wall:.1f} s ({count / wall:.1f} reports/s)")
    print("\n  resident memory (MiB)  this process" + ("   chart processes" if pids else ""))
    for done in sorted(rss):
        name = "after warm-up" if done == 0 else f"after {done:>4} reports"
        extra = f"   {child_rss[done]:15.1f}" if pids else ""
        print(f"    {name:<20} {rss[done]:12.1f}{extra}")
    print()
    return {"charts": statistics.median(stages["charts"]), "rss": rss, "child_rss": child_rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=100, help="reports to render (100)")
    parser.add_argument("--rows", type=int, default=200_000, help="orders rows (200,000)")
    parser.add_argument("--pdf", action="store_true", help="also render the PDF of each report")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    parser.add_argument(
        "--chart-processes",
        type=int,
        default=None,
        metavar="N",
        help="chart processes of the scheduler's pass (default: as the scheduler picks)",
    )
    args = parser.parse_args(argv)

    from eil_pipelines import load_pipeline
    from eil_pipelines.charts.processes import ChartProcesses, default_chart_processes

    data = orders_parquet(args.rows)
    root = Path(tempfile.mkdtemp(prefix="eil-bench-render-"))
    # Queries read files only inside their project: the data goes in (a hard
    # link where the file systems allow it, else a copy; a symlink is refused).
    (root / "data").mkdir()
    inside = root / "data" / data.name
    try:
        os.link(data, inside)
    except OSError:
        shutil.copyfile(data, inside)
    formats = '["md", "html", "pdf"]' if args.pdf else '["md", "html"]'
    text = PIPELINE.replace("{orders}", "'" + str(inside).replace("'", "''") + "'")
    text = text.replace("{formats}", formats)
    (root / "pipelines").mkdir()
    (root / "pipelines" / "bench.toml").write_text(text)
    pipeline = load_pipeline(root / "pipelines" / "bench.toml", root=root)
    first_day = datetime(2026, 3, 1, 7, tzinfo=ZoneInfo("Europe/Berlin"))
    processes = default_chart_processes() if args.chart_processes is None else args.chart_processes

    print(
        f"eil-pipelines render benchmark: {args.reports} reports, 4 charts each, "
        f"{args.rows:,} orders rows, formats {formats}"
    )
    print(f"python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs\n")

    inline = run_pass(
        "1. charts drawn in the run's thread (eil-run --once, run_pipeline)",
        pipeline,
        root / "reports-inline",
        first_day,
        args.reports,
        None,
    )
    passes = [("in the run's thread", inline)]
    if processes:
        with ChartProcesses(processes) as charts:
            pooled = run_pass(
                f"2. charts drawn in {processes} chart processes (the scheduler's default "
                "on this machine)",
                pipeline,
                root / "reports-processes",
                first_day,
                args.reports,
                charts,
            )
        passes.append((f"in {processes} chart processes", pooled))
    else:
        print("2. skipped: the scheduler starts no chart processes on a single CPU\n")

    ok = True
    for label, result in passes:
        passed = result["charts"] < CHARTS_TARGET_S
        ok = ok and passed
        print(
            f"charts per report (median), {label}: {result['charts']:.3f} s, "
            f"target < {CHARTS_TARGET_S} s: {'PASS' if passed else 'MISS'}"
        )
    if len(passes) == 2:
        print(f"  ratio, processes / thread: {passes[1][1]['charts'] / inline['charts']:.2f}x")
    for label, result in passes:
        rss = result["rss"]
        last = max(rss)
        base = 10 if last > 10 else 0  # from the 10th report; for short runs, from the warm-up
        growth = rss[last] - rss[base]
        child = result["child_rss"][last] - result["child_rss"][base]
        passed = growth < RSS_GROWTH_LIMIT_MIB and child < RSS_GROWTH_LIMIT_MIB
        ok = ok and passed
        extra = f", chart processes {child:+.1f} MiB" if result["child_rss"][last] else ""
        print(
            f"memory growth from report {base} to {last}, {label}: {growth:+.1f} MiB{extra}, "
            f"limit {RSS_GROWTH_LIMIT_MIB:.0f} MiB: {'PASS' if passed else 'MISS'}"
        )
    print(f"peak resident memory of this process: {peak_rss_mib():.1f} MiB")

    if args.keep:
        print(f"\nproject kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
