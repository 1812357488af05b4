"""Benchmark ``eil-run --once`` against the same work written by hand.

Run from anywhere::

    python benchmarks/bench_once.py [--rows 10000000] [--rounds 5] [--profile]

What it does, in one run:

1. Makes (once; cached by row count in ``benchmarks/.data/``) a deterministic
   orders table as Parquet, generated inside DuckDB from ``range()`` with
   hash-based pseudo-random columns: order_id, order_ts, order_date, region,
   channel, product, revenue, status.  Rows are in time order, as an
   append-only orders table is.
2. Writes a throwaway project (``tempfile.mkdtemp``) holding
   ``pipelines/bench.toml``: two queries (yesterday's KPIs against the day
   before; daily revenue by region over 90 days), two metrics, two charts (a
   line with one series per region, a bar by region), Markdown and HTML.
3. Times, alternating for ``--rounds`` rounds after one untimed warm-up of
   each, with ``time.perf_counter`` around ``subprocess.run``:

   (a) ``eil-run --once <project>/pipelines --at 2026-11-28T07:00``, the real
       console script (not a pyenv shim, which adds ~0.3 s of bash);
   (b) a fresh ``python -c`` doing the same work by hand: import duckdb,
       pandas and matplotlib (``Figure`` API), run the same two SQL
       statements with the same bound values, draw the same two charts, save
       each as PNG (files) and SVG (inlined in the HTML), write a small
       Markdown and HTML report.

   It prints each round (wall and CPU time), the median and the best, and
   the median ratio (a)/(b) of wall times against the target.
4. Times (median of 7) ``eil-run --help`` and ``eil-run validate
   <repo>/pipelines`` against their target, with ``python -c pass`` and
   ``python -c "import pandas, matplotlib, duckdb"`` as the baseline.

Every timed process keeps bytecode in ``benchmarks/.data/pycache`` (see
:func:`child_env`), as an installed package has ``.pyc`` files even where
``PYTHONDONTWRITEBYTECODE`` is set; ``--no-bytecode-cache`` runs them with the
environment as it is.

``--profile`` adds where the time of (a) goes: import time by package
(``-X importtime``) against the hand-written script and for ``validate``, and
a cold run phase by phase, from interpreter start to exit, with the stages of
``RunResult.stages``.

This is a benchmark, not a test: nothing imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = HERE / ".data"

#: Bump when the generator below changes, so a stale cached file is not reused.
DATA_VERSION = 1

AT = "2026-11-28T07:00"
#: What eil-run binds for a ``period = "day"`` run at ``AT`` (naive, pipeline zone):
#: the period is 27 Nov 2026, the previous period 26 Nov.  The hand-written
#: script binds exactly these values.
BOUND = {
    "period_start": "2026-11-27 00:00:00",
    "period_end": "2026-11-28 00:00:00",
    "prev_period_start": "2026-11-26 00:00:00",
}

#: Where the child processes keep their bytecode (see :func:`child_env`).
PYCACHE = DATA_DIR / "pycache"

#: The environment of every timed process; set by :func:`child_env`.
CHILD_ENV: dict[str, str] = dict(os.environ)

TARGET_RATIO = 1.15
TARGET_CLI = 0.3
CLI_REPEATS = 7

# --- data ----------------------------------------------------------------------

GENERATE_SQL = """
COPY (
    WITH o AS (
        SELECT
            i AS order_id,
            TIMESTAMP '2024-01-01'
                + to_microseconds(
                    CAST(i * ($span_us / $rows) AS BIGINT)
                    + CAST(hash(i, 'ts') % 1000000 AS BIGINT)
                ) AS order_ts,
            hash(i, 'region') % 100 AS r,
            hash(i, 'channel') % 4 AS c,
            hash(i, 'product') % 200 AS p,
            hash(i, 'revenue') % 100000 AS v,
            hash(i, 'status') % 100 AS s
        FROM range($rows) AS t(i)
    )
    SELECT
        order_id,
        order_ts,
        CAST(order_ts AS DATE) AS order_date,
        CASE
            WHEN r < 38 THEN 'North America'
            WHEN r < 68 THEN 'EMEA'
            WHEN r < 88 THEN 'APAC'
            WHEN r < 96 THEN 'LATAM'
            ELSE 'Middle East'
        END AS region,
        ['Web', 'Mobile app', 'Marketplace', 'Retail'][CAST(c AS INTEGER) + 1] AS channel,
        'P-' || lpad(CAST(p AS VARCHAR), 3, '0') AS product,
        -- 5 to 1,005, a little higher at weekends and growing 30% over the years.
        round(
            (5 + v / 100.0)
            * (CASE WHEN isodow(order_ts) >= 6 THEN 1.15 ELSE 1.0 END)
            * (1 + 0.3 * order_id / $rows),
            2
        ) AS revenue,
        CASE WHEN s < 90 THEN 'completed' WHEN s < 96 THEN 'cancelled' ELSE 'refunded' END
            AS status
    FROM o
) TO $path (FORMAT parquet, COMPRESSION zstd)
"""

#: Three years of orders: 2024-01-01 up to 2027-01-01.
SPAN_US = (366 + 365 + 365) * 86_400 * 1_000_000


def orders_parquet(rows: int) -> tuple[Path, float | None]:
    """The cached Parquet file for ``rows`` rows, made now if missing; (path, seconds to make)."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"orders-v{DATA_VERSION}-{rows}.parquet"
    if path.exists():
        return path, None
    import duckdb

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    t0 = time.perf_counter()
    try:
        with duckdb.connect(":memory:") as con:
            con.execute("SET enable_progress_bar = false")
            con.execute(GENERATE_SQL, {"rows": rows, "span_us": float(SPAN_US), "path": str(tmp)})
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path, time.perf_counter() - t0


# --- the pipeline, and the same work by hand ---------------------------------------

# {orders} is replaced by the Parquet file's absolute path as a SQL string literal.
KPIS_SQL = """\
SELECT
    coalesce(sum(revenue) FILTER (WHERE order_ts >= $period_start AND status = 'completed'), 0)
        AS revenue,
    coalesce(sum(revenue) FILTER (WHERE order_ts < $period_start AND status = 'completed'), 0)
        AS prev_revenue,
    count(*) FILTER (WHERE order_ts >= $period_start AND status = 'completed') AS orders,
    count(*) FILTER (WHERE order_ts < $period_start AND status = 'completed') AS prev_orders
FROM {orders}
WHERE order_ts >= $prev_period_start AND order_ts < $period_end
"""

DAILY_SQL = """\
SELECT order_date AS day, region, sum(revenue) AS revenue
FROM {orders}
WHERE status = 'completed'
  AND order_ts >= $period_end - INTERVAL 90 DAY
  AND order_ts < $period_end
GROUP BY ALL
ORDER BY day, region
"""

PIPELINE_TOML = '''\
title = "Daily Sales (benchmark)"
description = "How did we sell yesterday, and how did each region do over 90 days?"

[schedule]
cron = "0 7 * * *"
timezone = "Europe/Berlin"
period = "day"

[queries.kpis]
sql = """
{kpis}"""

[queries.daily]
sql = """
{daily}"""

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
format = "number"

[[charts]]
name = "revenue_trend"
query = "daily"
type = "line"
x = "day"
y = "revenue"
series = "region"
title = "Daily revenue by region, last 90 days"
format = "compact"

[[charts]]
name = "revenue_by_region"
query = "daily"
type = "bar"
x = "region"
y = "revenue"
title = "Revenue by region, last 90 days"
format = "currency"

[report]
formats = ["md", "html"]
'''

# The same work written by hand, as a user would without eil-pipelines: the
# same queries and bound values, the same two charts at the same size and dpi
# (constrained layout, a date axis, value formatters, a legend, bar labels),
# PNG files for the Markdown and SVG inlined in the HTML, a KPI list with
# changes, a data table.  argv: Parquet path, output folder.
HAND_WRITTEN = """
import html
import io
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import matplotlib.dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

orders, out = sys.argv[1], Path(sys.argv[2])
KPIS = {kpis!r}
DAILY = {daily!r}
orders_sql = "'" + orders.replace("'", "''") + "'"
start = datetime.fromisoformat({period_start!r})
end = datetime.fromisoformat({period_end!r})
prev_start = datetime.fromisoformat({prev_period_start!r})

con = duckdb.connect(":memory:")
kpis = con.execute(
    KPIS.format(orders=orders_sql),
    {{"period_start": start, "period_end": end, "prev_period_start": prev_start}},
).df()
daily = con.execute(DAILY.format(orders=orders_sql), {{"period_end": end}}).df()
con.close()


def compact(v, pos=None):
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= size:
            return f"{{v / size:.1f}}{{unit}}"
    return f"{{v:.0f}}"


def money(v, pos=None):
    return "$" + compact(v)


def style(fig, ax, title):
    fig.suptitle(title, x=0.01, ha="left", fontsize=13, fontweight="bold")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#E3E3E3", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=9, colors="#5F5F5F")


charts = {{}}

wide = daily.pivot_table(index="day", columns="region", values="revenue", aggfunc="sum")
wide = wide[wide.sum().sort_values(ascending=False).index]
fig = Figure(figsize=(8.0, 3.6), dpi=100, facecolor="white", layout="constrained")
ax = fig.add_subplot()
for region in wide.columns:
    ax.plot(wide.index, wide[region], linewidth=2, label=region)
    ax.annotate(
        compact(wide[region].iloc[-1]), (1.0, wide[region].iloc[-1]),
        xycoords=ax.get_yaxis_transform(), xytext=(5, 0), textcoords="offset points",
        va="center", fontsize=9.5, fontweight="bold",
    )
locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
ax.xaxis.set_major_locator(locator)
ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
ax.yaxis.set_major_formatter(FuncFormatter(compact))
ax.margins(x=0.01, y=0.1)
ax.legend(loc="lower left", bbox_to_anchor=(0, 1.02), ncols=len(wide.columns), frameon=False)
style(fig, ax, "Daily revenue by region, last 90 days")
charts["revenue_trend"] = fig

by_region = daily.groupby("region")["revenue"].sum().sort_values(ascending=False)
fig = Figure(figsize=(8.0, 3.6), dpi=100, facecolor="white", layout="constrained")
ax = fig.add_subplot()
bars = ax.bar(by_region.index, by_region.to_numpy(), width=0.65, color="#0072B2")
ax.bar_label(bars, labels=[money(v) for v in by_region], padding=3, fontsize=8.5)
ax.yaxis.set_major_formatter(FuncFormatter(money))
ax.margins(x=0.01, y=0.1)
style(fig, ax, "Revenue by region, last 90 days")
charts["revenue_by_region"] = fig

stamp = "2026-11-28"
(out / f"{{stamp}}_charts").mkdir(parents=True, exist_ok=True)
svgs = {{}}
for name, fig in charts.items():
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", facecolor="white")
    text = buffer.getvalue().decode("utf-8")
    svgs[name] = text[text.index("<svg"):]
    fig.savefig(out / f"{{stamp}}_charts" / f"{{name}}.png", format="png", dpi=100, facecolor="white")

row = kpis.iloc[0]
figures = []
for label, col, prev, fmt in (
    ("Revenue", "revenue", "prev_revenue", "${{:,.0f}}"),
    ("Orders", "orders", "prev_orders", "{{:,.0f}}"),
):
    now, before = float(row[col]), float(row[prev])
    change = f"{{(now / before - 1):+.1%}}" if before else "n/a"
    figures.append((label, fmt.format(now), change, fmt.format(before)))
table = by_region.reset_index()

md = ["# Daily Sales", "", "Period: 27 Nov 2026", "", "## Key figures", ""]
md += [f"- **{{lb}}** {{v}} {{c}} vs {{p}}" for lb, v, c, p in figures]
md += ["", "## Charts", ""]
md += [f"![{{name}}]({{stamp}}_charts/{{name}}.png)" for name in charts]
md += ["", "## Revenue by region", "", "| region | revenue |", "| --- | ---: |"]
md += [f"| {{r.region}} | {{r.revenue:,.2f}} |" for r in table.itertuples()]
(out / f"{{stamp}}.md").write_text("\\n".join(md) + "\\n", encoding="utf-8")

page = ["<!doctype html><html><head><meta charset=utf-8><title>Daily Sales</title></head><body>"]
page += ["<h1>Daily Sales</h1><p>Period: 27 Nov 2026</p><h2>Key figures</h2><ul>"]
page += [
    f"<li><b>{{html.escape(lb)}}</b> {{html.escape(v)}} {{c}} vs {{html.escape(p)}}</li>"
    for lb, v, c, p in figures
]
page += ["</ul><h2>Charts</h2>", *svgs.values(), "<h2>Revenue by region</h2><table>"]
page += [
    f"<tr><td>{{html.escape(r.region)}}</td><td>{{r.revenue:,.2f}}</td></tr>"
    for r in table.itertuples()
]
page += ["</table></body></html>"]
(out / f"{{stamp}}.html").write_text("\\n".join(page), encoding="utf-8")
"""


def sql_string(path: Path) -> str:
    """``path`` as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def toml_multiline(text: str) -> str:
    """``text`` made safe inside a TOML multi-line basic string."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def write_project(orders: Path) -> Path:
    """A throwaway project whose one pipeline reads ``orders``; returns its root."""
    root = Path(tempfile.mkdtemp(prefix="eil-bench-"))
    (root / "pipelines").mkdir()
    # Queries read files only inside their project: the data goes in (a hard
    # link where the file systems allow it, else a copy; a symlink is refused).
    (root / "data").mkdir()
    inside = root / "data" / orders.name
    try:
        os.link(orders, inside)
    except OSError:
        shutil.copyfile(orders, inside)
    literal = sql_string(inside)
    toml = PIPELINE_TOML.format(
        kpis=toml_multiline(KPIS_SQL.format(orders=literal)),
        daily=toml_multiline(DAILY_SQL.format(orders=literal)),
    )
    (root / "pipelines" / "bench.toml").write_text(toml, encoding="utf-8")
    (root / "by_hand").mkdir()
    return root


def check_bound_values(project: Path) -> None:
    """Stop unless eil-run binds exactly :data:`BOUND` for the pipeline at ``AT``."""
    from datetime import datetime

    from eil_pipelines.run.context import make_context
    from eil_pipelines.spec import load_pipelines

    [pipeline] = load_pipelines(project / "pipelines")
    params = make_context(pipeline, datetime.fromisoformat(AT)).params()
    got = {name: str(params[name]) for name in BOUND}
    if got != BOUND:
        sys.exit(f"benchmark: eil-run would bind {got}, the hand-written script {BOUND}")


def hand_written_code() -> str:
    return HAND_WRITTEN.format(kpis=KPIS_SQL, daily=DAILY_SQL, **BOUND)


# --- running things ---------------------------------------------------------------


def child_env(bytecode_cache: bool) -> str:
    """Set :data:`CHILD_ENV`; return a line describing the bytecode setting.

    An installed package ships ``.pyc`` files, and an editable one writes them
    on first import, unless ``PYTHONDONTWRITEBYTECODE`` is set: then every
    start compiles eil_pipelines from source.  By default the children keep
    bytecode in ``benchmarks/.data/pycache`` (``PYTHONPYCACHEPREFIX``), which
    leaves the source tree untouched.
    """
    CHILD_ENV.clear()
    CHILD_ENV.update(os.environ)
    dont_write = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    if not bytecode_cache:
        state = "PYTHONDONTWRITEBYTECODE set" if dont_write else "Python's default"
        return f"as the environment has it ({state})"
    CHILD_ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    CHILD_ENV["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    note = "; PYTHONDONTWRITEBYTECODE was set and is dropped" if dont_write else ""
    return f"cached in {PYCACHE.relative_to(REPO)} (PYTHONPYCACHEPREFIX){note}"


def eil_run_command() -> list[str]:
    """The real ``eil-run`` console script beside the interpreter, else ``python -m``.

    ``shutil.which("eil-run")`` may find a pyenv shim, a bash script that adds
    about 0.3 s to every start.
    """
    script = Path(sys.executable).parent / "eil-run"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "eil_pipelines"]


def timed(cmd: Sequence[str], *, check: bool = True) -> tuple[float, float]:
    """(wall, CPU) seconds of ``cmd`` run to completion; output discarded (shown on failure).

    CPU is the child's user + system time: less disturbed than wall time when
    other work shares the machine.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=CHILD_ENV)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if check and proc.returncode != 0:
        sys.exit(
            f"benchmark: command failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"{proc.stdout}{proc.stderr}"
        )
    return wall, cpu


def median_of(cmd: Sequence[str], repeats: int = CLI_REPEATS) -> float:
    timed(cmd)  # warm the OS file cache and the .pyc files
    return statistics.median(timed(cmd)[0] for _ in range(repeats))


def row_text(r: Sequence[float]) -> str:
    """One line of the rounds table: wall a, b, ratio, CPU a, b, ratio."""
    return f"{r[0]:>18.3f} s{r[1]:>12.3f} s{r[2]:>10.3f}{r[3]:>10.3f} s{r[4]:>8.3f} s{r[5]:>10.3f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --- the machine -----------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def machine_lines() -> list[str]:
    cpuinfo = _read("/proc/cpuinfo")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', _read("/etc/os-release"), re.M)
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    libs = ", ".join(
        f"{d} {version(d)}"
        for d in ("duckdb", "pandas", "matplotlib", "numpy", "pyarrow", "eil-pipelines")
    )
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"CPU       {model.group(1).strip() if model else platform.processor() or '?'}",
        f"cores     {cores} (usable by this process: {usable})",
        f"RAM       {int(mem.group(1)) / 1024**2:.1f} GiB" if mem else "RAM       ?",
        f"OS        {os_name.group(1) if os_name else platform.system()}, "
        f"kernel {platform.release()} ({platform.machine()})",
        f"Python    {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})",
        f"libraries {libs}",
        f"load avg  {load} (1, 5, 15 min, at start)",
    ]


# --- profiling ---------------------------------------------------------------------


def import_by_package(cmd: Sequence[str]) -> dict[str, float]:
    """Seconds of ``python -X importtime`` self time, summed by top-level package."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd],
        capture_output=True,
        text=True,
        check=False,
        env=CHILD_ENV,
    )
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if m:
            package = m.group(2).split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(m.group(1)) / 1e6
    return totals


def import_profile(columns: dict[str, Sequence[str]], top: int, repeats: int = 3) -> None:
    """Print import time by package for each command (medians), largest first.

    With two columns, a third shows what the first imports beyond the second.
    """
    runs = {
        label: [import_by_package(cmd) for _ in range(repeats)] for label, cmd in columns.items()
    }
    names = {n for label in runs for d in runs[label] for n in d}

    def med(label: str, name: str | None) -> float:
        if name is None:
            return statistics.median(sum(d.values()) for d in runs[label])
        return statistics.median(d.get(name, 0.0) for d in runs[label])

    labels = list(columns)
    pair = len(labels) == 2

    def key(name: str) -> float:
        return -(med(labels[0], name) - (med(labels[1], name) if pair else 0.0))

    print(
        f"  {'package':<24}"
        + "".join(f"{label:>10}" for label in labels)
        + (f"{'extra':>10}" if pair else "")
    )
    for name in [*sorted(names, key=key)[:top], None]:
        values = [med(label, name) for label in labels]
        line = f"  {name or 'all imports':<24}" + "".join(f"{v:>9.3f}s" for v in values)
        if pair:
            line += f"{values[0] - values[1]:>+9.3f}s"
        print(line)


PHASES_CODE = """
import time
t0, epoch0 = time.perf_counter(), time.time()
import sys
from datetime import datetime
from pathlib import Path

from eil_pipelines.run.batch import run_once
from eil_pipelines.spec import load_pipelines

pipelines = load_pipelines(Path(sys.argv[1]))
t1 = time.perf_counter()
[r] = run_once(pipelines, reports_dir=Path(sys.argv[2]), at=datetime.fromisoformat(sys.argv[3]))
assert r.ok, r.error
s = r.stages
print(epoch0, t1 - t0, s.query, s.charts, s.template, s.write, time.perf_counter() - t1, time.time())
"""


def phase_profile(project: Path, repeats: int = 5) -> None:
    """Print where a cold ``--once`` run's wall time goes, from process start to exit."""
    labels = [
        "interpreter start (to the first line)",
        "import eil_pipelines + load_pipelines",
        "query (incl. importing duckdb, pandas)",
        "charts (incl. importing matplotlib)",
        "template (incl. jinja2, markdown-it)",
        "write (staging, fsync, rename)",
        "rest of run_once",
        "interpreter exit (finalisation)",
        "total wall",
    ]
    runs = []
    cmd = [sys.executable, "-c", PHASES_CODE, str(project / "pipelines")]
    cmd += [str(project / "reports-profile"), AT]
    for _ in range(repeats + 1):
        spawned = time.time()
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=CHILD_ENV)
        wall, exited = time.perf_counter() - t, time.time()
        if proc.returncode != 0:
            print(f"  profile run failed: {proc.stderr.strip()}")
            return
        epoch0, load, query, charts, template, write, run, ended = map(float, proc.stdout.split())
        rest = run - query - charts - template - write
        runs.append([epoch0 - spawned, load, query, charts, template, write, rest, exited - ended])
        runs[-1].append(wall)
    runs = runs[1:]  # the first warms the file cache
    for i, label in enumerate(labels):
        values = [r[i] for r in runs]
        print(f"  {label:<46}{statistics.median(values):>7.3f} s")


# --- main ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="orders (default 10M)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument(
        "--profile", action="store_true", help="also show where eil-run's time goes"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run the children with the environment as it is (see child_env)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.rounds < 1:
        parser.error("--rows and --rounds must be at least 1")

    print("eil-pipelines benchmark: eil-run --once against the same work by hand")
    print()
    for line in machine_lines():
        print(f"  {line}")
    print()

    orders, made_in = orders_parquet(args.rows)
    size = orders.stat().st_size / 1024**2
    how = f"generated in {made_in:.1f} s" if made_in is not None else "cached"
    print(f"data      {orders.relative_to(REPO)}: {args.rows:,} rows, {size:.0f} MiB ({how})")

    eil = eil_run_command()
    project = write_project(orders)
    print(f"project   {project} (pipelines/bench.toml: 2 queries, 2 metrics, 2 charts)")
    print(f"eil-run   {' '.join(eil)}")
    print(f"bytecode  {child_env(not args.no_bytecode_cache)}")
    print()

    check_bound_values(project)
    run_a = [*eil, "--once", str(project / "pipelines"), "--at", AT]
    run_b = [sys.executable, "-c", hand_written_code(), str(orders), str(project / "by_hand")]
    try:
        timed(run_a)  # warm-up: file cache, .pyc files, font cache
        timed(run_b)
        print(
            f"{'round':<7}{'(a) eil-run --once':>20}{'(b) by hand':>14}{'(a)/(b)':>10}"
            f"{'CPU (a)':>12}{'CPU (b)':>10}{'(a)/(b)':>10}"
        )
        rounds = []
        for i in range(args.rounds):
            (a, cpu_a), (b, cpu_b) = timed(run_a), timed(run_b)
            rounds.append((a, b, a / b, cpu_a, cpu_b, cpu_a / cpu_b))
            print(f"{i + 1:<7}" + row_text(rounds[-1]))
        medians = tuple(statistics.median(r[k] for r in rounds) for k in range(6))
        best = [min(r[k] for r in rounds) for k in (0, 1, 3, 4)]
        print(f"{'median':<7}" + row_text(medians))
        print(
            f"{'best':<7}"
            + row_text((best[0], best[1], best[0] / best[1], best[2], best[3], best[2] / best[3]))
        )
        ratio = medians[2]
        print()
        print(
            f"ratio (a)/(b), wall time, median of {args.rounds} rounds: {ratio:.3f} "
            f"(target < {TARGET_RATIO}): {verdict(ratio < TARGET_RATIO)}"
        )
        print(
            f"  eil-run's overhead over the hand-written script: {medians[0] - medians[1]:+.3f} s "
            f"wall, {medians[3] - medians[4]:+.3f} s CPU (medians)"
        )
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"  load average after the rounds: {load} (1, 5, 15 min)")
        print()

        print(f"command wall time, median of {CLI_REPEATS}:")
        rows = [
            ("eil-run --help", [*eil, "--help"], True),
            (
                "eil-run validate <repo>/pipelines",
                [*eil, "validate", str(REPO / "pipelines")],
                True,
            ),
            ("python -c pass", [sys.executable, "-c", "pass"], False),
            (
                'python -c "import pandas, matplotlib, duckdb"',
                [sys.executable, "-c", "import pandas, matplotlib, duckdb"],
                False,
            ),
        ]
        for label, cmd, targeted in rows:
            t = median_of(cmd)
            note = f"  (target < {TARGET_CLI} s): {verdict(t < TARGET_CLI)}" if targeted else ""
            print(f"  {label:<46}{t:>7.3f} s{note}")

        if args.profile:
            print()
            print("import time by package, summed self time (-X importtime), median of 3:")
            once = ["-m", "eil_pipelines", "--once", str(project / "pipelines"), "--at", AT]
            import_profile({"eil-run": once, "by hand": run_b[1:]}, top=12)
            print()
            print("the same for eil-run validate <repo>/pipelines:")
            validate = ["-m", "eil_pipelines", "validate", str(REPO / "pipelines")]
            import_profile({"validate": validate}, top=8)
            print()
            print("a cold eil-run --once, phase by phase, median of 5 (a process each):")
            phase_profile(project)
    finally:
        if args.keep:
            print(f"\nkept {project}")
        else:
            shutil.rmtree(project, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
