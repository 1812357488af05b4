"""Chart embeds: a PNG link in Markdown, an inline SVG figure in HTML."""

from __future__ import annotations

import re

import pytest

from eil_pipelines.errors import RenderError
from eil_pipelines.render import ChartAsset, TemplateSource, render_report
from eil_pipelines.render.assets import chart_html, chart_markdown

# Shaped like matplotlib's output: prolog, comment, metadata, ids and references, blank lines.
SVG = """<?xml version="1.0" encoding="utf-8" standalone="no"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"
  "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<!-- Created with matplotlib -->
<svg xmlns:xlink="http://www.w3.org/1999/xlink" width="460pt" height="345pt" \
viewBox="0 0 460 345" xmlns="http://www.w3.org/2000/svg" version="1.1">
 <metadata>
  <rdf:RDF><cc:Work><dc:date>2026-11-27T08:00:01</dc:date></cc:Work></rdf:RDF>
 </metadata>
 <defs>
  <clipPath id="p1a2b"><rect x="0" y="0" width="10" height="10"/></clipPath>
  <path id="m0" d="M 0 0 L 0 3.5"/>
 </defs>

 <g id="figure_1" clip-path="url(#p1a2b)">

  <use xlink:href="#m0" x="5" y="5"/>
 </g>
</svg>
"""


def asset(name: str = "revenue", **changes) -> ChartAsset:
    fields = {
        "name": name,
        "title": "Revenue by week",
        "alt": "Line chart of weekly revenue, rising from $110K to $155K",
        "png_path": f"2026-11-27_charts/{name}.png",
        "svg": SVG,
    }
    fields.update(changes)
    return ChartAsset(**fields)


def render(text: str, charts: dict, fmt: str) -> str:
    return render_report(TemplateSource("templates/c.md.j2", text), {"charts": charts}, fmt)


def test_markdown_embed_is_an_image_link():
    charts = {"revenue": asset()}
    assert render("{{ charts.revenue }}", charts, "md") == (
        "![Line chart of weekly revenue, rising from $110K to $155K]"
        "(2026-11-27_charts/revenue.png)\n"
    )


def test_markdown_embed_escapes_alt_and_path():
    chart = asset(alt="A [bracketed]\nalt", png_path="my charts/rev (1).png")
    assert chart_markdown(chart) == r"![A \[bracketed\] alt](my%20charts/rev%20%281%29.png)"


def test_html_embed_is_a_figure_with_accessible_inline_svg():
    figure = str(chart_html(asset()))
    assert figure.startswith('<figure class="chart" id="chart-revenue">\n<svg role="img" ')
    assert 'aria-label="Line chart of weekly revenue, rising from $110K to $155K"' in figure
    assert figure.endswith("<figcaption>Revenue by week</figcaption>\n</figure>")
    assert "<?xml" not in figure and "DOCTYPE" not in figure and "<metadata" not in figure
    assert "http" not in figure
    # Markdown would end the raw HTML block at a blank line.
    assert "\n\n" not in figure
    ids = re.findall(r'\sid="([^"]+)"', figure)
    assert ids == [
        "chart-revenue",
        "chart-revenue-p1a2b",
        "chart-revenue-m0",
        "chart-revenue-figure_1",
    ]
    assert 'clip-path="url(#chart-revenue-p1a2b)"' in figure
    assert 'xlink:href="#chart-revenue-m0"' in figure


def test_html_embed_keeps_an_existing_accessible_name():
    svg = '<svg viewBox="0 0 1 1" role="img" aria-labelledby="t"><title id="t">T</title></svg>'
    figure = str(chart_html(asset(svg=svg)))
    assert figure.count("role=") == 1
    assert "aria-label=" not in figure


def test_html_report_has_one_figure_per_chart():
    charts = {"revenue": asset(), "orders": asset("orders", title="Orders <by> week")}
    page = render("{% for c in charts.values() %}\n{{ c }}\n\n{% endfor %}", charts, "html")
    assert page.count('<figure class="chart"') == 2
    assert page.count("<svg ") == 2
    assert "<figcaption>Orders &lt;by&gt; week</figcaption>" in page
    assert len(set(re.findall(r'\sid="([^"]+)"', page))) == len(re.findall(r'\sid="', page))


def test_chart_attributes_are_readable():
    text = "{{ charts['revenue'].title }} | {{ charts.revenue.png_path }} | {{ charts | length }}"
    assert render(text, {"revenue": asset()}, "md") == (
        "Revenue by week | 2026-11-27_charts/revenue.png | 1\n"
    )


def test_unknown_chart_names_the_available_ones():
    charts = {"revenue": asset(), "orders": asset("orders")}
    with pytest.raises(RenderError) as info:
        render("# Charts\n\n{{ charts.revnue }}", charts, "html")
    assert (
        str(info.value) == "templates/c.md.j2:3: unknown chart 'revnue' (charts: orders, revenue)"
    )


def test_charts_must_be_chart_assets():
    with pytest.raises(TypeError, match=r"charts\['x'\] must be a ChartAsset, not str"):
        render("", {"x": "<svg/>"}, "md")
