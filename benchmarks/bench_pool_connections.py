"""50 pipelines on one connection name: connections opened, by pool size.

Runs 50 small pipelines (``source = "warehouse"``, two queries each) through
``run_once`` with 4 worker threads, twice in a row (as a scheduler would run
them again), and prints how many Postgres connections the pool opened and
how many the server saw.  The count follows ``pool_size``, not the number of
runs.  Without ``--url`` it starts a private PostgreSQL as the tests do::

    python benchmarks/bench_pool_connections.py [--pipelines 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent

PIPELINE = """
title = "Orders {i}"
source = "warehouse"
[queries.kpis]
sql = "SELECT count(*) AS orders FROM orders WHERE order_ts >= $period_start AND order_ts < $period_end"
[queries.regions]
sql = "SELECT region, count(*) AS orders FROM orders WHERE order_ts < $period_end GROUP BY region"
[[metrics]]
label = "Orders"
query = "kpis"
column = "orders"
[report]
formats = ["md"]
"""


def main() -> None:
    """Run and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=50)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "tests" / "sources"))
    import servers

    from eil_pipelines.run.batch import run_once
    from eil_pipelines.sources.pool import close_all, pools
    from eil_pipelines.spec import load_pipelines

    pg = servers.start_postgres()
    os.environ["PG_PASSWORD"] = servers.READER_PASSWORD
    try:
        print(f"{args.pipelines} pipelines x 2 rounds, 4 worker threads:")
        for size in (1, 2, 4):
            with tempfile.TemporaryDirectory() as folder:
                root = Path(folder)
                (root / "pipelines").mkdir()
                (root / "eil.toml").write_text(
                    "[connections.warehouse]\n"
                    f'url = "postgresql://reader:${{PG_PASSWORD}}@127.0.0.1:{pg.port}/analytics"\n'
                    f"pool_size = {size}\n"
                )
                for i in range(args.pipelines):
                    (root / "pipelines" / f"p{i:02d}.toml").write_text(PIPELINE.format(i=i))
                pipelines = load_pipelines(root / "pipelines")
                at = datetime(2026, 6, 3, 7, 0, tzinfo=ZoneInfo("UTC"))
                for _ in range(2):
                    results = run_once(pipelines, reports_dir=root / "reports", at=at, workers=4)
                    assert all(r.status == "succeeded" for r in results), results[0].error
                (pool,) = pools()
                with pg.admin() as conn:
                    seen = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'reader'"
                    ).fetchone()[0]
                print(
                    f"  pool_size={size}: {len(results) * 2} runs, "
                    f"{pool.opened} connections opened, {seen} open on the server"
                )
                close_all()
    finally:
        pg.server.remove()


if __name__ == "__main__":
    main()
