"""Markdown → HTML, the self-contained HTML document, and Markdown tidying."""

from __future__ import annotations

import re
import threading
from functools import cache
from importlib import resources
from typing import Any

from markupsafe import escape

from .links import is_safe_url, neutralize_unsafe_links

# The HTML report may fetch nothing and run nothing, even if a template or a
# value slipped something past the escaping: the browser enforces it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)


def markdown_to_html(text: str) -> str:
    """Convert report Markdown to an HTML fragment.

    CommonMark plus pipe tables; raw HTML is passed through (the template's
    KPI cards, figures and tables are HTML blocks, and every value in them
    was escaped by the renderer).  A Markdown link whose scheme is not http,
    https or mailto (``javascript:``) stays text, and such an ``href`` or
    ``src`` in raw HTML is removed (:mod:`.links`).
    """
    # Raw HTML in the template (<a href="{{ row.url }}">) is checked too; the
    # e-mail body is made from this fragment as well, and it has no CSP.
    return neutralize_unsafe_links(_parser().render(text))


# One parser per thread, made at its first report: building one costs more than
# converting a small report, and a thread of the worker pool never shares its own.
_PARSERS = threading.local()


def _parser() -> Any:
    md = getattr(_PARSERS, "md", None)
    if md is None:
        from markdown_it import MarkdownIt  # here, not at the top: `validate` never converts

        md = MarkdownIt("commonmark", {"html": True}).enable("table")
        # Only http, https, mailto and relative links: any other becomes text (see links.py).
        md.validateLink = lambda url: is_safe_url(url, image=True)  # type: ignore[method-assign]
        # A pipe table gets the same scrolling wrapper as the table filter's: on a
        # phone a wide one scrolls inside it (with the edge shades) instead of
        # widening the page.
        md.add_render_rule("table_open", _table_open)
        md.add_render_rule("table_close", _table_close)
        _PARSERS.md = md
    return md


def _table_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    return '<div class="table-wrap" tabindex="0">\n' + self.renderToken(tokens, idx, options, env)


def _table_close(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    return self.renderToken(tokens, idx, options, env) + "</div>\n"


@cache
def report_css() -> str:
    """The report style sheet, inlined into every HTML report."""
    return resources.files(__package__).joinpath("report.css").read_text(encoding="utf-8")


def html_document(title: str, body_html: str, *, lang: str = "en") -> str:
    """Wrap an HTML fragment in a complete, self-contained HTML5 document.

    The style sheet is inline and a Content-Security-Policy forbids scripts
    and any request to another site, so the file can be mailed or opened
    offline and shows the same.
    """
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{escape(lang)}">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="generator" content="eil-pipelines">\n'
        f"<title>{escape(title)}</title>\n"
        f"<style>\n{report_css()}</style>\n"
        "</head>\n"
        "<body>\n"
        '<main class="report">\n'
        f"{body_html.strip()}\n"
        "</main>\n"
        "</body>\n"
        "</html>\n"
    )


# Markdown-active characters in a printed value, and what they become.
_MARKDOWN_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "`": "\\`",
        "*": "\\*",
        "[": "\\[",
        "]": "\\]",
        "|": "\\|",
        "<": "&lt;",
        "\r": "",
        "\n": " ",
    }
)


# "_" inside a word ("net_revenue", "2026-11-27_charts") never emphasizes in
# CommonMark; only one at a word's edge needs the backslash.
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


# A value at the start of a line must not open a list, a rule or a heading
# underline: "- x", "---", "===", "+ x"; "-12.5%" is a number and stays as it is.
_BLOCK_START = re.compile(r"[-+=](?:[-+= ]|$)")
_ORDERED_ITEM = re.compile(r"^(\d{1,9})([.)])(?= |$)")


def escape_markdown(value: Any) -> str:
    """``value`` as Markdown text that shows as itself, on one line.

    ``\\``, `````, ``*``, ``[``, ``]``, ``|`` and ``_`` at a word's edge get a backslash, ``<``
    becomes ``&lt;``, a leading ``#``, ``>``, list marker or rule a backslash, line breaks become
    spaces: ``![img](http://…)``, ``<!-- x`` or ``<script>`` shows as text,
    never as an image, a comment or HTML, and cannot start a block.
    """
    text = _EDGE_UNDERSCORE.sub(r"\\_", str(value).translate(_MARKDOWN_ESCAPES))
    if text[:1] in ("#", ">") or _BLOCK_START.match(text):
        text = "\\" + text
    return _ORDERED_ITEM.sub(r"\1\\\2", text, count=1)


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def tidy_markdown(text: str) -> str:
    """Make rendered Markdown lint-clean whatever the template's whitespace.

    Drops trailing spaces, collapses runs of blank lines to one outside code
    fences, drops blank lines at the start, and ends with one newline.
    Template control blocks leave such gaps behind; fixing them here keeps
    the templates readable.
    """
    out: list[str] = []
    fence: str | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        marker = _FENCE.match(line)
        if fence is None:
            if marker:
                fence = marker.group(1)
            elif not line and (not out or not out[-1]):
                continue
        elif (
            marker
            and marker.group(1)[0] == fence[0]
            and len(marker.group(1)) >= len(fence)
            and line.strip() == marker.group(1)
        ):
            fence = None
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"
