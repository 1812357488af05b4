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
from html import unescape
from html.parser import HTMLParser

from markupsafe import Markup, escape

from ..render import markdown_to_html
from ..render.environment import render_page

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

# One attribute of a start tag, as the standard library's HTML parser reads them.
_ATTRIBUTE = re.compile(
    r"""\s*(?P<name>[^\s/>"'=][^\s/>=]*)(?:\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^\s>]*))?"""
)


def _line_starts(source: str) -> list[int]:
    """The offset where each line of ``source`` starts: HTMLParser reports (line, column)."""
    starts = [0]
    found = source.find("\n")
    while found != -1:
        starts.append(found + 1)
        found = source.find("\n", found + 1)
    return starts


_ENDS_WITH_REFERENCE = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);$")


class _StartTags(HTMLParser):
    """Every start tag of a fragment: its offsets, name and classes.  A parser, so a
    ``>`` inside an attribute value, a comment or ``<style>`` text is not a tag."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self._lines = _line_starts(source)
        self.tags: list[tuple[int, int, str, set[str]]] = []
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        line, column = self.getpos()
        start = self._lines[line - 1] + column
        classes = set((dict(attrs).get("class") or "").split())
        self.tags.append((start, start + len(self.get_starttag_text() or ""), tag, classes))


def _restyle(raw: str, tag: str, declarations: list[str]) -> str:
    """The start tag ``raw`` with ``declarations`` first in its ``style``; its own style
    comes last, so it still wins."""
    name_end = 1 + len(tag)
    attrs, end = raw[name_end:-1], ">"
    if attrs.endswith("/"):
        attrs, end = attrs[:-1], "/>"
    for attribute in _ATTRIBUTE.finditer(attrs):
        if attribute.group("name").lower() != "style":
            continue
        value = attribute.group("value") or ""
        # A "-quoted value is already escaped for where it goes; any other is escaped here.
        quoted = value.startswith('"')
        own = value[1:-1] if quoted else str(escape(unescape(value.strip("'"))))
        # Its last ";" goes, as the rules' do, unless it ends a character reference.
        own = own.lstrip(";")
        if own.endswith(";") and not _ENDS_WITH_REFERENCE.search(own):
            own = own.rstrip(";")
        if own:
            declarations.append(own)
        attrs = attrs[: attribute.start()] + attrs[attribute.end() :]
        break
    style = ";".join(declarations)
    return f'{raw[:name_end]}{attrs} style="{style}"{end}'


def inline_styles(fragment: str) -> str:
    """Give every element of ``fragment`` its style as a ``style`` attribute.

    The rules are :data:`_RULES`, applied in order; a style the element
    already has comes last, so it still wins.  Only the start tags that get a
    style change: every other byte of the fragment stays as it was.
    """
    edits = []
    for start, end, tag, classes in _StartTags(fragment).tags:
        declarations = [
            style
            for rule_tag, rule_class, style in _RULES
            if (rule_tag is None or rule_tag == tag)
            and (rule_class is None or rule_class in classes)
        ]
        if declarations:
            edits.append((start, end, _restyle(fragment[start:end], tag, declarations)))
    return _splice(fragment, edits)


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


class _Elements(HTMLParser):
    """Where the elements the email rewrites start and end in a fragment, as offsets.

    The rewrites splice at these offsets, so every byte outside them stays as
    it was.  A parser, not patterns: it knows where a tag ends whatever its
    attributes hold, skips comments and ``<style>`` text, and pairs nested
    elements of one name (``<details>`` in ``<details>``, ``<svg>`` in ``<svg>``).
    """

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self.source = source
        self._lines = _line_starts(source)
        # Open elements by name: (start, end of the start tag, attributes).
        self._open: dict[str, list[tuple[int, int, dict[str, str | None]]]] = {}
        self._chart: str | None = None  # the slug of the chart <figure> we are in
        self.main: tuple[int, int] | None = None
        """The content of the first ``<main class="report">``: (after its start tag, before its end tag)."""
        self.details: list[tuple[int, int]] = []
        """Outermost ``<details>`` elements, with the whitespace after them."""
        self.charts: list[tuple[int, int, str, dict[str, str | None]]] = []
        """The first ``<svg>`` of each ``<figure class="chart" id="chart-…">``: span, slug, attributes."""
        self.images: list[tuple[int, int, str]] = []
        """``<img>`` start tags: span and ``src``."""
        self.feed(source)
        self.close()

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._lines[line - 1] + column

    def _enter(self, tag: str, attrs: dict[str, str | None]) -> None:
        start = self._offset()
        inner = start + len(self.get_starttag_text() or "")
        self._open.setdefault(tag, []).append((start, inner, attrs))

    def _leave(self, tag: str) -> tuple[int, int, int, dict[str, str | None]] | None:
        """The element ``tag`` closes now, when it is outermost: (start, end of its
        start tag, end, attributes)."""
        stack = self._open.get(tag)
        if not stack:
            return None  # a stray end tag
        start, inner, attrs = stack.pop()
        if stack:
            return None
        # An end tag holds no attributes: its first ">" ends it.
        return start, inner, self.source.index(">", self._offset()) + 1, attrs

    def _in(self, tag: str) -> bool:
        return bool(self._open.get(tag))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "img":
            start = self._offset()
            raw = self.get_starttag_text() or ""
            self.images.append((start, start + len(raw), found.get("src") or ""))
            return
        report_main = self.main is None and found.get("class") == "report"
        if tag == "details" or (tag == "main" and (report_main or self._in("main"))):
            self._enter(tag, found)
        elif tag == "figure":
            ident = found.get("id") or ""
            classes = (found.get("class") or "").split()
            if "chart" in classes and _CHART_ID.fullmatch(ident):
                self._chart = ident.removeprefix("chart-")
        elif tag == "svg" and (self._chart is not None or self._in("svg")):
            self._enter(tag, found)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("img", "main"):  # <main/> is not a void element: it stays open
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "main" and self.main is None:
            end_tag = self._offset()
            span = self._leave(tag)
            if span is not None:
                self.main = (span[1], end_tag)
        elif tag == "details":
            span = self._leave(tag)
            if span is not None:
                end = span[2]
                while end < len(self.source) and self.source[end].isspace():
                    end += 1
                self.details.append((span[0], end))
        elif tag == "svg":
            span = self._leave(tag)
            if span is not None and self._chart is not None:
                self.charts.append((span[0], span[2], self._chart, span[3]))
                self._chart = None  # only the figure's first drawing is its chart
        elif tag == "figure":
            self._chart = None


_CHART_ID = re.compile(r"chart-[A-Za-z0-9_-]+")
_CHART_PNG = re.compile(r"(?:.*/)?[^/]*_charts/([A-Za-z0-9_-]+)\.png", re.DOTALL)
_SRC_ATTRIBUTE = re.compile(r"""\ssrc\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+)""", re.IGNORECASE)


def _splice(source: str, edits: list[tuple[int, int, str]]) -> str:
    """``source`` with each (start, end) span replaced; spans must not overlap."""
    out, at = [], 0
    for start, end, text in sorted(edits):
        out.append(source[at:start])
        out.append(text)
        at = end
    out.append(source[at:])
    return "".join(out)


def report_fragment(*, html_document: str | None = None, markdown: str | None = None) -> str:
    """The report's content as an HTML fragment: the ``<main>`` of the HTML report,
    or the Markdown report converted (when the pipeline writes no HTML)."""
    if html_document is not None:
        found = _Elements(html_document).main
        if found is None:
            body = re.search(r"<body[^>]*>(.*)</body>", html_document, re.DOTALL | re.IGNORECASE)
            return (body.group(1) if body else html_document).strip()
        return html_document[found[0] : found[1]].strip()

    return markdown_to_html(markdown or "").strip()


def chart_cid(chart: str, stamp: str, domain: str = "eil-pipelines") -> str:
    """A chart's Content-ID: stable for the report, unique within the message."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{chart}.{stamp}")
    return f"chart-{safe}@{domain}"


def swap_charts(
    fragment: str, charts: dict[str, bytes], *, stamp: str
) -> tuple[str, list[InlineImage]]:
    """Replace each chart in ``fragment`` by an ``<img src="cid:…">`` of its PNG.

    ``charts`` maps chart names to PNG bytes.  A chart is the inline ``<svg>``
    of a ``<figure class="chart" id="chart-<name>">`` (the HTML report) or an
    ``<img>`` of ``…_charts/<name>.png`` (the Markdown report converted).  An
    inline SVG whose PNG is missing becomes its text alternative, so the
    reader still learns what the chart said.  Returns the new fragment and the
    images it references, each once, in order.
    """
    images: dict[str, InlineImage] = {}

    def image(name: str) -> tuple[InlineImage, int]:
        data = charts[name]
        if name not in images:
            images[name] = InlineImage(chart_cid(name, stamp), data, f"{name}.png")
        return images[name], min(png_width(data) or CONTENT_WIDTH, CONTENT_WIDTH)

    found = _Elements(fragment)
    edits: list[tuple[int, int, str]] = []
    # In document order, so the images are listed in the order the reader meets them.
    # Each item: (start, end, chart name and its label) for an inline SVG, ("", src) for an <img>.
    items = [
        (start, end, name, attrs.get("aria-label") or name)
        for start, end, name, attrs in found.charts
    ]
    items += [(start, end, "", src) for start, end, src in found.images]
    for start, end, name, text in sorted(items):
        if name:  # an inline SVG
            alt = escape(text)
            if name in charts:
                picture, width = image(name)
                edits.append(
                    (
                        start,
                        end,
                        f'<img src="cid:{picture.cid}" alt="{alt}" width="{width}" '
                        f'style="width:100%;max-width:{width}px">',
                    )
                )
            else:
                edits.append((start, end, f'<p class="chart-missing">Chart: {alt}</p>'))
            continue
        png = _CHART_PNG.fullmatch(text)
        if png is None or png.group(1) not in charts:
            continue
        picture, width = image(png.group(1))
        tag = fragment[start:end]
        src = _SRC_ATTRIBUTE.search(tag)
        if src is not None:
            new_src = f' width="{width}" src="cid:{picture.cid}"'
            edits.append((start, end, tag[: src.start()] + new_src + tag[src.end() :]))
    return _splice(fragment, edits), list(images.values())


def email_document(*, title: str, fragment: str, link: str | None = None, footer: str = "") -> str:
    """A complete HTML email around ``fragment`` (already styled or not: it is
    styled here), with an optional "view online" link and a footer line.

    ``fragment`` is trusted markup made by the engine (its values were escaped
    when it was rendered); ``title``, ``link`` and ``footer`` are text.
    """
    fragment = _splice(fragment, [(a, b, "") for a, b in _Elements(fragment).details])
    return render_page(
        "email.html.j2",
        {
            "title": title,
            "link": link,
            "footer": footer,
            "fragment": Markup(inline_styles(fragment).strip()),
            "width": CONTENT_WIDTH,
            "font": Markup(FONT),
        },
    )


# --- plain text ---------------------------------------------------------------------

# In the Markdown report the collapsed SQL is an HTML block; charts are image syntax.
_MD_DETAILS = re.compile(r"<details>.*?</details>\s*", re.DOTALL | re.IGNORECASE)
_MD_IMAGE_SYNTAX = re.compile(r"!\[((?:[^\]\\]|\\.)*)\]\([^)]*\)")


def markdown_text(markdown: str) -> str:
    """The Markdown report as the plain-text part: charts become ``[Chart: …]``
    lines, the collapsed SQL block is left out, as in the HTML part."""
    text = _MD_DETAILS.sub("", markdown)
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
