"""Figures to bytes: PNG files and SVG elements to inline in HTML.

Output is byte-identical for the same figure, in any thread and any process,
so re-running a report does not rewrite unchanged images and tests can
compare bytes.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from typing import Literal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .figure import ChartFigure
from .style import BACKGROUND, PNG_DPI, PNG_SCALE

ImageFormat = Literal["svg", "png"]

# Element ids, and the two ways matplotlib's SVG refers to them.
_IDS = re.compile(r'\sid="([^"]*)"')
_REFS = re.compile(r'href="#([^"]+)"|url\(#([^)]+)\)')
_DEFAULT_STYLE = re.compile(r"<style type=\"text/css\">\*\{([^}]*)\}</style>")


def render_chart(fig: Figure, fmt: ImageFormat, *, close: bool = True) -> bytes:
    """Render ``fig`` as ``"png"`` bytes or as an ``"svg"`` element, deterministically.

    SVG comes back as a bare ``<svg …>`` element (no XML declaration, no
    DOCTYPE, no metadata) ready to inline in HTML5: it carries ``role="img"``,
    an ``aria-label`` with the chart's summary (for figures from
    ``draw_chart``), and ids prefixed by the chart name so several charts can
    share a page.  PNG is rendered at 200 dpi (2× the layout's 100) without a
    "Software" stamp.

    The figure is released afterwards (``close=False`` keeps it, to render a
    second format); rendering a released figure raises ``ValueError``.
    """
    if fmt not in ("svg", "png"):
        raise ValueError(f'unknown chart image format "{fmt}": expected "svg" or "png"')
    if getattr(fig, "released", False):
        raise ValueError(
            "this figure was released by an earlier render_chart call; "
            "pass close=False to render it in more than one format"
        )
    if not isinstance(fig.canvas, FigureCanvasAgg):
        # An Agg canvas of this figure's own: nothing shared with other
        # threads, and its renderer (with the text measurements it caches)
        # serves the layout and the PNG alike.
        FigureCanvasAgg(fig)
    if isinstance(fig, ChartFigure):
        fig.lay_out()
    buffer = io.BytesIO()
    try:
        if fmt == "png":
            fig.savefig(
                buffer,
                format="png",
                dpi=PNG_DPI * PNG_SCALE,
                facecolor=BACKGROUND,
                metadata={"Software": None},
                # zlib level 3 instead of 6: encodes in 60% of the time for 9% more bytes.
                pil_kwargs={"compress_level": 3},
            )
            return buffer.getvalue()
        fig.savefig(
            buffer,
            format="svg",
            facecolor=BACKGROUND,
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
        return _inline_svg(
            buffer.getvalue().decode("utf-8"),
            name=getattr(fig, "chart_name", "chart"),
            label=getattr(fig, "summary", ""),
        ).encode("utf-8")
    finally:
        if close:
            release(fig)


def release(fig: Figure) -> None:
    """Drop the figure's artists so its memory is freed without waiting for the GC."""
    fig.clear()
    if isinstance(fig, ChartFigure):
        fig.released = True


def _inline_svg(text: str, *, name: str, label: str) -> str:
    """Turn matplotlib's SVG document into an element fit for an HTML page.

    matplotlib names ids after a per-process counter and, for clip paths and
    markers, after a hash salted with a random value unless the global
    ``svg.hashsalt`` is set.  Setting that global per call would race with
    other threads, so the ids are renamed here instead, in document order:
    deterministic, and unique per chart on a page.
    """
    start = text.index("<svg")
    body = re.sub(r"\s*<metadata>.*?</metadata>", "", text[start:], flags=re.S)
    # A root id from the global svg.id setting would clash with the one set below.
    root_end = body.index(">")
    body = _IDS.sub("", body[:root_end]) + body[root_end:]

    referenced = {a or b for a, b in _REFS.findall(body)}

    def strip_or_blank(m: re.Match[str]) -> str:
        # Unreferenced ids ("axes_1", "text_3", …) only add bytes and clashes.
        return ' id=""' if m.group(1) in referenced else ""

    skeleton = _REFS.sub("", _IDS.sub(strip_or_blank, body))
    # The prefix hashes the content without ids: stable across runs and
    # processes, different for two charts that happen to share a name.
    digest = hashlib.sha256(skeleton.encode("utf-8")).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "chart"
    prefix = f"eil-{slug}-{digest}"
    order: dict[str, str] = {}

    def new_id(old: str) -> str:
        return order.setdefault(old, f"{prefix}-{len(order)}")

    body = _IDS.sub(
        lambda m: f' id="{new_id(m.group(1))}"' if m.group(1) in referenced else "", body
    )
    body = _REFS.sub(
        lambda m: f'href="#{new_id(m.group(1))}"' if m.group(1) else f"url(#{new_id(m.group(2))})",
        body,
    )
    # matplotlib's "*{stroke-linejoin: round; …}" sheet would style the whole
    # HTML page, and a sheet scoped by id breaks when a page renames ids (or
    # an email client drops <style>).  As attributes of the root the same
    # defaults are inherited by every shape that does not set its own.
    defaults = ""
    sheet = _DEFAULT_STYLE.search(body)
    if sheet is not None:
        for declaration in sheet.group(1).split(";"):
            prop, _, value = (part.strip() for part in declaration.partition(":"))
            if re.fullmatch(r"[a-z-]+", prop) and re.fullmatch(r"[a-z0-9.#-]+", value):
                defaults += f' {prop}="{value}"'
        body = body[: sheet.start()] + body[sheet.end() :]
        body = re.sub(r"\s*<defs>\s*</defs>", "", body, count=1)
    attrs = f' id="{prefix}" role="img"{defaults}'
    if label:
        attrs += f' aria-label="{html.escape(label, quote=True)}"'
    body = body.replace("<svg", "<svg" + attrs, 1)
    return body.rstrip() + "\n"
