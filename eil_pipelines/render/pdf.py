"""The PDF report: the HTML report laid out for print by WeasyPrint.

WeasyPrint is an optional extra (``pip install 'eil-pipelines[pdf]'``) because
it needs Pango from the operating system; everything else in the package is
pure Python wheels.  It renders the very HTML file the run writes, inline SVG
charts included, so the PDF says exactly what the HTML says.

Why WeasyPrint: it is a maintained, pure-Python layout engine (no browser to
drive, no network), it supports inline SVG, CSS paged media and PDF/UA tags,
and its output is byte-for-byte reproducible once the dates in the document
information are fixed, which :func:`html_to_pdf` does from the scheduled time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import Any

from ..errors import EilError

log = logging.getLogger("eil_pipelines.render.pdf")

#: The install hint every "PDF is not available" message ends with.
PDF_EXTRA_HINT = "pip install 'eil-pipelines[pdf]'"

# WeasyPrint calls into Pango, HarfBuzz and fontconfig; their thread safety is
# not something to bet a scheduler on (WeasyPrint's own tracker has crash
# reports from threaded servers), so PDFs are laid out one at a time.  The
# work is mostly Python under the GIL, so little parallelism is lost.
_LOCK = threading.Lock()

# Print adjustments on top of the report's own ``@media print`` rules: an A4
# page with the title and page numbers in the margins, KPI cards side by side,
# and tables that wrap to the page width instead of being clipped.  WeasyPrint
# applies these as a user style sheet, which yields to the page's own rules
# unless marked !important.
PDF_CSS = """
@page {
  size: A4;
  margin: 16mm 14mm 18mm;
  @bottom-left { content: string(report-title); font-size: 8pt; color: #57606a; }
  @bottom-right { content: "Page " counter(page) " of " counter(pages); font-size: 8pt;
    color: #57606a; }
}
h1 { string-set: report-title content(); }
.kpis { display: flex !important; flex-wrap: wrap !important; gap: 3mm !important; }
.kpi { flex: 1 1 38mm !important; padding: 2.5mm 3mm !important; }
.kpi-value { font-size: 15pt !important; }
.table-wrap { overflow: visible !important; }
table { font-size: 7pt !important; width: 100% !important; }
th { white-space: normal !important; }
th, td { padding: 0.8mm 1.4mm !important; }
a { text-decoration: none; }
"""


class PdfUnavailableError(EilError):
    """WeasyPrint is not installed, or cannot load its system libraries."""


@cache
def pdf_unavailable_reason() -> str | None:
    """Why the ``pdf`` format cannot be rendered here, or ``None`` when it can.

    Imports WeasyPrint once per process (about a second) and remembers the
    answer; ``eil-run validate`` asks only when a pipeline wants a PDF.
    """
    try:
        import weasyprint  # noqa: F401
    except ImportError:
        return f"needs WeasyPrint: {PDF_EXTRA_HINT}"
    except OSError as exc:
        # Installed, but Pango (a C library from the OS) is missing or broken.
        return (
            "needs WeasyPrint, which is installed but cannot load its system libraries "
            f"({exc}): install Pango (Debian/Ubuntu: apt-get install libpango-1.0-0 "
            "libpangoft2-1.0-0)"
        )
    return None


def pdf_problem(pipeline: str) -> str | None:
    """The message a run or ``validate`` gives when the ``pdf`` format is not available.

    Such as ``pipeline "x": the "pdf" format needs WeasyPrint: pip install
    'eil-pipelines[pdf]'``; ``None`` when PDFs can be rendered.
    """
    reason = pdf_unavailable_reason()
    return None if reason is None else f'pipeline "{pipeline}": the "pdf" format {reason}'


def html_to_pdf(html: str, *, created: datetime | None = None, title: str | None = None) -> bytes:
    """Lay out a self-contained HTML report as a PDF and return its bytes.

    ``created`` becomes the document's creation and modification date (use
    the run's scheduled time): WeasyPrint writes no other clock reading, so
    the same HTML and the same ``created`` give the same bytes.  The HTML
    must not need outside resources (the reports never do): nothing is
    fetched, every URL is refused.
    """
    reason = pdf_unavailable_reason()
    if reason is not None:
        raise PdfUnavailableError(f'the "pdf" format {reason}')
    import weasyprint

    with _LOCK, _quiet_weasyprint():
        document = _layout(html)
        metadata: Any = document.metadata
        if title:
            metadata.title = title
        stamp = created.isoformat(timespec="seconds") if created else None
        metadata.created = stamp
        metadata.modified = stamp
        # Tags (structure for screen readers, as the HTML has) where this WeasyPrint has them.
        options = {"pdf_tags": True} if "pdf_tags" in weasyprint.DEFAULT_OPTIONS else {}
        return document.write_pdf(**options)


def layout_pdf(html: str) -> Any:
    """The PDF's pages as WeasyPrint lays them out from ``html`` (its ``Document``:
    each page's size and boxes), before any byte is written; for tests of the layout."""
    with _LOCK, _quiet_weasyprint():
        return _layout(html)


def _layout(html: str) -> Any:
    reason = pdf_unavailable_reason()
    if reason is not None:
        raise PdfUnavailableError(f'the "pdf" format {reason}')
    import weasyprint

    return weasyprint.HTML(string=html, url_fetcher=_url_fetcher()).render(
        stylesheets=[weasyprint.CSS(string=PDF_CSS)]
    )


class _Collect(logging.Handler):
    """Keeps WeasyPrint's records of one layout, for :func:`_quiet_weasyprint`."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.ignored = 0
        self.others: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        # "Ignored `x: y` at 3:5, unknown property.": about the report's own style
        # sheet (written for browsers too), nothing a pipeline author can change.
        if message.startswith(("Ignored", "Invalid or unsupported")):
            self.ignored += 1
        else:
            self.others.append(message)


@contextmanager
def _quiet_weasyprint() -> Iterator[None]:
    """WeasyPrint's warnings as one summary line, or each of them with ``-v``.

    A PDF run printed 208 ``WARNING weasyprint: Ignored …`` lines about CSS
    meant for browsers.  Without ``-v`` (the ``eil_pipelines`` logger below
    INFO) those are counted and logged at INFO; any other warning (a font or
    an image WeasyPrint could not use) is summed up in one WARNING line.
    Called under :data:`_LOCK`, so one layout at a time changes the logger.
    """
    if log.isEnabledFor(logging.INFO) and logging.getLogger().isEnabledFor(logging.INFO):
        yield  # -v: every record as WeasyPrint writes it
        return
    logger = logging.getLogger("weasyprint")
    collect = _Collect()
    propagate = logger.propagate
    logger.addHandler(collect)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(collect)
        logger.propagate = propagate
    if collect.ignored:
        log.info("PDF: WeasyPrint ignored %d style rules meant for browsers", collect.ignored)
    if collect.others:
        count = len(collect.others)
        log.warning(
            "PDF: WeasyPrint reported %d problem%s (first: %s); -v shows each",
            count,
            "" if count == 1 else "s",
            collect.others[0],
        )


def _url_fetcher() -> Any:
    """A fetcher that refuses every URL, in the form this WeasyPrint takes.

    WeasyPrint 68 and later take a ``URLFetcher`` subclass (and expect its
    attributes on errors); earlier versions a plain function.
    """
    import weasyprint.urls

    base = getattr(weasyprint.urls, "URLFetcher", None)
    if base is None:
        return lambda url, *args, **kwargs: _refuse_fetch(url)

    class RefuseAll(base):  # type: ignore[misc, valid-type]
        def fetch(self, url: str, headers: Any = None) -> Any:
            return _refuse_fetch(url)

    return RefuseAll()


def _refuse_fetch(url: str, *args: Any, **kwargs: Any) -> Any:
    # Reports are self-contained; a URL here can only come from template
    # content, and a report renderer must not make requests on its behalf.
    raise ValueError(f"not fetched (reports are self-contained): {url}")


def format_problems(pipeline: Any) -> list[tuple[str, str]]:
    """``eil-run validate``'s check of the formats a pipeline asks for, as
    ``(key path, message)`` pairs: a ``pdf`` format without WeasyPrint is a
    problem at ``report.formats``.  Imports WeasyPrint only when asked for a PDF."""
    if "pdf" not in pipeline.spec.report.formats:
        return []
    reason = pdf_unavailable_reason()
    return [] if reason is None else [("report.formats", f'the "pdf" format {reason}')]
