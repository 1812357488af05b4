"""Template loading, the sandbox, escaping and the exact error messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from eil_pipelines.errors import RenderError
from eil_pipelines.render import (
    BUILTIN_NAME,
    TemplateSource,
    compile_template,
    load_template,
    render_report,
)

NAME = "templates/x.md.j2"


def render(text: str, context: dict | None = None, fmt: str = "md", **options) -> str:
    return render_report(TemplateSource(NAME, text), context or {}, fmt, **options)


def render_error(text: str, context: dict | None = None, fmt: str = "md") -> RenderError:
    with pytest.raises(RenderError) as info:
        render(text, context, fmt)
    return info.value


def orders() -> pd.DataFrame:
    return pd.DataFrame({"region": ["North", "South"], "revenue": [100.0, 250.0]})


# -- loading and compiling ------


def test_load_template_uses_the_display_name(tmp_path: Path):
    path = tmp_path / "weekly.md.j2"
    path.write_text("# {{ pipeline.title }}\n", encoding="utf-8")
    source = load_template(path, display_name="templates/weekly.md.j2")
    assert source.name == "templates/weekly.md.j2"
    assert source.path == path
    assert source.text == "# {{ pipeline.title }}\n"
    assert load_template(path).name == path.as_posix()


def test_load_template_errors(tmp_path: Path):
    with pytest.raises(RenderError) as info:
        load_template(tmp_path / "nope.md.j2", display_name="templates/nope.md.j2")
    assert str(info.value) == "templates/nope.md.j2: template file not found"
    bad = tmp_path / "bad.md.j2"
    bad.write_bytes(b"caf\xe9")
    with pytest.raises(RenderError) as info:
        load_template(bad, display_name="templates/bad.md.j2")
    assert str(info.value) == (
        "templates/bad.md.j2: template is not UTF-8 text (unexpected end of data at byte 3)"
    )


def test_builtin_template_loads_and_compiles():
    source = load_template(None)
    assert source.name == BUILTIN_NAME == "<built-in executive>"
    assert source.path is None
    compile_template(source)


def test_syntax_error_names_template_and_line():
    with pytest.raises(RenderError) as info:
        compile_template(TemplateSource(NAME, "# Title\n\n{{ foo } }}\n"))
    err = info.value
    assert str(err) == "templates/x.md.j2:3: template syntax error: unexpected '}'"
    assert (err.template, err.line, err.detail) == (
        NAME,
        3,
        "template syntax error: unexpected '}'",
    )
    # render_report reports it the same way.
    assert str(render_error("# Title\n\n{{ foo } }}\n")) == str(err)


def test_unknown_filter_is_caught_when_compiling():
    with pytest.raises(RenderError) as info:
        compile_template(TemplateSource(NAME, "a\n{{ data.x | tabel }}"))
    assert str(info.value) == "templates/x.md.j2:2: template syntax error: No filter named 'tabel'."


def test_compile_does_not_render():
    compile_template(TemplateSource(NAME, "{{ not_defined_anywhere.at_all }}"))


# -- undefined names ------


def test_undefined_variable_with_line():
    err = render_error("# Title\n\nText {{ foo }}\n")
    assert str(err) == "templates/x.md.j2:3: undefined template variable: 'foo' is undefined"
    assert err.line == 3


def test_strict_undefined_everywhere():
    assert render_error("{{ params.nope }}", {"params": {}}).detail == (
        "undefined template variable: 'dict object' has no attribute 'nope'"
    )
    assert render_error("{% if foo.bar %}x{% endif %}").detail == (
        "undefined template variable: 'foo' is undefined"
    )
    assert render_error("{% for x in missing %}{% endfor %}").detail == (
        "undefined template variable: 'missing' is undefined"
    )
    assert render_error("{{ 1 | number(missing) }}").detail == (
        "undefined template variable: 'missing' is undefined"
    )
    assert render("{{ 'yes' if foo is defined else 'no' }}") == "no\n"


def test_undefined_in_the_builtin_template_names_it():
    source = load_template(None)
    line = source.text.splitlines().index("# {{ pipeline.title }}") + 1
    with pytest.raises(RenderError) as info:
        render_report(source, {}, "md")
    assert str(info.value) == (
        f"<built-in executive>:{line}: undefined template variable: "
        "'dict object' has no attribute 'title'"
    )


def test_unknown_query_and_chart_list_what_exists():
    err = render_error(
        "\n{{ data.ordrs | table }}", {"data": {"orders": orders(), "refunds": orders()}}
    )
    assert str(err) == "templates/x.md.j2:2: unknown query 'ordrs' (queries: orders, refunds)"
    err = render_error("{{ charts.revenue }}")
    assert str(err) == "templates/x.md.j2:1: unknown chart 'revenue' (this report has no charts)"


def test_other_failures_are_render_errors_with_a_line():
    assert str(render_error("a\nb\n{{ 1 / 0 }}")) == (
        "templates/x.md.j2:3: error while rendering: ZeroDivisionError: division by zero"
    )
    assert str(render_error("{% include 'other.md.j2' %}")) == (
        "templates/x.md.j2:1: {% include %}, {% import %} and {% extends %} are not supported "
        "(asked for 'other.md.j2'): a report template is one file"
    )


# -- sandbox ------


def test_dunder_access_is_a_sandbox_violation():
    err = render_error("Intro\n{{ ''.__class__.__mro__ }}")
    assert str(err) == (
        "templates/x.md.j2:2: sandbox violation: access to attribute '__class__' of 'str' "
        "object is unsafe."
    )
    assert render_error("{{ data.__init__ }}").detail.startswith("sandbox violation: ")


@pytest.mark.parametrize("call", ["to_csv(path)", "to_pickle(path)", "to_parquet(path)"])
def test_dataframe_writers_are_blocked(tmp_path: Path, call: str):
    target = tmp_path / "leak"
    err = render_error(
        f"{{{{ data.orders.{call} }}}}", {"data": {"orders": orders()}, "path": str(target)}
    )
    method = call.split("(")[0]
    assert err.detail == (
        f"sandbox violation: access to attribute '{method}' of 'DataFrame' object is unsafe."
    )
    assert not target.exists()


@pytest.mark.parametrize(
    ("expression", "owner"),
    [
        ("data.orders.revenue.values.tofile(path)", "ndarray"),
        ("data.orders.revenue.to_csv(path)", "Series"),
        ("data.orders.query('revenue > 1')", "DataFrame"),
        ("data.orders.eval('revenue * 2')", "DataFrame"),
        ("data.orders.agg('to_csv', 0, path)", "DataFrame"),
        ("data.orders.style", "DataFrame"),
        ("data.orders.plot", "DataFrame"),
        ("data.orders.revenue.sum().tofile(path)", "float64"),
    ],
)
def test_pandas_and_numpy_are_held_to_the_allow_list(tmp_path: Path, expression: str, owner: str):
    target = tmp_path / "leak"
    context = {"data": {"orders": orders()}, "path": str(target)}
    err = render_error(f"{{{{ {expression} }}}}", context)
    assert err.detail.startswith("sandbox violation: access to attribute ")
    assert f"of '{owner}' object is unsafe." in err.detail
    assert not target.exists()


def test_mutating_context_values_is_blocked():
    err = render_error("{{ insights.append('x') }}", {"insights": []})
    assert err.detail == (
        "sandbox violation: access to attribute 'append' of 'list' object is unsafe."
    )


def test_read_only_data_access_works():
    context = {"data": {"orders": orders()}}
    text = (
        "{{ data.orders.revenue.sum() | number }} "
        "{{ data.orders.shape[0] }} "
        "{{ data.orders.head(1).region.tolist() }} "
        "{% for row in data.orders.itertuples() %}{{ row.region }};{% endfor %} "
        "{{ data.orders.to_dict('records')[1].region }} "
        "{{ data.orders['revenue'].max() | currency }} "
        "{{ data.orders.iloc[1].revenue | number }} "
        "{% for i, row in data.orders.iterrows() %}{{ i }}={{ row.region }};{% endfor %}"
    )
    assert render(text, context) == (
        "350 2 \\['North'\\] North;South; South $250.00 250 0=North;1=South;\n"
    )


# -- escaping ------


@dataclass
class Pipeline:
    title: str


def test_html_escapes_values_and_data():
    context = {
        "pipeline": {"title": "Sales <i>weekly</i>"},
        "params": {"region": "<b>EMEA</b>"},
        "data": {"orders": pd.DataFrame({"name": ["<script>alert(1)</script>"], "n": [1]})},
    }
    text = "# {{ pipeline.title }}\n\nRegion {{ params.region }}\n\n{{ data.orders | table }}\n"
    page = render(text, context, "html")
    assert "<script" not in page
    assert "<b>" not in page and "<i>" not in page
    assert "&lt;b&gt;EMEA&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>Sales &lt;i&gt;weekly&lt;/i&gt;</title>" in page
    # Markdown shows values as text too: "<" as a reference, never a tag.
    markdown = render(text, context, "md")
    assert "Region &lt;b>EMEA&lt;/b>" in markdown
    assert "| &lt;script>alert(1)&lt;/script> | 1 |" in markdown


def test_html_values_cannot_become_markdown_links_or_blocks():
    context = {"params": {"x": "![pixel](https://tracker.example/p.png)\n\n# Heading\n<div>"}}
    page = render("Value: {{ params.x }}\n", context, "html")
    assert "<img" not in page
    assert "<a " not in page
    assert 'src="http' not in page and 'href="http' not in page
    assert "<h1" not in page
    assert "<div>" not in page
    # In Markdown too: no image, no heading, no HTML block, all on one line.
    assert render("{{ params.x }}", context, "md") == (
        "!\\[pixel\\](https://tracker.example/p.png)  # Heading &lt;div>\n"
    )


def test_markup_from_the_template_itself_is_kept():
    page = render(
        '<p class="note">Hello **{{ name }}**</p>\n\nA [link](#top).\n', {"name": "<x>"}, "html"
    )
    assert '<p class="note">Hello **&lt;x&gt;**</p>' in page
    assert '<a href="#top">link</a>' in page


def test_title_from_a_pipeline_object():
    page = render("body", {"pipeline": Pipeline("Margins & costs")}, "html")
    assert "<title>Margins &amp; costs</title>" in page


def test_format_variable_and_unknown_format():
    assert render("{{ format }}") == "md\n"
    assert "<p>html</p>" in render("{{ format }}", fmt="html")
    with pytest.raises(ValueError, match="unknown format 'pdf'"):
        render("x", fmt="pdf")


def test_jinja_default_whitespace_rules():
    # Project templates rely on Jinja's documented defaults: no trim_blocks, no lstrip_blocks.
    assert render("a\n{%- if true %}\nb\n{%- endif %}\nc") == "a\nb\nc\n"
    assert render("{% for x in [1, 2] %}\n- {{ x }}\n{% endfor %}") == "- 1\n\n- 2\n"
