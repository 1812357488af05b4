"""Benchmark: render many reports in one process and watch time per stage and memory.

Run from anywhere::

    python benchmarks/bench_render.py [--reports 100] [--rows 200000] [--pdf] [--keep]

What it does:

1. Makes (once; cached by row count in ``benchmarks/.data/``) a deterministic
   orders table as Parquet, generated inside DuckDB: order_ts, order_date,
   region (5), channel (4), revenue, status.
2. Writes a throwaway project with one pipeline: a KPI query (3 metrics), and
   four charts — revenue per day and region over 60 days (line, 5 series),
   revenue by region (bar, sorted), by channel (barh) and orders per day
   (area) — plus a data table.  Markdown and HTML (and PDF with ``--pdf``).
3. Calls :func:`eil_pipelines.run_pipeline` in this process for ``--reports``
   consecutive days, as the scheduler's worker threads do, each into the same
   reports folder (so the write stage also rebuilds the growing report site).
4. Prints, per report, the median and 90th percentile of each stage of
   ``RunResult.stages`` (query / charts / template / pdf / write), the resident
   memory after 10, 50 and 100 reports and the peak, and two verdicts:

   * charts of a typical report (the median charts stage) under 0.5 s;
   * memory does not grow with the number of reports: RSS after the last
     report is within 30 MiB of RSS after the 10th (figures closed, nothing
     kept between runs).

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=100, help="reports to render (100)")
    parser.add_argument("--rows", type=int, default=200_000, help="orders rows (200,000)")
    parser.add_argument("--pdf", action="store_true", help="also render the PDF of each report")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    args = parser.parse_args(argv)

    from eil_pipelines import load_pipeline, make_context, run_pipeline

    data = orders_parquet(args.rows)
    root = Path(tempfile.mkdtemp(prefix="eil-bench-render-"))
    formats = '["md", "html", "pdf"]' if args.pdf else '["md", "html"]'
    text = PIPELINE.replace("{orders}", "'" + str(data).replace("'", "''") + "'")
    text = text.replace("{formats}", formats)
    (root / "pipelines").mkdir()
    (root / "pipelines" / "bench.toml").write_text(text)
    pipeline = load_pipeline(root / "pipelines" / "bench.toml", root=root)
    reports = root / "reports"
    first_day = datetime(2026, 3, 1, 7, tzinfo=ZoneInfo("Europe/Berlin"))

    print(
        f"eil-pipelines render benchmark: {args.reports} reports, 4 charts each, "
        f"{args.rows:,} orders rows, formats {formats}"
    )
    print(f"python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs\n")

    # One untimed warm-up: imports, font cache, DuckDB's first connection.
    warm = run_pipeline(pipeline, make_context(pipeline, first_day - timedelta(days=1)), reports)
    if not warm.ok:
        print(f"warm-up run failed: {warm.error}")
        return 1
    gc.collect()
    rss = {0: rss_mib()}
    stages: dict[str, list[float]] = {
        k: [] for k in ("query", "charts", "template", "pdf", "write")
    }
    totals = []
    t_all = time.perf_counter()
    for i in range(1, args.reports + 1):
        ctx = make_context(pipeline, first_day + timedelta(days=i - 1))
        result = run_pipeline(pipeline, ctx, reports)
        if not result.ok:
            print(f"report {i} failed: {result.error}")
            return 1
        totals.append(result.duration)
        for name in stages:
            stages[name].append(getattr(result.stages, name, 0.0))
        if i in (10, 50, 100) or i == args.reports:
            gc.collect()
            rss[i] = rss_mib()
    wall = time.perf_counter() - t_all

    print("per report (seconds)   median      p90      max")
    for name, values in stages.items():
        if name == "pdf" and not args.pdf:
            continue
        print(
            f"  {name:<18} {statistics.median(values):9.3f} {pct(values, 0.9):8.3f} "
            f"{max(values):8.3f}"
        )
    print(
        f"  {'total':<18} {statistics.median(totals):9.3f} {pct(totals, 0.9):8.3f} "
        f"{max(totals):8.3f}"
    )
    print(f"\n{args.reports} reports in {wall:.1f} s ({args.reports / wall:.1f} reports/s)")

    print("\nresident memory (MiB)")
    print(f"  after warm-up        {rss[0]:8.1f}")
    for count in sorted(k for k in rss if k):
        print(f"  after {count:>4} reports   {rss[count]:8.1f}")
    print(f"  peak                 {peak_rss_mib():8.1f}")

    charts = statistics.median(stages["charts"])
    last = max(rss)
    base = 10 if last > 10 else 0  # from the 10th report; for short runs, from the warm-up
    growth = rss[last] - rss[base]
    charts_ok = charts < CHARTS_TARGET_S
    memory_ok = growth < RSS_GROWTH_LIMIT_MIB
    print(
        f"\ncharts per report (median) {charts:.3f} s, target < {CHARTS_TARGET_S} s: "
        f"{'PASS' if charts_ok else 'MISS'}"
    )
    print(
        f"memory growth from report {base} to {last}: {growth:+.1f} MiB, "
        f"limit {RSS_GROWTH_LIMIT_MIB:.0f} MiB: {'PASS' if memory_ok else 'MISS'}"
    )

    if args.keep:
        print(f"\nproject kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if charts_ok and memory_ok else 1


if __name__ == "__main__":
    sys.exit(main())
