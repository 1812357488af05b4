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
            bench_dev(root, touched, options.rounds + 2)
    finally:
        if options.keep:
            print(f"kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


DEV_TEMPLATE = """# {{ pipeline.title }} ROUND

{% for m in metrics %}- {{ m.label }}: {{ m.text }} ({{ m.change_text }})
{% endfor %}

{{ charts.trend }}

{{ charts.regions }}

{{ charts.area }}

{{ charts.channels }}
"""


def bench_dev(root: Path, touched: str, rounds: int = 5) -> None:
    """Template edit → the event that makes the page reload → the reloaded report.

    In this process: the dev session and its server on 127.0.0.1, the watcher
    polling as ``eil-run dev`` does; the four-chart report of the touched
    pipeline, PATH the folder of all the pipelines.
    """
    import threading
    import urllib.request

    from eil_pipelines.app.dev import DevSession
    from eil_pipelines.web.dev import make_dev_server

    template = root / "templates" / "dev.md.j2"
    template.parent.mkdir(exist_ok=True)
    template.write_text(DEV_TEMPLATE.replace("ROUND", "0"), encoding="utf-8")
    pipeline = root / "pipelines" / f"{touched}.toml"
    text = pipeline.read_text(encoding="utf-8")
    pipeline.write_text(
        text.replace(
            "[queries.kpis]", '[report]\ntemplate = "templates/dev.md.j2"\n[queries.kpis]'
        ),
        encoding="utf-8",
    )
    from datetime import datetime

    session = DevSession(root / "pipelines", at=datetime.fromisoformat(AT))
    server = make_dev_server(session, 0)
    stop = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    watcher = threading.Thread(target=session.watch, args=(stop,))
    watcher.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        first = session.state(touched)
        print(f"dev, the four-chart report {touched} (PATH: the folder of all pipelines):")
        print(f"  first render: {first.seconds:.2f} s, {first.queries_run} queries run")
        events = urllib.request.urlopen(f"{base}/events/{touched}", timeout=60)
        events.readline(), events.readline()  # the current state
        times, renders = [], []
        for n in range(1, rounds + 1):
            time.sleep(0.3)  # not timed: the next edit lands in a later poll
            t = time.perf_counter()
            template.write_text(DEV_TEMPLATE.replace("ROUND", str(n)), encoding="utf-8")
            while not events.readline().startswith(b"data: "):
                pass
            html = urllib.request.urlopen(f"{base}/report/{touched}", timeout=60).read()
            times.append(time.perf_counter() - t)
            state = session.state(touched)
            assert f" {n}</h1>".encode() in html, html[:500]
            assert state.error is None, state.error
            assert (state.queries_run, state.charts_drawn) == (0, 0)
            renders.append(state.seconds)
        m = statistics.median(times)
        print(f"  re-render (queries and charts cached): median {statistics.median(renders):.3f} s")
        print(
            f"  save → event → reloaded report: median {m:.3f} s "
            f"({', '.join(f'{x:.3f}' for x in times)}); target < 0.5 s: "
            f"{'PASS' if m < 0.5 else 'MISS'}"
        )
        events.close()
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        watcher.join()


if __name__ == "__main__":
    main()
