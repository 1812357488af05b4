"""Rendering: one Markdown + Jinja template → the Markdown and HTML reports.

What a template sees:

* ``pipeline``, ``run``, ``params``, ``sql``: what the run passed (dicts);
* ``data.<query>``: the query's DataFrame; ``charts.<name>``: prints the
  chart (a PNG link in Markdown, an inline SVG figure in HTML) and has
  ``title``, ``alt``, ``name``, ``png_path``; an unknown name is an error
  listing the names that exist (test with ``'revenue' in charts``);
* ``metrics`` (label, text, previous_text, change_pct, good, …), ``insights``;
* ``format``: ``"md"`` or ``"html"``.

Filters: ``number``, ``currency``, ``percent``, ``compact``, ``delta``,
``table(max_rows=, columns=, caption=)``, ``code(lang)``, ``date(fmt)``,
``period(end)``.  Put block output (``table``, ``code``, a chart) on a line
of its own with blank lines around it, and print SQL or other code with
``code`` rather than inside a fence.  ``{% include %}`` and friends are not
available: a report template is one file.  Whitespace follows Jinja's
defaults (no ``trim_blocks``): use ``{%-`` / ``-%}`` to drop newlines; the
Markdown report is tidied afterwards (trailing spaces, runs of blank lines).

See :mod:`eil_pipelines.render.environment` for the security rules: values
are escaped in both formats, ``href``/``src`` are held to safe schemes
(:mod:`.links`), and a report has a size limit (:data:`MAX_OUTPUT_CHARS`).
"""

from .assets import ChartAsset
from .environment import (
    BUILTIN_NAME,
    FORMATS,
    MAX_OUTPUT_CHARS,
    SAFE_DATA_ATTRIBUTES,
    TemplateSource,
    compile_template,
    create_environment,
    load_template,
    render_report,
)
from .links import SAFE_SCHEMES, is_safe_url, neutralize_unsafe_links
from .markdown import escape_markdown, html_document, markdown_to_html

__all__ = [
    "BUILTIN_NAME",
    "FORMATS",
    "MAX_OUTPUT_CHARS",
    "SAFE_DATA_ATTRIBUTES",
    "SAFE_SCHEMES",
    "ChartAsset",
    "TemplateSource",
    "compile_template",
    "create_environment",
    "escape_markdown",
    "html_document",
    "is_safe_url",
    "load_template",
    "markdown_to_html",
    "neutralize_unsafe_links",
    "render_report",
]
