"""The PDF renderer: inline SVG drawn, deterministic bytes, nothing fetched, clear messages."""

from __future__ import annotations

import os
import re
import zlib
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.render import html_document
from eil_pipelines.render import pdf as pdf_module

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200" viewBox="0 0 400 200">'
    + "".join(
        f'<path d="M{i * 10} 200 L{i * 10} {200 - i * 4}" stroke="#0969da"/>' for i in range(40)
    )
    + "</svg>"
)


def weasyprint_or_skip() -> None:
    """Skip where WeasyPrint cannot run, except in CI, where that is a failure."""
    reason = pdf_module.pdf_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must install the pdf extra and Pango (.ci/apt-packages.txt): {reason}")
    pytest.skip(f"the pdf format {reason}")


def line_segments(pdf: bytes) -> int:
    """How many straight line segments (``x y l``) the PDF's content streams draw."""
    count = 0
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, flags=re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            content = stream
        count += len(re.findall(rb"[-\d.]+ [-\d.]+ l\b", content))
    return count


def test_inline_svg_is_drawn_and_bytes_are_deterministic():
    weasyprint_or_skip()
    created = datetime(2026, 11, 28, 7, tzinfo=ZoneInfo("Europe/Berlin"))
    with_chart = html_document("Sales", f"<h1>Sales</h1><figure>{SVG}</figure>")
    without = html_document("Sales", "<h1>Sales</h1>")
    pdf = pdf_module.html_to_pdf(with_chart, created=created, title="Sales")
    assert pdf.startswith(b"%PDF-")
    assert (
        line_segments(pdf) >= 40 > line_segments(pdf_module.html_to_pdf(without, created=created))
    )
    assert pdf_module.html_to_pdf(with_chart, created=created, title="Sales") == pdf


def test_outside_resources_are_never_fetched():
    weasyprint_or_skip()
    fetched = []
    html = html_document("x", '<h1>x</h1><img src="http://127.0.0.1:9/x.png" alt="x">')
    original = pdf_module._refuse_fetch

    def spy(url, *args, **kwargs):
        fetched.append(url)
        return original(url, *args, **kwargs)

    pdf_module._refuse_fetch, saved = spy, original
    try:
        assert pdf_module.html_to_pdf(html).startswith(b"%PDF-")
    finally:
        pdf_module._refuse_fetch = saved
    assert fetched == ["http://127.0.0.1:9/x.png"]  # asked for, and refused


def test_missing_extra_message(monkeypatch):
    monkeypatch.setattr(
        pdf_module,
        "pdf_unavailable_reason",
        lambda: "needs WeasyPrint: pip install 'eil-pipelines[pdf]'",
    )
    assert pdf_module.pdf_problem("x") == (
        'pipeline "x": the "pdf" format needs WeasyPrint: pip install \'eil-pipelines[pdf]\''
    )
    with pytest.raises(pdf_module.PdfUnavailableError) as error:
        pdf_module.html_to_pdf("<p>x</p>")
    assert (
        str(error.value) == "the \"pdf\" format needs WeasyPrint: pip install 'eil-pipelines[pdf]'"
    )


def test_missing_weasyprint_is_named_with_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import raises ImportError
    pdf_module.pdf_unavailable_reason.cache_clear()
    try:
        assert pdf_module.pdf_unavailable_reason() == (
            "needs WeasyPrint: pip install 'eil-pipelines[pdf]'"
        )
    finally:
        pdf_module.pdf_unavailable_reason.cache_clear()


def test_weasyprint_warnings_are_one_line_without_verbose(caplog):
    weasyprint_or_skip()
    import logging

    page = html_document(
        "T", '<p style="foo: bar; color: nonsense">x</p><img src="missing.png" alt="m">'
    )
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # as eil-run without -v
    try:
        with caplog.at_level(logging.WARNING):
            pdf_module.html_to_pdf(page)
    finally:
        root.setLevel(level)
    from_weasyprint = [r for r in caplog.records if r.name.startswith("weasyprint")]
    assert from_weasyprint == []
    ours = [r.getMessage() for r in caplog.records if r.name == "eil_pipelines.render.pdf"]
    assert len(ours) <= 1
    if ours:  # the refused image: one line, counted, with the first problem
        assert re.match(
            r"PDF: WeasyPrint reported \d+ problems? \(first: .+\); -v shows each$", ours[0]
        )

    caplog.clear()
    root.setLevel(logging.INFO)  # -v: WeasyPrint's own records pass through
    try:
        with caplog.at_level(logging.INFO):
            pdf_module.html_to_pdf(page)
    finally:
        root.setLevel(level)
    assert any(
        r.name.startswith("weasyprint") and "Ignored" in r.getMessage() for r in caplog.records
    )


def test_a_wide_long_table_fits_the_page_width_and_splits_between_rows():
    """Paper cannot scroll: 14 columns of long snake_case headings, long codes and
    figures are laid out within the page's width (nothing runs off the edge), and
    the 120 rows split across pages with the headings repeated on each."""
    weasyprint_or_skip()
    import pandas as pd
    from weasyprint.formatting_structure import boxes

    from eil_pipelines.render.filters import render_table

    frame = pd.DataFrame(
        {
            f"customer_segment_{i}_description": [
                f"NORTHWESTERN_TERRITORIES_DISTRIBUTION_{i}_{r}" if i % 3 == 0 else r * 1234567.891
                for r in range(120)
            ]
            for i in range(14)
        }
    )
    html = html_document("Wide", "<h1>Wide</h1>\n" + str(render_table(frame, "html", 1000)))
    document = pdf_module.layout_pdf(html)
    assert len(document.pages) > 1
    texts: list[str] = []
    for page in document.pages:
        box = page._page_box  # WeasyPrint's laid-out page: its content area and boxes
        left, right = box.content_box_x(), box.content_box_x() + box.width
        words = [b for b in box.descendants() if isinstance(b, boxes.TextBox)]
        assert words
        for word in words:
            assert left - 0.5 <= word.position_x, word.text
            assert word.position_x + word.width <= right + 0.5, word.text
        texts.append("".join(w.text for w in words))
        headers = [
            b for b in box.descendants() if isinstance(b, boxes.TableRowGroupBox) and b.is_header
        ]
        assert len(headers) == 1  # the headings on every page
    # Every cell is there: broken where it must, never cut off.
    joined = "".join(texts)
    for r in range(120):
        assert f"NORTHWESTERN_TERRITORIES_DISTRIBUTION_0_{r}" in joined
