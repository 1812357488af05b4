"""Load the sample orders (``data/orders.parquet``) into a PostgreSQL database.

Creates (or replaces) the table ``orders`` with the sample's columns, copies
the rows with ``COPY``, and, with ``--grant ROLE``, lets a read-only role
select from it.  The URL comes from the command line or ``$EIL_SAMPLE_URL``
and is never printed::

    python scripts/load_sample_postgres.py postgresql://me@localhost/analytics --grant reporter

Then point a connection at the database (``docs/sources.md``) and run the
examples with ``source = "warehouse"``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ORDERS = REPO / "data" / "orders.parquet"

TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
}


def load(url: str, table: str = "orders", grant: str | None = None) -> int:
    """Copy the sample orders into ``table``; returns the number of rows."""
    import duckdb
    import psycopg
    from psycopg import sql

    rel = duckdb.sql(f"SELECT * FROM '{ORDERS}' ORDER BY order_id")
    columns = list(rel.columns)
    types = [TYPES.get(str(t), "text") for t in rel.types]
    rows = rel.fetchall()
    ddl = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
        for c, t in zip(columns, types, strict=True)
    )
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), ddl))
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
        if grant:
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO {}").format(
                    sql.Identifier(table), sql.Identifier(grant)
                )
            )
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="postgresql:// URL (default: $EIL_SAMPLE_URL)")
    parser.add_argument("--table", default="orders")
    parser.add_argument("--grant", metavar="ROLE", help="GRANT SELECT on the table to ROLE")
    args = parser.parse_args(argv)
    url = args.url or os.environ.get("EIL_SAMPLE_URL")
    if not url:
        parser.error("give a postgresql:// URL or set EIL_SAMPLE_URL")
    try:
        count = load(url, args.table, args.grant)
    except Exception as exc:  # the driver's message never holds the password
        print(f"load_sample_postgres: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"loaded {count:,} sample orders into table {args.table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
