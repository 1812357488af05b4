"""``eil-run --once`` on a 10-million-row Postgres table against the same work by hand.

Run from anywhere::

    python benchmarks/bench_postgres_once.py [--rows 10000000] [--rounds 3] [--url postgresql://…]

What it does:

1. Without ``--url``, starts a private PostgreSQL as the tests do (Debian's
   package; ``tests/sources/servers.py``) and stops it at the end.  With
   ``--url`` (a role that may create tables) it uses that server.
2. Loads ``--rows`` orders into ``bench_orders``, generated on the server with
   ``generate_series`` (three years in time order, five regions, a status, a
   revenue), no index: the two queries scan the table, as a warehouse does.
3. Writes a throwaway project: ``eil.toml`` with connection ``warehouse``
   (password from ``${BENCH_PG_PASSWORD}``), and the two-query, two-chart
   pipeline of ``bench_once.py`` in Postgres spelling with
   ``source = "warehouse"``.
4. Times, alternating for ``--rounds`` rounds after one untimed warm-up of
   each: (a) ``eil-run --once`` and (b) a fresh ``python -c`` that runs the
   same two queries with the same bound values through the raw driver
   (psycopg, rows into ``pandas``), draws the same two charts with
   matplotlib's ``Figure`` API and writes the same Markdown and HTML
   (``bench_once.py``'s hand-written script).  Prints each round, the median
   ratio (a)/(b) and the target (at most 1.10).

This is a benchmark, not a test: nothing imports it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "sources"))

import bench_once  # noqa: E402  (its pipeline, hand-written charts and timing helpers)

TARGET_RATIO = 1.10
TABLE = "bench_orders"

LOAD_SQL = f"""
CREATE TABLE {TABLE} AS
SELECT
    i AS order_id,
    ts AS order_ts,
    ts::date AS order_date,
    (ARRAY['North America', 'EMEA', 'APAC', 'LATAM', 'Middle East'])[1 + (i * 7919) %% 5]
        AS region,
    round((5 + ((i * 104729) %% 100000) / 100.0)::numeric, 2)::float8 AS revenue,
    CASE WHEN (i * 31) %% 100 < 90 THEN 'completed'
         WHEN (i * 31) %% 100 < 96 THEN 'cancelled' ELSE 'refunded' END AS status
FROM generate_series(0::bigint, %(rows)s - 1) AS i,
     LATERAL (SELECT timestamp '2024-01-01'
                     + (i * (1096.0 * 86400 / %(rows)s)) * interval '1 second' AS ts) AS t
"""

KPIS_SQL = bench_once.KPIS_SQL.replace("{orders}", TABLE)
DAILY_SQL = (
    bench_once.DAILY_SQL.replace("{orders}", TABLE)
    .replace("INTERVAL 90 DAY", "INTERVAL '90 days'")
    .replace("GROUP BY ALL", "GROUP BY 1, 2")
)

# The raw driver's part of the hand-written script; the charts and the report
# are bench_once.py's, unchanged.  argv: connection URL, output folder.
HAND_WRITTEN_QUERIES = """
import html
import io
import sys
from datetime import datetime
from pathlib import Path

import matplotlib.dates as mdates
import pandas as pd
import psycopg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

url, out = sys.argv[1], Path(sys.argv[2])
# Naive, in the pipeline's zone, as eil-run binds them (bench_once.BOUND): a
# timestamptz parameter would make Postgres convert every row's order_ts.
start = datetime.fromisoformat({period_start!r})
end = datetime.fromisoformat({period_end!r})
prev_start = datetime.fromisoformat({prev_period_start!r})


def frame(cur, sql, params):
    cur.execute(sql, params)
    return pd.DataFrame.from_records(cur.fetchall(), columns=[c.name for c in cur.description])


with psycopg.connect(url) as conn, conn.cursor() as cur:
    kpis = frame(cur, {kpis!r}, {{"period_start": start, "period_end": end, "prev_period_start": prev_start}})
    daily = frame(cur, {daily!r}, {{"period_end": end}})
"""


def dollar_to_pyformat(sql: str) -> str:
    """``$name`` → ``%(name)s``, for psycopg (the queries hold no literal ``$`` or ``%``)."""
    import re

    return re.sub(r"\$(\w+)", r"%(\1)s", sql)


def hand_written_code() -> str:
    """The whole hand-written script: the raw driver's queries, then bench_once's charts."""
    head = HAND_WRITTEN_QUERIES.format(
        kpis=dollar_to_pyformat(KPIS_SQL), daily=dollar_to_pyformat(DAILY_SQL), **bench_once.BOUND
    )
    tail = bench_once.HAND_WRITTEN[bench_once.HAND_WRITTEN.index("\n\ndef compact(") :]
    return head + tail.format()


def load(admin_url: str, rows: int, reader: str | None) -> float:
    """Create ``bench_orders`` with ``rows`` rows; the seconds it took."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(LOAD_SQL, {"rows": rows})
        conn.execute(f"ANALYZE {TABLE}")
        if reader:
            conn.execute(f"GRANT SELECT ON {TABLE} TO {reader}")
    return time.perf_counter() - started


def write_project(url: str) -> tuple[Path, str]:
    """A throwaway project on connection ``warehouse``; (root, the password variable's value)."""
    parts = urlsplit(url)
    password = parts.password or ""
    safe = url.replace(f":{password}@", ":${BENCH_PG_PASSWORD}@", 1) if password else url
    root = Path(tempfile.mkdtemp(prefix="eil-bench-pg-"))
    (root / "pipelines").mkdir()
    (root / "by_hand").mkdir()
    (root / "eil.toml").write_text(f'[connections.warehouse]\nurl = "{safe}"\n', encoding="utf-8")
    toml = 'source = "warehouse"\n' + bench_once.PIPELINE_TOML.format(
        kpis=bench_once.toml_multiline(KPIS_SQL), daily=bench_once.toml_multiline(DAILY_SQL)
    )
    (root / "pipelines" / "bench.toml").write_text(toml, encoding="utf-8")
    return root, password


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", help="a postgresql:// URL that may create tables")
    args = parser.parse_args()
    if args.rows < 1 or args.rounds < 1:
        parser.error("--rows and --rounds must be at least 1")

    server = None
    url, reader_url, reader = args.url, args.url, None
    if url is None:
        import servers

        server = servers.start_postgres()
        url = server.url("eil_admin", servers.ADMIN_PASSWORD)
        reader_url, reader = server.url(), "reader"
    try:
        seconds = load(url, args.rows, reader)
        print(f"loaded {args.rows:,} rows into {TABLE} in {seconds:.1f} s")
        root, password = write_project(reader_url)
        bench_once.child_env(bytecode_cache=True)
        bench_once.CHILD_ENV["BENCH_PG_PASSWORD"] = password
        run_a = [
            *bench_once.eil_run_command(),
            "--once",
            str(root / "pipelines"),
            "--at",
            bench_once.AT,
            "--reports",
            str(root / "reports"),
        ]
        run_b = [sys.executable, "-c", hand_written_code(), reader_url, str(root / "by_hand")]
        bench_once.timed(run_a)  # warm-up: the server's cache, .pyc files, font cache
        bench_once.timed(run_b)
        print(f"{'round':<7}{'eil-run --once':>20}{'by hand':>14}{'ratio':>10}")
        ratios = []
        for i in range(args.rounds):
            (a, _), (b, _) = bench_once.timed(run_a), bench_once.timed(run_b)
            ratios.append(a / b)
            print(f"{i + 1:<7}{a:>18.3f} s{b:>12.3f} s{a / b:>10.3f}")
        ratio = statistics.median(ratios)
        verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
        print(f"median ratio {ratio:.3f} (target <= {TARGET_RATIO:.2f}): {verdict}")
    finally:
        if server is not None:
            server.server.remove()


if __name__ == "__main__":
    main()
