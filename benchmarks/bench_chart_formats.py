"""Benchmark: chart time per report when every chart is encoded as SVG and PNG
always, against only the formats the report needs (issue 16).

Run from anywhere::

    python benchmarks/bench_chart_formats.py [--repeats 3]

What it does: draws the four charts of ``bench_render.py``'s report (a 60-day
line with 5 series, a bar, a barh and an area chart) from generated data, in
this thread, through the same path a run takes
(:func:`eil_pipelines.charts.work.render_job`), and times one report's charts
(median of ``--repeats`` warm rounds) for each kind of report:

* ``before``: SVG and PNG for every chart, whatever the report is;
* ``after``: what :func:`eil_pipelines.run.pipeline.draw_charts` asks for:
  the SVG when the report has HTML or PDF (the PDF is laid out from the HTML),
  the PNG when it has Markdown or an email delivery.

It also checks that each image is the same bytes either way, so the choice
changes the time and never the reports.  About a minute on a loaded 2-core VM.

This is a benchmark, not a test: nothing imports it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from eil_pipelines.charts.work import ChartJob, render_job
from eil_pipelines.spec.models import ChartSpec

#: (report kind, the formats a run encodes for it: svg, png).
REPORTS = [
    ('formats = ["html"]', True, False),
    ('formats = ["pdf"]', True, False),
    ('formats = ["md"]', False, True),
    ('formats = ["md", "html"]', True, True),
    ('formats = ["html"] + [[deliver]] email', True, True),
]


def charts() -> list[tuple[ChartSpec, pd.DataFrame]]:
    """The four charts of bench_render.py, on deterministic data."""
    rng = np.random.default_rng(16)
    days = pd.date_range("2026-01-01", periods=60, freq="D")
    regions = ["EMEA", "APAC", "AMER", "LATAM", "ANZ"]
    daily = pd.DataFrame(
        [(d, r, float(rng.uniform(50_000, 150_000))) for d in days for r in regions],
        columns=["day", "region", "revenue"],
    )
    by_region = daily.groupby("region", as_index=False)["revenue"].sum()
    by_channel = pd.DataFrame(
        {"channel": ["web", "store", "phone", "partner"], "revenue": [4.1e6, 2.2e6, 9e5, 4e5]}
    )
    orders = pd.DataFrame({"day": days, "orders": rng.integers(800, 1600, len(days))})
    return [
        (
            ChartSpec(
                name="revenue_by_day",
                query="daily",
                type="line",
                x="day",
                y="revenue",
                series="region",
                format="currency",
                title="Revenue by day and region, last 60 days",
            ),
            daily,
        ),
        (
            ChartSpec(
                name="revenue_by_region",
                query="by_region",
                type="bar",
                x="region",
                y="revenue",
                format="compact",
            ),
            by_region,
        ),
        (
            ChartSpec(
                name="revenue_by_channel",
                query="by_channel",
                type="barh",
                x="channel",
                y="revenue",
                format="compact",
            ),
            by_channel,
        ),
        (
            ChartSpec(name="orders_per_day", query="o", type="area", x="day", y="orders"),
            orders,
        ),
    ]


Charts = list[tuple[ChartSpec, pd.DataFrame]]


def report_charts(made: Charts, svg: bool, png: bool) -> tuple[float, list[tuple[bytes, bytes]]]:
    """Seconds to draw and encode one report's charts, and the images."""
    start = time.perf_counter()
    images = [render_job(ChartJob(spec, data, svg=svg, png=png)) for spec, data in made]
    elapsed = time.perf_counter() - start
    return elapsed, [(i.svg, i.png) for i in images]


def timed(
    made: Charts, svg: bool, png: bool, repeats: int
) -> tuple[float, list[tuple[bytes, bytes]]]:
    """Median seconds of ``repeats`` warm rounds (one warm-up round first)."""
    report_charts(made, svg, png)
    rounds = [report_charts(made, svg, png) for _ in range(repeats)]
    return statistics.median(r[0] for r in rounds), rounds[0][1]


def main(argv: list[str] | None = None) -> int:
    """Print the chart time per report, before and after, for each kind of report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args(argv)
    made = charts()
    measured = {
        (svg, png): timed(made, svg, png, options.repeats)
        for svg, png in {(s, p) for _, s, p in REPORTS} | {(True, True)}
    }
    both_s, both_images = measured[(True, True)]
    print(f"4 charts per report, drawn in this thread; median of {options.repeats} warm rounds")
    print(f"{'report':<42} {'before (svg+png)':>17} {'after':>8} {'encoded':>9} {'saved':>7}")
    for kind, svg, png in REPORTS:
        after_s, images = measured[(svg, png)]
        for (s, p), (bs, bp) in zip(images, both_images, strict=True):
            # The same bytes either way: the choice never changes a report.
            assert (not svg or s == bs) and (not png or p == bp), kind
        encoded = "+".join(name for name, on in (("svg", svg), ("png", png)) if on)
        saved = 1 - after_s / both_s
        print(f"{kind:<42} {both_s:>15.3f} s {after_s:>6.3f} s {encoded:>9} {saved:>6.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
