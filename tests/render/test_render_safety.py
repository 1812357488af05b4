"""Data that cannot become markup or links, and templates that cannot blow up the output."""

from __future__ import annotations

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from eil_pipelines.errors import RenderError
from eil_pipelines.render import TemplateSource, load_template, render_report
from eil_pipelines.render import environment as render_environment
from eil_pipelines.render.links import is_safe_url, neutralize_unsafe_links

NAME = "templates/x.md.j2"

HOSTILE = ["<!-- x", "![img](http://tracker.example/p.png)", "<script>alert(1)</script>", "a|b"]


def render(text: str, context: dict | None = None, fmt: str = "md") -> str:
    return render_report(TemplateSource(NAME, text), context or {}, fmt)


def rendered_html_of_markdown(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


# -- Markdown reports escape data values ------


def test_hostile_row_values_in_a_markdown_table_are_text():
    frame = pd.DataFrame({"value": HOSTILE, "n": [1, 2, 3, 4]})
    text = render("{{ data.rows | table }}", {"data": {"rows": frame}})
    assert text == (
        "| value | n |\n"
        "| --- | ---: |\n"
        "| &lt;!-- x | 1 |\n"
        "| !\\[img\\](http://tracker.example/p.png) | 2 |\n"
        "| &lt;script>alert(1)&lt;/script> | 3 |\n"
        "| a\\|b | 4 |\n"
    )
    # What a Markdown viewer makes of it: one table of four rows, no image, comment or script.
    html = rendered_html_of_markdown(text)
    assert html.count("<tr>") == 5
    assert "<img" not in html and "<!--" not in html and "<script" not in html
    assert "<td>![img](http://tracker.example/p.png)</td>" in html
    assert "<td>a|b</td>" in html


def test_hostile_insights_in_the_builtin_markdown_report_are_text():
    builtin = load_template()
    context = {"pipeline": {"title": "T"}, "insights": HOSTILE}
    text = render_report(builtin, context, "md")
    assert "- &lt;!-- x\n" in text
    assert "- !\\[img\\](http://tracker.example/p.png)\n" in text
    assert "- &lt;script>alert(1)&lt;/script>\n" in text
    assert "- a\\|b\n" in text
    html = rendered_html_of_markdown(text)
    assert "<img" not in html and "<!--" not in html and "<script" not in html


@pytest.mark.parametrize(
    ("value", "shown"),
    [("---", "\\---"), ("- item", "\\- item"), ("1. item", "1\\. item"), ("-12.5%", "-12.5%")],
)
def test_a_value_at_a_line_start_opens_no_list_or_rule(value: str, shown: str):
    assert render("Title\n{{ x }}", {"x": value}) == f"Title\n{shown}\n"
    assert "<h2" not in rendered_html_of_markdown(render("Title\n{{ x }}", {"x": value}))


def test_a_value_cannot_start_a_block_of_its_own():
    assert render("{{ x }}", {"x": "# Title\n\n> quote\n```"}) == "\\# Title  > quote \\`\\`\\`\n"


def test_the_html_report_escapes_the_same_values():
    frame = pd.DataFrame({"value": HOSTILE})
    page = render(
        "{{ data.rows | table }}\n\n{{ x }}\n", {"data": {"rows": frame}, "x": HOSTILE[1]}, "html"
    )
    assert "<img" not in page and "<!-- x" not in page and "<script" not in page
    assert "&lt;!-- x" in page and "&lt;script&gt;" in page


# -- links ------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "java\tscript:alert(1)",
        " javascript:alert(1)",
        "jav&#x61;script:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
    ],
)
def test_unsafe_urls_are_refused(url: str):
    assert not is_safe_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a?b=c",
        "http://x",
        "mailto:cfo@example.com",
        "2026-11-27.html",
        "#top",
        "../latest.html",
        "/reports/x",
        "a/b:c",
    ],
)
def test_safe_urls_are_kept(url: str):
    assert is_safe_url(url)


def test_a_data_image_is_safe_only_as_an_image_and_never_svg():
    assert is_safe_url("data:image/png;base64,AAAA", image=True)
    assert not is_safe_url("data:image/png;base64,AAAA")
    assert not is_safe_url("data:image/svg+xml;base64,AAAA", image=True)
    assert is_safe_url("cid:chart-1@eil", image=True) and not is_safe_url("cid:x")


def test_a_javascript_link_from_data_becomes_text_in_the_html_report():
    context = {"row": {"url": "javascript:alert(document.cookie)", "name": "Acme"}}
    template = (
        '<p><a href="{{ row.url }}">raw</a> <a href="https://example.com/{{ row.name }}">ok</a></p>\n\n'
        "Markdown link: [{{ row.name }}]({{ row.url }}).\n"
    )
    page = render(template, context, "html")
    body = page.split("<main", 1)[1]
    assert 'href="javascript' not in body
    assert "<a >raw</a>" in body
    assert '<a href="https://example.com/Acme">ok</a>' in body
    # markdown-it leaves a link it refuses as its text
    assert '<a href="javascript' not in body and "[Acme](javascript:alert(document.cookie))" in body


def test_neutralize_keeps_safe_attributes_and_removes_unsafe_ones():
    html = (
        '<a class="x" href=\'JAVASCRIPT:go()\' title="t">a</a>'
        '<img src="data:image/png;base64,AA" alt="">'
        "<img src=data:text/html,x>"
        '<a href="mailto:a@example.com">m</a>'
        '<image href="data:image/png;base64,AA"/><use href="data:image/png;base64,AA"/>'
    )
    assert neutralize_unsafe_links(html) == (
        '<a class="x"  title="t">a</a>'
        '<img src="data:image/png;base64,AA" alt="">'
        "<img >"
        '<a href="mailto:a@example.com">m</a>'
        '<image href="data:image/png;base64,AA"/><use />'
    )


# -- size limits ------


def test_a_huge_string_repetition_is_refused_before_it_is_built():
    with pytest.raises(RenderError) as info:
        render("{{ 'a' * 100000000 }}")
    assert str(info.value) == (
        f"{NAME}:1: a repetition with * would make 100,000,000 items; the limit is 1,000,000"
    )


def test_a_huge_power_is_refused():
    with pytest.raises(RenderError) as info:
        render("{{ 10 ** 100000000 }}")
    assert str(info.value) == f"{NAME}:1: an exponent above 1,000 is not allowed in **"


def test_small_repetitions_and_powers_still_work():
    assert (
        render("{{ '-' * 3 }} {{ 3 * 'ab' }} {{ 2 ** 10 }} {{ 6 * 7 }}") == "\\--- ababab 1024 42\n"
    )


def test_the_rendered_output_has_a_size_limit(monkeypatch: pytest.MonkeyPatch):
    # A loop under the repetition limit, many times over: only the output limit stops it.
    monkeypatch.setattr(render_environment, "MAX_OUTPUT_CHARS", 10_000)
    with pytest.raises(RenderError) as info:
        render("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}")
    assert str(info.value) == (
        f"{NAME}: the report is larger than 10,000 characters, the limit: "
        "show fewer rows (the full data belongs in exports)"
    )


def test_markdown_to_html_which_the_email_body_uses_checks_links_too():
    from eil_pipelines.render import markdown_to_html

    fragment = markdown_to_html(
        '<p><a href="javascript:alert(1)">raw</a></p>\n\n'
        "[md](javascript:alert(1)) [ok](https://example.com) ![i](data:text/html,x)\n"
    )
    assert "javascript:" not in fragment.replace("[md](javascript:alert(1))", "")
    assert "<a >raw</a>" in fragment
    assert '<a href="https://example.com">ok</a>' in fragment
    assert "<img" not in fragment
