"""The report email as a mail client sees it, parsed with the standard library:
an HTML part with inline styles and its charts as inline PNGs referenced by
Content-ID, a plain-text part, and the attachments asked for."""

from __future__ import annotations

import re

from delivery_helpers import START, at, eil_toml, pipeline_text, step

from eil_pipelines.schedule.testing import ManualClock


def run_and_receive(project, smtp, make_service, *, deliver: str, formats: str):
    project.write("eil.toml", eil_toml(smtp.port))
    project.pipeline("sales", pipeline_text(deliver=deliver, formats=formats))
    clock = ManualClock(START)
    service = make_service(clock)
    clock.set(at(13))
    step(service)
    return smtp.mails


def structure(message) -> list[str]:
    """The MIME tree as indented content types."""
    out = []

    def walk(part, depth):
        out.append("  " * depth + part.get_content_type())
        if part.is_multipart():
            for sub in part.iter_parts():
                walk(sub, depth + 1)

    walk(message, 0)
    return out


def test_report_email_structure_html_text_inline_charts_attachments(project, smtp, make_service):
    deliver = (
        '[[deliver]]\nto = ["cfo@example.com"]\n'
        'subject = "Sales {{ run.date }}: {{ metrics[0].text }} ({{ rows.daily }} days)"\n'
        'attach = ["md", "csv"]\n'
    )
    [mail] = run_and_receive(
        project,
        smtp,
        make_service,
        deliver=deliver,
        formats='["md", "html"]\nexports = ["csv"]',
    )
    message = mail.message
    assert structure(message) == [
        "multipart/mixed",
        "  multipart/alternative",
        "    text/plain",
        "    multipart/related",
        "      text/html",
        "      image/png",
        "  text/markdown",
        "  text/csv",
        "  text/csv",
    ]
    assert mail.subject == "Sales 2026-03-02: $120.00 (3 days)"
    assert str(message["From"]) == "Reports <reports@example.com>"
    assert str(message["To"]) == "cfo@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<[0-9a-f]{32}@example\.com>", message["Message-ID"])
    assert mail.mail_from == "reports@example.com"

    html = mail.html()
    [cid] = re.findall(r'<img src="cid:([^"]+)"', html)
    [image] = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert image["Content-ID"] == f"<{cid}>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    # Mail clients drop SVG and <style>; a CSP allowing only data: images would hide cid: ones.
    assert "<svg" not in html and "<style" not in html and "Content-Security-Policy" not in html
    assert '<h1 style="font-size:26px' in html
    assert 'class="delta up good" style="' in html
    assert "$120.00" in html
    assert "SQL used" not in html  # the collapsed SQL is left out of emails

    text = mail.text()
    assert text.startswith("# Daily Sales\n")
    assert "- **Revenue** $120.00 ▲ +20.0% vs $100.00" in text
    assert "[Chart: Revenue by day: line chart" in text
    assert "run scheduled 2026-03-02 13:00 UTC" in text

    attachments = {p.get_filename(): p for p in message.iter_attachments()}
    assert sorted(attachments) == [
        "sales-2026-03-02T1300-daily.csv",
        "sales-2026-03-02T1300-kpis.csv",
        "sales-2026-03-02T1300.md",
    ]
    report = project.reports / "sales" / "2026-03-02T1300.md"
    assert attachments["sales-2026-03-02T1300.md"].get_content() == report.read_text()
    assert (
        attachments["sales-2026-03-02T1300-daily.csv"]
        .get_content()
        .replace("\r\n", "\n")
        .startswith("day,revenue\n1,10.0\n")
    )


def test_html_only_pipeline_still_mails_charts_as_png(project, smtp, make_service):
    [mail] = run_and_receive(
        project,
        smtp,
        make_service,
        deliver='[[deliver]]\nto = "cfo@example.com"\n',
        formats='["html"]',
    )
    html = mail.html()
    [cid] = re.findall(r'src="cid:([^"]+)"', html)
    assert any(p["Content-ID"] == f"<{cid}>" for p in mail.message.walk())
    # Without Markdown, the plain-text part is the HTML as text.
    assert "Revenue $120.00" in " ".join(mail.text().split())
    assert (project.reports / "sales" / "2026-03-02T1300_charts" / "revenue_by_day.png").exists()


def test_markdown_only_pipeline_is_converted_with_inline_charts(project, smtp, make_service):
    [mail] = run_and_receive(
        project,
        smtp,
        make_service,
        deliver='[[deliver]]\nto = "cfo@example.com"\n',
        formats='["md"]\ndata = "full"',  # the data tables too, to see them converted
    )
    html = mail.html()
    [cid] = re.findall(r'src="cid:([^"]+)"', html)
    assert "_charts/" not in html
    assert any(p["Content-ID"] == f"<{cid}>" for p in mail.message.walk())
    assert "<table" in html and "<svg" not in html


def test_each_recipient_gets_an_own_message(project, smtp, make_service):
    mails = run_and_receive(
        project,
        smtp,
        make_service,
        deliver='[[deliver]]\nto = ["a@example.com", "b@example.com"]\n',
        formats='["md"]',
    )
    assert sorted((m.rcpt_tos, str(m.message["To"])) for m in mails) == [
        (["a@example.com"], "a@example.com"),
        (["b@example.com"], "b@example.com"),
    ]
    assert mails[0].message["Message-ID"] != mails[1].message["Message-ID"]


# --- the body's HTML, function by function -----------------------------------------

PNG_800 = b"\x89PNG\r\n\x1a\n" + bytes(8) + (800).to_bytes(4, "big") + bytes(8)


def test_chart_svg_becomes_a_cid_image_and_the_rest_stays_byte_for_byte():
    from eil_pipelines.deliver.html import swap_charts

    fragment = (
        '<p title="a > b">before</p>\n'
        '<figure class="chart" id="chart-rev">\n'
        '<svg aria-label="Revenue &amp; &#34;more&#34;"><svg><g/></svg><text>x</text></svg>\n'
        "<figcaption>Revenue</figcaption>\n</figure>\n"
        "<!-- <svg> in a comment -->\n"
        '<figure class="chart" id="chart-gone"><svg aria-label="Gone"></svg></figure>\n'
        '<svg id="logo"><path d="M0"/></svg>'
    )
    html, images = swap_charts(fragment, {"rev": PNG_800}, stamp="2026-03-02T1300")
    assert [(i.cid, i.filename) for i in images] == [
        ("chart-rev.2026-03-02T1300@eil-pipelines", "rev.png")
    ]
    assert html == (
        '<p title="a > b">before</p>\n'
        '<figure class="chart" id="chart-rev">\n'
        '<img src="cid:chart-rev.2026-03-02T1300@eil-pipelines" alt="Revenue &amp; &#34;more&#34;"'
        ' width="768" style="width:100%;max-width:768px">\n'
        "<figcaption>Revenue</figcaption>\n</figure>\n"
        "<!-- <svg> in a comment -->\n"
        '<figure class="chart" id="chart-gone"><p class="chart-missing">Chart: Gone</p></figure>\n'
        '<svg id="logo"><path d="M0"/></svg>'  # not a chart: left alone
    )


def test_markdown_chart_images_point_at_their_inline_part():
    from eil_pipelines.deliver.html import swap_charts

    fragment = (
        '<p><img src="2026-03-02_charts/rev.png" alt="Revenue"></p>\n'
        '<p><img src="elsewhere/rev.png" alt="not a chart"></p>'
    )
    html, images = swap_charts(fragment, {"rev": PNG_800}, stamp="2026-03-02")
    assert html == (
        '<p><img width="768" src="cid:chart-rev.2026-03-02@eil-pipelines" alt="Revenue"></p>\n'
        '<p><img src="elsewhere/rev.png" alt="not a chart"></p>'
    )
    assert [i.cid for i in images] == ["chart-rev.2026-03-02@eil-pipelines"]


def test_inline_styles_touch_only_start_tags():
    from eil_pipelines.deliver.html import inline_styles

    fragment = (
        '<p title="a>b" class="meta" style="color:red;">x</p>'
        "<!-- <p> stays a comment -->"
        "<td class=num style='font-family:&quot;A&quot;'>1</td><br/><custom-tag>y</custom-tag>"
    )
    assert inline_styles(fragment) == (
        '<p title="a>b" class="meta" style="margin:0 0 14px;color:#57606a;font-size:14px;'
        'color:red">x</p>'
        "<!-- <p> stays a comment -->"
        '<td class=num style="padding:6px 10px;border-bottom:1px solid #d0d7de;text-align:left;'
        'vertical-align:top;text-align:right;font-family:&#34;A&#34;">1</td><br/>'
        "<custom-tag>y</custom-tag>"
    )


def test_the_collapsed_sql_goes_even_when_nested_and_the_report_main_is_found():
    from eil_pipelines.deliver.html import email_document, report_fragment

    document = (
        '<html><body><main class="report">\n<h1>T</h1>\n'
        "<details><summary>SQL used</summary><details><summary>inner</summary>x</details>"
        "<pre>select 1</pre></details>\n<p>after</p>\n<main>nested</main>\n</main></body></html>"
    )
    fragment = report_fragment(html_document=document)
    assert fragment.startswith("<h1>T</h1>") and fragment.endswith("<main>nested</main>")
    html = email_document(title="T", fragment=fragment)
    assert "SQL used" not in html and "inner" not in html and "select 1" not in html
    assert '<p style="margin:0 0 14px">after</p>' in html
