"""Benchmark ``eil-run diff`` (and ``eil-run dev`` when it exists) for issue 17.

Run from anywhere::

    python benchmarks/bench_diff_dev.py [--pipelines 50] [--rounds 3] [--rows 20000] [--keep]

What it does:

1. Writes a throwaway git repository (``tempfile.mkdtemp``): ``--pipelines``
   pipelines, each a four-chart report (a KPI query, a daily query over 30
   days by region, a by-region query, a by-channel query; two metrics; a
   line, a bar, an area and a second bar chart) on one CSV of ``--rows``
   generated rows (deterministic), committed and tagged ``base``.  Then it
   changes the SQL of one pipeline (its revenue doubled) and commits.
2. **diff**: times ``eil-run diff pipelines/ --base base --head HEAD --at …
   --format json`` (the console script beside ``sys.executable``) for
   ``--rounds`` rounds after one untimed warm-up, checks from its JSON that it
   rendered exactly 2 reports (the touched pipeline, once per side) and that
   the change shows; times ``eil-run --once pipelines/<touched>.toml --at …``
   the same way, and prints the median diff time against 2 × the median
   ``--once`` time (the target: close to 1).
3. **dev** (when ``eil_pipelines.app.dev`` exists): from a template edit to
   the reloaded render with the queries cached, for the four-chart report
   (target < 0.5 s).

This is a benchmark, not a test: nothing imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AT = "2026-11-28T07:00"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}

PIPELINE = """
title = "Report {n}"
[schedule]
cron = "0 7 * * *"
timezone = "Europe/Berlin"
period = "day"
[queries.kpis]
sql = \"\"\"
SELECT
    sum(revenue) FILTER (WHERE d >= $period_start AND d < $period_end) AS revenue,
    sum(revenue) FILTER (WHERE d >= $prev_period_start AND d < $prev_period_end) AS prev_revenue,
    count(*) FILTER (WHERE d >= $period_start AND d < $period_end) AS orders,
    count(*) FILTER (WHERE d >= $prev_period_start AND d < $prev_period_end) AS prev_orders
FROM 'data/orders.csv'
\"\"\"
[queries.daily]
sql = \"\"\"
SELECT d AS day, region, sum(revenue) AS revenue FROM 'data/orders.csv'
WHERE d >= $period_end - INTERVAL 30 DAY AND d < $period_end
GROUP BY ALL ORDER BY day, region
\"\"\"
[queries.by_region]
sql = "SELECT region, sum(revenue) AS revenue FROM 'data/orders.csv' WHERE d < $period_end GROUP BY region ORDER BY region"
[queries.by_channel]
sql = "SELECT channel, count(*) AS orders FROM 'data/orders.csv' WHERE d < $period_end GROUP BY channel ORDER BY channel"
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
[[charts]]
name = "trend"
query = "daily"
x = "day"
y = "revenue"
series = "region"
[[charts]]
name = "regions"
query = "by_region"
x = "region"
y = "revenue"
type = "bar"
[[charts]]
name = "area"
query = "daily"
x = "day"
y = "revenue"
series = "region"
type = "area"
[[charts]]
name = "channels"
query = "by_channel"
x = "channel"
y = "orders"
type = "bar"
"""


def eil_command() -> list[str]:
    """The console script beside this interpreter, else ``python -m eil_pipelines``."""
    script = Path(sys.executable).parent / "eil-run"
    return [str(script)] if script.exists() else [sys.executable, "-m", "eil_pipelines"]


def git(root: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": str(root)}
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def make_repo(root: Path, pipelines: int, rows: int) -> str:
    """The repository, committed and tagged ``base``, then one pipeline changed; its name."""
    (root / "pipelines").mkdir(parents=True)
    (root / "data").mkdir()
    regions = ("north", "south", "east", "west", "central")
    channels = ("web", "store", "phone", "partner")
    lines = ["d,region,channel,revenue"]
    for i in range(rows):
        day = 1 + (i * 7919) % 60  # two months up to the end of November
        month, dom = (10, day) if day <= 31 else (11, day - 31)
        lines.append(
            f"2026-{month:02d}-{dom:02d},{regions[i % 5]},{channels[(i // 5) % 4]},"
            f"{(i * 2654435761) % 10000 / 100:.2f}"
        )
    (root / "data" / "orders.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for n in range(pipelines):
        text = PIPELINE.replace("{n}", str(n)).lstrip()
        (root / "pipelines" / f"report_{n:02d}.toml").write_text(text, encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    git(root, "tag", "base")
    touched = f"report_{pipelines // 3:02d}"
    path = root / "pipelines" / f"{touched}.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "sum(revenue) FILTER (WHERE d >= $period_start AND d < $period_end) AS revenue",
            "2 * sum(revenue) FILTER (WHERE d >= $period_start AND d < $period_end) AS revenue",
        ),
        encoding="utf-8",
    )
    git(root, "commit", "-q", "-am", "double one report's revenue")
    return touched


def timed(command: list[str], cwd: Path, ok: tuple[int, ...]) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return elapsed, done.stdout


def bench_diff(root: Path, touched: str, rounds: int) -> None:
    eil = eil_command()
    diff = [*eil, "diff", "pipelines", "--base", "base", "--head", "HEAD", "--at", AT]
    diff += ["--format", "json"]
    reports = root.parent / "once-reports"
    once = [*eil, "--once", f"pipelines/{touched}.toml", "--at", AT, "--reports", str(reports)]
    _, out = timed(diff, root, (1,))  # warm-up, and the checks
    data = json.loads(out)
    assert data["renders"] == 2, data["renders"]
    assert data["changed"] == [touched], data["changed"]
    timed(once, root, (0,))
    diffs, onces = [], []
    for _ in range(rounds):
        diffs.append(timed(diff, root, (1,))[0])
        onces.append(timed(once, root, (0,))[0])
    d, o = statistics.median(diffs), statistics.median(onces)
    print(f"diff, 1 of {len(list((root / 'pipelines').glob('*.toml')))} pipelines touched:")
    print(f"  renders: {data['renders']} (the touched pipeline, once per side)")
    print(f"  eil-run diff:       median {d:6.2f} s  ({', '.join(f'{x:.2f}' for x in diffs)})")
    print(f"  eil-run --once:     median {o:6.2f} s  ({', '.join(f'{x:.2f}' for x in onces)})")
    print(f"  diff / (2 x once):  {d / (2 * o):.2f}  (target: close to 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary repository")
    options = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}"
    )
    scratch = Path(tempfile.mkdtemp(prefix="bench-diff-"))
    try:
        root = scratch / "repo"
        touched = make_repo(root, options.pipelines, options.rows)
        bench_diff(root, touched, options.rounds)
        try:
            import eil_pipelines.app.dev  # noqa: F401
        except ImportError:
            print("dev: eil_pipelines.app.dev is not there yet: skipped")
        else:
            bench_dev(root, touched)
    finally:
        if options.keep:
            print(f"kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def bench_dev(root: Path, touched: str) -> None:
    """Template edit → reloaded render, queries cached (filled in with ``eil-run dev``)."""
    print("dev: not measured")


if __name__ == "__main__":
    main()
