"""The previous version's report API, kept working on the new engine.

``build_executive_report`` renders with the built-in executive template and
writes through the same atomic writer as pipelines, so old callers get the
new report look for free.  New code should declare a pipeline file instead.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .charts import chart_sales_trend
from .charts.legacy import slug
from .outputs import atomic_write_text
from .render import ChartAsset, load_template, render_report

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["build_executive_report", "chart_sales_trend"]


def build_executive_report(
    title: str,
    question: str,
    sql: str,
    df: pd.DataFrame,
    insights: str | Iterable[str],
    charts: Iterable[str | os.PathLike[str]] | None = None,
    *,
    reports_dir: str | os.PathLike[str] = "reports",
    now: datetime | None = None,
) -> list[Path]:
    """Write ``reports/<slug>_<YYYYMMDD_HHMMSS>.md`` and ``.html`` and return their paths.

    The report holds the title, the question, the SQL, a table of ``df``, the
    insights (a list of sentences, or text with one per line) and the charts
    (PNG files, such as those :func:`chart_sales_trend` writes: linked from the
    Markdown, embedded in the HTML so it stays one self-contained file).
    """

    folder = Path(reports_dir)
    moment = now or datetime.now()
    stem = f"{slug(title)}_{moment.strftime('%Y%m%d_%H%M%S')}"
    if isinstance(insights, str):
        sentences = [line.strip(" -*\t") for line in insights.splitlines() if line.strip()]
    else:
        sentences = [str(s) for s in insights]

    assets = {}
    for index, chart in enumerate(charts or []):
        path = Path(chart)
        data = path.read_bytes()
        name = f"chart{index + 1}"
        assets[name] = ChartAsset(
            name=name,
            title=path.stem.replace("_", " ").replace("-", " ").capitalize(),
            alt=f"Chart: {path.stem.replace('_', ' ').replace('-', ' ')}",
            png_path=os.path.relpath(path.resolve(), folder.resolve()).replace(os.sep, "/"),
            svg=_png_as_svg(data),
        )

    context = {
        "pipeline": {"name": slug(title), "title": title, "description": question},
        "run": {"date": moment.date(), "time": moment, "id": stem},
        "params": {},
        "data": {"result": df},
        "charts": assets,
        "metrics": [],
        "insights": sentences,
        "sql": {"result": sql},
    }
    template = load_template(None)
    written = []
    for fmt in ("md", "html"):
        text = render_report(template, context, fmt)
        written.append(atomic_write_text(folder / f"{stem}.{fmt}", text))
    return written


def _png_as_svg(png: bytes) -> str:
    """Wrap a PNG in an ``<svg>`` so the HTML report embeds it like any chart."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("charts must be PNG files")
    width, height = struct.unpack(">II", png[16:24])
    encoded = base64.b64encode(png).decode("ascii")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><image width="{width}" height="{height}" '
        f'href="data:image/png;base64,{encoded}"/></svg>'
    )
