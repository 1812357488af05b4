"""The report as an email body: HTML that mail clients show well, and plain text.

The HTML report is made for browsers: a ``<style>`` sheet with CSS variables
and grid, inline SVG charts, a Content-Security-Policy.  Mail clients keep
little of that: Gmail and Outlook drop or rewrite ``<style>``, many clients
drop SVG, and a CSP that allows only ``data:`` images would hide ``cid:``
ones.  So the email body is rebuilt from the report's ``<main>`` content:

* every element gets its style as a ``style`` attribute (plain colours, no
  variables, no grid: KPI cards become inline blocks);
* each chart's ``<svg>`` becomes ``<img src="cid:…">`` of the chart's PNG,
  attached to the message as an inline part;
* the collapsed "SQL used" block is left out: mail clients cannot collapse it.

Values in the report were escaped when it was rendered; nothing here
un-escapes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape as html_escape
from html.parser import HTMLParser

#: Widest content column; charts are drawn 800 px wide and scale down.
CONTENT_WIDTH = 768

FONT = (
    "-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,'Helvetica Neue',Arial,"
    "'Noto Sans',sans-serif"
)
MONO = "ui-monospace,SFMono-Regular,Menlo,Consolas,'Liberation Mono',monospace"

# (tag or None, class or None, declarations), applied in this order, so a class
# rule (td.num: right) comes after the tag rule (td: left) and wins.  Colours
# are the report's (report.css), resolved: mail clients ignore CSS variables.
_RULES: tuple[tuple[str | None, str | None, str], ...] = (
    ("h1", None, "font-size:26px;line-height:1.25;margin:0 0 12px;color:#1f2328"),
    (
        "h2",
        None,
        "font-size:20px;line-height:1.25;margin:28px 0 10px;padding-bottom:6px;"
        "border-bottom:1px solid #d0d7de;color:#1f2328",
    ),
    ("h3", None, "font-size:16px;line-height:1.25;margin:20px 0 8px;color:#1f2328"),
    ("h4", None, "font-size:15px;margin:16px 0 8px;color:#1f2328"),
    ("p", None, "margin:0 0 14px"),
    ("ul", None, "margin:0 0 14px;padding-left:24px"),
    ("ol", None, "margin:0 0 14px;padding-left:24px"),
    ("li", None, "margin:0 0 4px"),
    ("a", None, "color:#0550ae"),
    ("dl", None, "margin:0 0 16px;padding:0"),
    ("dt", None, "margin:0"),
    ("dd", None, "margin:0"),
    ("figure", None, "margin:0 0 20px"),
    ("figcaption", None, "color:#57606a;font-size:13px;margin-top:6px"),
    ("img", None, "display:block;max-width:100%;height:auto;border:0"),
    ("table", None, "border-collapse:collapse;width:100%;font-size:14px"),
    ("caption", None, "text-align:left;font-weight:600;padding-bottom:6px"),
    (
        "th",
        None,
        "padding:6px 10px;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top;"
        "background:#f6f8fa;font-weight:600;white-space:nowrap",
    ),
    (
        "td",
        None,
        "padding:6px 10px;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top",
    ),
    (
        "pre",
        None,
        f"background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:12px 16px;"
        f"overflow-x:auto;font-family:{MONO};font-size:13px;margin:0 0 16px",
    ),
    ("code", None, f"font-family:{MONO};font-size:13px"),
    (
        "blockquote",
        None,
        "margin:0 0 16px;padding-left:16px;border-left:4px solid #d0d7de;color:#57606a",
    ),
    ("hr", None, "border:0;border-top:1px solid #d0d7de;margin:28px 0"),
    (None, "lead", "font-size:18px"),
    (None, "meta", "color:#57606a;font-size:14px"),
    (None, "kpis", "margin:0 0 16px;padding:0"),
    (
        None,
        "kpi",
        "display:inline-block;vertical-align:top;width:200px;margin:0 10px 10px 0;"
        "border:1px solid #d0d7de;border-radius:8px;padding:12px 14px;background:#ffffff",
    ),
    (
        "dt",
        None,
        "color:#57606a;font-size:12px;font-weight:600;text-transform:uppercase;"
        "letter-spacing:0.04em",
    ),
    (None, "kpi-value", "font-size:24px;font-weight:700;margin:2px 0 4px;color:#1f2328"),
    (None, "kpi-change", "font-size:13px;color:#57606a"),
    (
        None,
        "delta",
        "display:inline-block;padding:1px 7px;border-radius:999px;font-weight:600;"
        "white-space:nowrap;background:#eaeef2;color:#57606a",
    ),
    (None, "good", "background:#dafbe1;color:#116329"),
    (None, "bad", "background:#ffebe9;color:#a40e26"),
    (None, "num", "text-align:right"),
    (None, "table-wrap", "overflow-x:auto;max-width:100%;margin:0 0 16px"),
    (None, "table-note", "color:#57606a;font-size:13px"),
    (None, "empty", "color:#57606a;font-size:13px"),
    (None, "chart-missing", "color:#57606a;font-size:13px;font-style:italic"),
)

_START_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)(\s[^<>]*?)?(/?)>")
_CLASS = re.compile(r'\sclass="([^"]*)"')
_STYLE = re.compile(r'\sstyle="([^"]*)"')


def inline_styles(fragment: str) -> str:
    """Give every element of ``fragment`` its style as a ``style`` attribute.

    A style the element already has comes last, so it still wins.
    """

    def restyle(match: re.Match[str]) -> str:
        tag, attrs, slash = match.group(1).lower(), match.group(2) or "", match.group(3)
        found = _CLASS.search(attrs)
        classes = set(found.group(1).split()) if found else set()
        declarations = [
            style
            for rule_tag, rule_class, style in _RULES
            if (rule_tag is None or rule_tag == tag)
            and (rule_class is None or rule_class in classes)
        ]
        if not declarations:
            return match.group(0)
        own = _STYLE.search(attrs)
        if own:
            declarations.append(own.group(1))
            attrs = attrs[: own.start()] + attrs[own.end() :]
        style = ";".join(d.strip(";") for d in declarations)
        return f'<{match.group(1)}{attrs} style="{style}"{slash}>'

    return _START_TAG.sub(restyle, fragment)


@dataclass(frozen=True)
class InlineImage:
    """A chart PNG carried in the message and shown where its ``cid:`` is referenced."""

    cid: str
    """The Content-ID, without angle brackets (the HTML says ``src="cid:<cid>"``)."""
    data: bytes
    """The PNG."""
    filename: str
    """A name for clients that list inline parts."""


def png_width(data: bytes) -> int | None:
    """The width of a PNG from its header, or ``None`` if it is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(data[16:20], "big")


def report_fragment(*, html_document: str | None = None, markdown: str | None = None) -> str:
    """The report's content as an HTML fragment: the ``<main>`` of the HTML report,
    or the Markdown report converted (when the pipeline writes no HTML)."""
    if html_document is not None:
        found = re.search(
            r'<main class="report">(.*)</main>', html_document, flags=re.DOTALL | re.IGNORECASE
        )
        if found is None:
            found = re.search(r"<body[^>]*>(.*)</body>", html_document, re.DOTALL | re.IGNORECASE)
        return (found.group(1) if found else html_document).strip()
    from ..render import markdown_to_html

    return markdown_to_html(markdown or "").strip()


_FIGURE_SVG = re.compile(
    r'(<figure class="chart" id="chart-(?P<slug>[A-Za-z0-9_-]+)"[^>]*>\s*)(?P<svg><svg\b.*?</svg>)',
    re.DOTALL,
)
_MD_IMAGE = re.compile(r'<img src="(?P<src>[^"]*?_charts/(?P<name>[A-Za-z0-9_-]+)\.png)"')
_DETAILS = re.compile(r"<details>.*?</details>\s*", re.DOTALL | re.IGNORECASE)
_ARIA_LABEL = re.compile(r'\saria-label="([^"]*)"')


def chart_cid(chart: str, stamp: str, domain: str = "eil-pipelines") -> str:
    """A chart's Content-ID: stable for the report, unique within the message."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{chart}.{stamp}")
    return f"chart-{safe}@{domain}"


def swap_charts(
    fragment: str, charts: dict[str, bytes], *, stamp: str
) -> tuple[str, list[InlineImage]]:
    """Replace each chart in ``fragment`` by an ``<img src="cid:…">`` of its PNG.

    ``charts`` maps chart names to PNG bytes.  An inline SVG whose PNG is
    missing becomes its text alternative, so the reader still learns what
    the chart said.  Returns the new fragment and the images it references,
    each once, in order.
    """
    images: dict[str, InlineImage] = {}

    def image_tag(name: str, alt: str) -> str:
        data = charts[name]
        if name not in images:
            images[name] = InlineImage(chart_cid(name, stamp), data, f"{name}.png")
        width = min(png_width(data) or CONTENT_WIDTH, CONTENT_WIDTH)
        return (
            f'<img src="cid:{images[name].cid}" alt="{alt}" width="{width}" '
            f'style="width:100%;max-width:{width}px">'
        )

    def from_svg(match: re.Match[str]) -> str:
        name, svg = match.group("slug"), match.group("svg")
        root = re.match(r"<svg\b[^>]*>", svg)
        label = _ARIA_LABEL.search(root.group(0)) if root else None
        alt = label.group(1) if label else html_escape(name)
        if name in charts:
            return match.group(1) + image_tag(name, alt)
        return match.group(1) + f'<p class="chart-missing">Chart: {alt}</p>'

    fragment = _FIGURE_SVG.sub(from_svg, fragment)

    def from_markdown(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in charts:
            return match.group(0)
        if name not in images:
            images[name] = InlineImage(chart_cid(name, stamp), charts[name], f"{name}.png")
        width = min(png_width(charts[name]) or CONTENT_WIDTH, CONTENT_WIDTH)
        return f'<img width="{width}" src="cid:{images[name].cid}"'

    fragment = _MD_IMAGE.sub(from_markdown, fragment)
    return fragment, list(images.values())


def email_document(*, title: str, fragment: str, link: str | None = None, footer: str = "") -> str:
    """A complete HTML email around ``fragment`` (already styled or not: it is
    styled here), with an optional "view online" link and a footer line."""
    fragment = inline_styles(_DETAILS.sub("", fragment))
    top = ""
    if link:
        top = (
            '<p style="margin:0 0 16px;color:#57606a;font-size:13px">'
            f'<a href="{html_escape(link)}" style="color:#0550ae">View this report online</a></p>\n'
        )
    bottom = ""
    if footer:
        bottom = (
            '\n<hr style="border:0;border-top:1px solid #d0d7de;margin:28px 0 12px">\n'
            f'<p style="margin:0;color:#57606a;font-size:12px">{html_escape(footer)}</p>'
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light">\n'
        f"<title>{html_escape(title)}</title>\n"
        "</head>\n"
        '<body style="margin:0;padding:0;background:#f6f8fa">\n'
        f'<div style="max-width:{CONTENT_WIDTH + 32}px;margin:0 auto;padding:24px 16px;'
        f"background:#ffffff;color:#1f2328;font-family:{FONT};font-size:16px;"
        'line-height:1.55">\n'
        f"{top}{fragment.strip()}{bottom}\n"
        "</div>\n"
        "</body>\n"
        "</html>\n"
    )


# --- plain text ---------------------------------------------------------------------

_MD_IMAGE_SYNTAX = re.compile(r"!\[((?:[^\]\\]|\\.)*)\]\([^)]*\)")


def markdown_text(markdown: str) -> str:
    """The Markdown report as the plain-text part: charts become ``[Chart: …]``
    lines, the collapsed SQL block is left out, as in the HTML part."""
    text = _DETAILS.sub("", markdown)
    text = _MD_IMAGE_SYNTAX.sub(lambda m: f"[Chart: {m.group(1).replace(chr(92), '')}]", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


class _TextMaker(HTMLParser):
    """HTML → readable plain text: headings, paragraphs, list items, table rows."""

    BLOCKS = frozenset(
        {"p", "div", "h1", "h2", "h3", "h4", "ul", "ol", "table", "tr", "figure", "dl", "pre"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0
        self._cells: list[str] | None = None
        self._cell: list[str] | None = None
        self._tables = 0  # whitespace between table tags is layout, not text

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "svg", "details", "head"):
            self._skip += 1
            return
        if self._skip:
            return
        if tag == "table":
            self._tables += 1
        if tag == "tr":
            self._cells = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "dd":
            self.out.append(" ")
        elif tag in self.BLOCKS or tag == "dt":
            self.out.append("\n")
            if tag in ("h1", "h2", "h3", "h4"):
                self.out.append("#" * int(tag[1]) + " ")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "br":
            self.out.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(f"\n[Chart: {alt}]\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "svg", "details", "head"):
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag == "table":
            self._tables = max(0, self._tables - 1)
        if tag in ("td", "th") and self._cell is not None and self._cells is not None:
            self._cells.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._cells is not None:
            self.out.append("\n" + " | ".join(self._cells))
            self._cells = None
        elif tag in self.BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        elif not (self._tables and not data.strip()):
            self.out.append(data)


def html_text(fragment: str) -> str:
    """An HTML fragment as plain text."""
    maker = _TextMaker()
    maker.feed(fragment)
    maker.close()
    # convert_charrefs already turned &amp; and friends back into characters.
    lines = [" ".join(line.split()) for line in "".join(maker.out).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
