"""Safe links: only ``http``, ``https``, ``mailto`` and relative URLs reach a report.

A report (and the e-mail made from it, which has no Content-Security-Policy)
may hold links whose URL comes from data: ``[{{ row.name }}]({{ row.url }})``
or ``<a href="{{ row.url }}">`` in a template.  A ``javascript:`` or
``data:text/html`` URL there runs code when clicked.  Every ``href`` and
``src`` in the final HTML is checked against :data:`SAFE_SCHEMES`; an unsafe
one is removed, so the link shows as text.
"""

from __future__ import annotations

import html
import re

__all__ = ["SAFE_SCHEMES", "is_safe_url", "neutralize_unsafe_links"]

#: URL schemes a link may use; a URL without a scheme (relative, ``#anchor``) is safe.
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})

# Browsers ignore ASCII whitespace and control characters inside a scheme ("java\tscript:").
_IGNORED = re.compile(r"[\x00-\x20\x7f]+")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
# The chart embeds of the HTML report: images only, never a document.
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);", re.IGNORECASE)

_TAG = re.compile(r"<[A-Za-z][^<>]*>")
_TAG_NAME = re.compile(r"<([A-Za-z][A-Za-z0-9:-]*)")
_URL_ATTRIBUTE = re.compile(
    r"""(\s)(href|src|xlink:href|action|formaction|poster|background)"""
    r"""(\s*=\s*)("[^"]*"|'[^']*'|[^\s"'=<>`]+)""",
    re.IGNORECASE,
)


def is_safe_url(url: str, *, image: bool = False) -> bool:
    """Whether ``url`` is relative or uses a scheme of :data:`SAFE_SCHEMES`.

    ``image`` also allows, as an ``<img src>``, ``data:image/…`` URLs of
    raster images (never SVG, which may hold scripts) and ``cid:`` (an
    e-mail's attached image).  Character references are decoded first, as a browser does.
    """
    plain = _IGNORED.sub("", html.unescape(url)).lower()
    if image and (plain.startswith("cid:") or _DATA_IMAGE.match(plain)):
        return True  # an e-mail's attached image, or an inline raster image
    match = _SCHEME.match(plain)
    if match is None:
        # "javascript&colon;…" decodes to a scheme above; a colon after "/", "?" or "#"
        # is part of a relative URL's path, query or fragment.
        return True
    return match.group(1) in SAFE_SCHEMES


def _clean_tag(tag: re.Match[str]) -> str:
    text = tag.group(0)
    name = _TAG_NAME.match(text)
    # <img src> and SVG's <image href> show a picture: a data: or cid: image is fine there.
    is_image = name is not None and name.group(1).lower() in ("img", "image")

    def check(attribute: re.Match[str]) -> str:
        value = attribute.group(4)
        if value[:1] in "\"'":
            value = value[1:-1]
        image_url = is_image and attribute.group(2).lower() in ("src", "href", "xlink:href")
        if is_safe_url(value, image=image_url):
            return attribute.group(0)
        return " "  # the attribute goes; the tag keeps its other attributes

    return _URL_ATTRIBUTE.sub(check, text)


def neutralize_unsafe_links(document: str) -> str:
    """``document`` (HTML) with every unsafe ``href``/``src`` attribute removed.

    An ``<a>`` without ``href`` is plain text to the reader, an ``<img>``
    without ``src`` loads nothing.  Call it on any HTML made from data that is
    shown or mailed: the HTML report does, and so must the e-mail body.
    """
    if "=" not in document:
        return document
    return _TAG.sub(_clean_tag, document)
