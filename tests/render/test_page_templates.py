"""The engine's own pages (report site, email body) render through the report
sandbox: escaped, strict, and able to load only the built-in templates."""

from __future__ import annotations

from importlib import resources

import pytest
from jinja2 import TemplateNotFound, UndefinedError
from jinja2.exceptions import SecurityError
from markupsafe import Markup

from eil_pipelines.render.environment import ReportEnvironment, page_environment, render_page

PAGES = ("site_index.html.j2", "site_pipeline.html.j2", "email.html.j2")


def test_it_is_the_report_sandbox_with_strict_undefined():
    env = page_environment()
    assert isinstance(env, ReportEnvironment)
    with pytest.raises(UndefinedError, match="'missing' is undefined"):
        env.from_string("{{ missing }}").render()
    with pytest.raises(SecurityError):
        env.from_string("{{ value.__class__.__mro__ }}").render(value="x")
    with pytest.raises(SecurityError):
        env.from_string("{{ items.append(1) }}").render(items=[])


def test_html_pages_escape_text_and_keep_markup():
    html = render_page(
        "email.html.j2",
        {
            "title": '<script>alert("x")</script>',
            "link": "https://example.com/?a=1&b=2",
            "footer": "a & b",
            "fragment": Markup("<p>kept</p>"),
            "width": 768,
            "font": Markup("Arial,'Noto Sans'"),
        },
    )
    assert "<title>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</title>" in html
    assert 'href="https://example.com/?a=1&amp;b=2"' in html
    assert "<p>kept</p>" in html and ">a &amp; b</p>" in html
    assert "font-family:Arial,'Noto Sans';" in html


@pytest.mark.parametrize(
    "name",
    [
        "executive.md.j2",  # the report template is not a page
        "../environment.py",
        "builtin/site_index.html.j2",
        "missing.html.j2",
        "SITE_INDEX.HTML.J2",
    ],
)
def test_only_built_in_pages_load(name):
    with pytest.raises(TemplateNotFound):
        page_environment().get_template(name)


@pytest.mark.parametrize("name", PAGES)
def test_each_page_is_shipped_and_compiles(name):
    assert resources.files("eil_pipelines.render").joinpath("builtin", name).is_file()
    page_environment().get_template(name)


def test_a_template_may_not_reach_files_outside_the_built_in_folder():
    env = page_environment()
    with pytest.raises(TemplateNotFound):
        env.from_string('{% include "../report.css" %}').render()
