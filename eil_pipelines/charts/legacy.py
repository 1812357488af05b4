"""The previous version's chart helper, kept working on top of the new charts."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import pandas as pd

from ..outputs.atomic import atomic_write_bytes
from ..spec.models import ChartSpec
from .draw import draw_from
from .render import render_chart


def slug(text: str) -> str:
    """``"Sales Trend (EU)"`` → ``"sales-trend-eu"``: safe in a file name on every OS."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    out = re.sub(r"[^a-z0-9_]+", "-", ascii_text.lower()).strip("-_")
    return out or "chart"


def chart_sales_trend(
    df: pd.DataFrame,
    x: str,
    y: str | list[str],
    title: str | None = None,
    *,
    reports_dir: str | os.PathLike[str] = "reports",
) -> Path:
    """Draw a line chart of ``y`` over ``x`` and write it as a PNG.

    The file is ``<reports_dir>/charts/<slug of title, or of y>_<x>.png``; the
    folders are created and the file is replaced atomically, so a reader
    never sees half an image.  Returns the file's path.  Deprecated: declare
    a ``[[charts]]`` entry in a pipeline file instead.
    """
    ys = [y] if isinstance(y, str) else list(y)
    stem = slug(title) if title else slug("-".join(ys))
    name = f"{stem}_{slug(x)}"
    spec = ChartSpec(
        name=name.replace("_", "-"),
        query="legacy",
        type="line",
        x=x,
        y=y,
        title=title or f"{ys[0].replace('_', ' ').capitalize()} by {x.replace('_', ' ')}",
    )
    fig = draw_from(spec, df, currency="$", where="the data frame")
    image = render_chart(fig, "png")

    folder = Path(reports_dir) / "charts"
    return atomic_write_bytes(folder / f"{name}.png", image)
