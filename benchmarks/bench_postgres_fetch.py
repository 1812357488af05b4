"""Fetch a 1-million-row result from PostgreSQL into a DataFrame, four ways.

* the Postgres source (``eil_pipelines.sources.postgres``) as it runs a report's
  query: through ADBC when ``adbc-driver-postgresql`` is installed (the chosen
  path: read-only transaction, statement timeout, Arrow → pandas);
* the same source with ADBC turned off: psycopg 3 rows → ``DataFrame.from_records``;
* ADBC's Postgres driver alone (``adbc-driver-postgresql``): Arrow → ``to_pandas()``;
* ``pandas.read_sql`` through SQLAlchemy (psycopg dialect), the usual baseline.

Prints the best of ``--repeat`` times for each, the ratios, and the chosen
path's ratio against ``read_sql`` (the issue asks for several times faster).  Without
``--url`` it starts a private PostgreSQL like the tests do (Debian's
package, see ``tests/sources/servers.py``) and stops it at the end::

    python benchmarks/bench_postgres_fetch.py [--rows 1000000] [--url postgresql://…]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

QUERY = """
SELECT g AS order_id,
       timestamp '2024-01-01' + g * interval '1 minute' AS order_ts,
       (ARRAY['EMEA','APAC','LATAM','NA'])[1 + g % 4] AS region,
       (g % 97) * 1.25::float8 AS revenue,
       g % 5 AS quantity
FROM generate_series(1, {rows}) AS g
"""


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The fastest of ``repeat`` calls, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", help="a postgresql:// URL (default: start a private server)")
    args = parser.parse_args()

    server = None
    url = args.url
    if url is None:
        sys.path.insert(0, str(REPO / "tests" / "sources"))
        import servers

        server = servers.start_postgres()
        url = server.url("eil_admin", servers.ADMIN_PASSWORD)
    sql = QUERY.format(rows=args.rows)
    try:
        from datetime import timedelta

        from eil_pipelines.sources.postgres import PostgresSource, arrow_driver

        figures: dict[str, float] = {}
        chosen = "eil source (ADBC)" if arrow_driver() is not None else "eil source (psycopg)"
        with PostgresSource("bench", "bench", url, statement_timeout=timedelta(minutes=5)) as src:
            figures[chosen], frame = best(lambda: src.run("q", sql, {}), args.repeat)
            assert len(frame) == args.rows
            if arrow_driver() is not None:
                src.arrow = False
                figures["eil source, psycopg rows"], frame = best(
                    lambda: src.run("q", sql, {}), args.repeat
                )
                assert len(frame) == args.rows

        try:
            import adbc_driver_postgresql.dbapi as adbc

            with adbc.connect(url) as conn, conn.cursor() as cur:

                def fetch_adbc() -> Any:
                    cur.execute(sql)
                    return cur.fetch_arrow_table().to_pandas()

                figures["ADBC (Arrow → pandas)"], frame = best(fetch_adbc, args.repeat)
            assert len(frame) == args.rows
        except ImportError:
            print("ADBC: not installed (pip install adbc-driver-postgresql)")

        import pandas as pd
        import sqlalchemy

        engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            figures["pandas.read_sql (SQLAlchemy)"], frame = best(
                lambda: pd.read_sql(sqlalchemy.text(sql), conn), args.repeat
            )
        engine.dispose()
        assert len(frame) == args.rows
    finally:
        if server is not None:
            server.server.remove()

    baseline = figures["pandas.read_sql (SQLAlchemy)"]
    print(f"{args.rows:,} rows, best of {args.repeat}:")
    for name, seconds in figures.items():
        print(f"  {name:32} {seconds:7.3f} s   read_sql / this = {baseline / seconds:5.2f}x")
    print(f"chosen path: {chosen}, {baseline / figures[chosen]:.2f}x faster than pandas.read_sql")


if __name__ == "__main__":
    main()
