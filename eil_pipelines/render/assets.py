"""Charts as the templates see them.

The charts stage hands the renderer one :class:`ChartAsset` per chart: the
PNG (linked from the Markdown report) and the SVG (inlined in the HTML
report, so the HTML file needs nothing beside it).  In a template,
``{{ charts.revenue }}`` prints the embed for the format being rendered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from .filters import TemplateDataError


@dataclass(frozen=True)
class ChartAsset:
    """One drawn chart, ready to embed."""

    name: str
    """The chart's name in the pipeline file; the template key (``charts.<name>``)."""

    title: str
    """Shown with the chart (the HTML ``<figcaption>``)."""

    alt: str
    """Text alternative for readers who cannot see the image."""

    png_path: str
    """Link from the report file to the PNG, such as ``2026-11-27_charts/revenue.png``."""

    svg: str
    """The ``<svg>`` element markup; an XML prolog before it is dropped."""


def chart_markdown(asset: ChartAsset) -> str:
    """``![alt](png_path)``, with the alt text and the link made safe for Markdown."""
    alt = " ".join(asset.alt.split())
    alt = re.sub(r"([\\\[\]])", r"\\\1", alt)
    return f"![{alt}]({quote(asset.png_path, safe='/._-~')})"


def chart_html(asset: ChartAsset) -> Markup:
    """A ``<figure class="chart">`` holding the inline SVG and a ``<figcaption>``.

    The SVG is trusted (our own charts stage drew it) and is cleaned so it
    can sit inside Markdown and beside other charts: no prolog, no
    metadata, no blank lines, ids made unique per chart, and an accessible
    name on the root.
    """
    slug = re.sub(r"[^A-Za-z0-9_-]", "-", asset.name) or "chart"
    svg = _clean_svg(asset, f"chart-{slug}")
    return Markup(
        '<figure class="chart" id="chart-{}">\n{}\n<figcaption>{}</figcaption>\n</figure>'
    ).format(slug, Markup(svg), asset.title)


def _clean_svg(asset: ChartAsset, prefix: str) -> str:
    start = asset.svg.find("<svg")
    if start < 0:
        raise TemplateDataError(f"chart {asset.name!r} has no <svg> element to embed")
    svg = asset.svg[start:].strip()
    # Matplotlib's metadata carries the drawing time: dropping it keeps reports reproducible.
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    # Markdown ends a raw HTML block at a blank line, which would cut the figure in two.
    svg = re.sub(r"\n[ \t]*(?=\n)", "", svg)
    svg = _scope_ids(svg, prefix)
    root = re.match(r"<svg\b[^>]*>", svg)
    assert root is not None
    # HTML parsers give inline SVG its namespaces; the URIs would only look like links.
    tag = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", root.group(0))
    svg = tag + svg[root.end() :]
    extra = ""
    if not re.search(r"\srole=", tag):
        extra += ' role="img"'
    if not re.search(r"\saria-label(ledby)?=", tag):
        extra += f' aria-label="{escape(asset.alt)}"'
    return "<svg" + extra + svg[4:]


def _scope_ids(svg: str, prefix: str) -> str:
    """Prefix every id and the references to it: two charts in one page both
    have ``id="figure_1"``, and a clip path of one must not clip the other."""
    ids = set(re.findall(r'\sid="([^"]+)"', svg))
    if not ids:
        return svg

    def rename(match: re.Match[str]) -> str:
        head, name, tail = match.group(1), match.group(2), match.group(3)
        return f"{head}{prefix}-{name}{tail}" if name in ids else match.group(0)

    return re.sub(r'(\sid="|url\(#|href="#)([^")]+)([")])', rename, svg)


class ChartEmbed:
    """A chart as a template value: prints as its embed for the format.

    Exposes ``name``, ``title``, ``alt`` and ``png_path`` for templates
    that lay a chart out themselves.
    """

    __slots__ = ("_asset", "_format")

    def __init__(self, asset: ChartAsset, fmt: str):
        self._asset = asset
        self._format = fmt

    @property
    def name(self) -> str:
        """The chart's name."""
        return self._asset.name

    @property
    def title(self) -> str:
        """The chart's title."""
        return self._asset.title

    @property
    def alt(self) -> str:
        """The text alternative."""
        return self._asset.alt

    @property
    def png_path(self) -> str:
        """The link to the PNG."""
        return self._asset.png_path

    def __str__(self) -> str:
        if self._format == "html":
            return str(chart_html(self._asset))
        return chart_markdown(self._asset)

    def __html__(self) -> str:
        if self._format == "html":
            return str(chart_html(self._asset))
        return str(escape(chart_markdown(self._asset)))

    def __repr__(self) -> str:
        return f"<chart {self._asset.name!r}>"


class NamedResults(dict):
    """``charts`` and ``data`` in a template: a dict whose unknown keys are
    errors that list the names that exist, instead of a bare "undefined".

    The error is not a ``LookupError`` on purpose: Jinja turns those into
    undefined values and the list of names would be lost.
    """

    def __init__(self, kind: str, plural: str, items: dict[str, Any]):
        super().__init__(items)
        self._kind = kind
        self._plural = plural

    def __missing__(self, key: Any) -> Any:
        names = ", ".join(sorted(str(k) for k in self))
        where = f"{self._plural}: {names}" if names else f"this report has no {self._plural}"
        raise TemplateDataError(f"unknown {self._kind} {key!r} ({where})")


def chart_set(charts: dict[str, ChartAsset] | None, fmt: str) -> NamedResults:
    """The ``charts`` template value: name → :class:`ChartEmbed` for ``fmt``."""
    embeds = {}
    for name, asset in (charts or {}).items():
        if not isinstance(asset, ChartAsset):
            raise TypeError(f"charts[{name!r}] must be a ChartAsset, not {type(asset).__name__}")
        embeds[name] = ChartEmbed(asset, fmt)
    return NamedResults("chart", "charts", embeds)
