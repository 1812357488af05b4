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
        formats='["md"]',
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
