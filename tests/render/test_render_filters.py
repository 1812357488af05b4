"""The template filters, in both formats, through real renderings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from eil_pipelines.errors import RenderError
from eil_pipelines.render import TemplateSource, render_report
from eil_pipelines.render.filters import COLUMNS_ATTR, EXPORT_ATTR, format_period, render_table


def md(text: str, context: dict | None = None, **options) -> str:
    """Render a one-off template as Markdown, without the final newline."""
    source = TemplateSource("templates/t.md.j2", text)
    return render_report(source, context or {}, "md", **options).rstrip("\n")


def html_fragment(text: str, context: dict | None = None, **options) -> str:
    """The Markdown the HTML rendering produces (before markdown-it)."""
    from eil_pipelines.render import create_environment

    env = create_environment("html", **options)
    return env.from_string(text).render(**(context or {}))


@dataclass
class Metric:
    label: str = "Revenue"
    value: float = 1_240_000
    previous: float | None = 1_100_000
    change: float | None = 140_000
    change_pct: float | None = 0.124
    text: str = "$1.24M"
    previous_text: str = "$1.10M"
    change_text: str = "▲ +12.4%"  # as run/metrics.py writes it
    direction: str | None = "up"
    sentiment: str = "good"
    good: str = "up"
    format: str = "compact"


# -- numbers ------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 1234567.8 | number }}", "1,234,568"),
        ("{{ 12.345 | number }}", "12.35"),
        ("{{ 12.345 | number(1) }}", "12.3"),
        ("{{ none | number }}", "–"),
        ("{{ v | number }}", "12.50"),
        ("{{ 1234.5 | currency }}", "$1,234.50"),
        ("{{ 1234.5 | currency('£') }}", "£1,234.50"),
        ("{{ 25000 | currency(decimals=2) }}", "$25,000.00"),
        ("{{ -50 | currency }}", "-$50.00"),
        ("{{ 0.1234 | percent }}", "12.3%"),
        ("{{ 0.1234 | percent(2) }}", "12.34%"),
        ("{{ 1240000 | compact }}", "1.24M"),
        ("{{ 5300 | compact }}", "5.3K"),
        ("{{ 950 | compact }}", "950"),
    ],
)
def test_number_filters(template, expected):
    assert md(template, {"v": Decimal("12.5")}) == expected


def test_currency_default_symbol_comes_from_the_report():
    assert md("{{ 1234.5 | currency }}", currency="€") == "€1,234.50"


# -- delta ------


def test_delta_markdown():
    assert md("{{ 0.124 | delta }}") == "▲ +12.4%"
    assert md("{{ -0.03 | delta }}") == "▼ −3.0%"
    assert md("{{ 0 | delta }}") == "■ 0.0%"
    assert md("{{ none | delta }}") == "–"
    assert md("{{ m | delta }}", {"m": Metric()}) == "▲ +12.4%"


def test_delta_html_classes_say_direction_and_sentiment():
    assert html_fragment("{{ 0.124 | delta }}") == '<span class="delta up good">▲ +12.4%</span>'
    assert (
        html_fragment("{{ 0.124 | delta(good='down') }}")
        == '<span class="delta up bad">▲ +12.4%</span>'
    )
    assert html_fragment("{{ -0.03 | delta }}") == '<span class="delta down bad">▼ −3.0%</span>'
    assert html_fragment("{{ 0 | delta }}") == '<span class="delta flat neutral">■ 0.0%</span>'
    assert html_fragment("{{ none | delta }}") == '<span class="delta neutral">–</span>'


def test_delta_of_a_metric_uses_its_good_direction():
    cost = Metric(label="Cost", good="down", sentiment="bad")
    assert html_fragment("{{ m | delta }}", {"m": cost}) == (
        '<span class="delta up bad">▲ +12.4%</span>'
    )
    no_previous = Metric(
        previous=None, change=None, change_pct=None, direction=None, change_text="–"
    )
    assert html_fragment("{{ m | delta }}", {"m": no_previous}) == (
        '<span class="delta neutral">–</span>'
    )


def test_delta_rejects_an_unknown_good_direction():
    with pytest.raises(RenderError) as info:
        md("\n{{ 0.1 | delta(good='sideways') }}")
    assert str(info.value) == (
        'templates/t.md.j2:2: filter "delta": good must be "up" or "down", not \'sideways\''
    )


# -- dates ------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (datetime(2026, 11, 1), datetime(2026, 12, 1), "1–30 Nov 2026"),
        (datetime(2026, 11, 27), datetime(2026, 11, 28), "27 Nov 2026"),
        (date(2026, 11, 24), date(2026, 12, 2), "24 Nov – 1 Dec 2026"),
        (datetime(2026, 12, 28), datetime(2027, 1, 4), "28 Dec 2026 – 3 Jan 2027"),
        (datetime(2026, 11, 27, 8), datetime(2026, 11, 27, 9), "27 Nov 2026 08:00–09:00"),
        (
            datetime(2026, 11, 26, 8),
            datetime(2026, 11, 27, 8),
            "26 Nov 2026 08:00 – 27 Nov 2026 08:00",
        ),
        ("2026-11-01", "2026-12-01", "1–30 Nov 2026"),
        (date(2026, 12, 1), None, "1 Dec 2026"),
        (None, None, "–"),
    ],
)
def test_period(start, end, expected):
    assert format_period(start, end) == expected


def test_date_filter_matches_its_doc():
    # docs/templates.md promises `{{ run.date | date }}` → `27 Nov 2026` (issue 16).
    context = {
        "day": date(2026, 11, 27),
        "d": datetime(2026, 11, 27),
        "t": pd.Timestamp("2026-11-27 08:30"),
        "s": datetime(2026, 11, 27, 7, 49, 50),  # an ad-hoc run's time: minutes, not seconds
    }
    assert md(
        "{{ day | date }}/{{ d | date }}/{{ t | date }}/{{ s | date }}/{{ d | date('%d/%m/%Y') }}",
        context,
    ) == ("27 Nov 2026/27 Nov 2026/27 Nov 2026 08:30/27 Nov 2026 07:49/27/11/2026")
    assert md("{{ none | date }}") == "–"
    doc = (Path(__file__).parents[2] / "docs" / "templates.md").read_text()
    assert "| `date(fmt=None)` | `{{ run.date \\| date }}` | `27 Nov 2026`" in doc
    assert md("{{ run.date | date }}", {"run": {"date": date(2026, 11, 27)}}) == "27 Nov 2026"


# -- tables ------


def sales() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": ["North", "South|East"],
            "day": pd.to_datetime(["2026-11-26", "2026-11-27"]),
            "revenue": [1234.5, 99.0],
            "orders": [10, 2000],
            "year": [2026, 2026],
            "active": [True, False],
        }
    )


def test_markdown_table_golden():
    assert md("{{ df | table }}", {"df": sales()}) == (
        "| region | day | revenue | orders | year | active |\n"
        "| --- | --- | ---: | ---: | --- | --- |\n"
        "| North | 2026-11-26 | $1,234.50 | 10 | 2026 | Yes |\n"
        "| South\\|East | 2026-11-27 | $99.00 | 2,000 | 2026 | No |"
    )


def test_markdown_table_cells_cannot_break_the_table():
    df = pd.DataFrame({"note": ["two\nlines", "a <b>tag</b>", r"esc\*aped"], "n": [1, None, 3]})
    assert md("{{ df | table }}", {"df": df}) == (
        "| note | n |\n"
        "| --- | ---: |\n"
        "| two lines | 1 |\n"
        "| a &lt;b>tag&lt;/b> | – |\n"
        "| esc\\\\\\*aped | 3 |"  # the backslash and the star, each escaped
    )


def test_table_cut_to_max_rows_says_how_many():
    df = pd.DataFrame({"n": range(1234)})
    text = md("{{ df | table }}", {"df": df})
    lines = text.splitlines()
    assert len(lines) == 2 + 50 + 2
    assert lines[-2:] == ["", "Showing 50 of 1,234 rows."]
    assert md("{{ df | table(max_rows=3) }}", {"df": df}).endswith(
        "| 2 |\n\nShowing 3 of 1,234 rows."
    )
    assert "Showing 10 of 1,234 rows." in md("{{ df | table }}", {"df": df}, max_rows=10)


def test_table_columns_and_datetimes_with_times():
    df = pd.DataFrame(
        {"at": pd.to_datetime(["2026-11-27 08:30", "2026-11-27 00:00"]), "x": [0.5, 0.25]}
    )
    assert md("{{ df | table(columns=['x', 'at']) }}", {"df": df}) == (
        "| x | at |\n| ---: | --- |\n| 0.50 | 2026-11-27 08:30 |\n| 0.25 | 2026-11-27 00:00 |"
    )


def test_table_errors_name_the_problem():
    with pytest.raises(RenderError) as info:
        md("{{ df | table(columns=['nope']) }}", {"df": sales()})
    assert info.value.detail == (
        "filter \"table\": no column 'nope' (columns: region, day, revenue, orders, year, active)"
    )
    with pytest.raises(RenderError) as info:
        md("{{ 5 | table }}")
    assert info.value.detail == (
        'filter "table": expected a query result such as data.orders, got int'
    )


def test_empty_table():
    empty = pd.DataFrame({"a": pd.Series([], dtype="float64")})
    assert md("{{ df | table }}", {"df": empty}) == "_No rows._"
    assert html_fragment("{{ df | table }}", {"df": empty}) == '<p class="empty">No rows.</p>'


def test_html_table_structure_and_escaping():
    df = pd.DataFrame({"name": ["<script>x</script>", "a\nb"], "amount": [1500.5, 2.5]})
    assert render_table(df, "html", 1) == (
        '<div class="table-wrap" tabindex="0">\n'
        '<table class="data">\n'
        "<thead>\n"
        '<tr><th scope="col">name</th><th scope="col" class="num">amount</th></tr>\n'
        "</thead>\n"
        "<tbody>\n"
        '<tr><td>&lt;script&gt;x&lt;/script&gt;</td><td class="num">$1,500.50</td></tr>\n'
        "</tbody>\n"
        "</table>\n"
        "</div>\n"
        '<p class="table-note">Showing 1 of 2 rows.</p>'
    )
    assert "<td>a<br>b</td>" in render_table(df, "html", 5)


def test_html_table_caption_names_the_scroll_region():
    out = render_table(pd.DataFrame({"a": [1]}), "html", 5, caption="Top <10>")
    assert '<div class="table-wrap" tabindex="0" role="region" aria-label="Top &lt;10&gt;">' in out
    assert "<caption>Top &lt;10&gt;</caption>" in out


def test_columns_are_formatted_by_type_and_name():
    df = pd.DataFrame(
        {
            "c_custkey": [123307, 5],
            "customer_id": [1234567, 8],
            "revenue": [630_016_305.0, 2_920_000_000.0],
            "change_pct": [0.0442, -0.6],
            "share": [0.25, 0.75],
            "units": [1500, 2],
            "Revenue ($)": [120023.0, 5.0],
            "vs week before (%)": [12.7, -10.9],
            "amount": [Decimal("1250.50"), Decimal("99.99")],  # DuckDB DECIMAL: objects
        }
    )
    assert md("{{ df | table }}", {"df": df}).splitlines()[2:] == [
        "| 123307 | 1234567 | $630M | +4.4% | 25.0% | 1,500 | 120,023 | 12.70 | $1,250.50 |",
        "| 5 | 8 | $2.92B | −60.0% | 75.0% | 2 | 5 | -10.90 | $99.99 |",
    ]
    assert (
        md("{{ df | table }}", {"df": df}, currency="€").splitlines()[2].endswith("| €1,250.50 |")
    )


def test_columns_from_the_pipeline_label_and_format():
    df = pd.DataFrame({"change_pct": [0.0442], "prev_avg_order_value": [84.5], "zip": [1010]})
    df.attrs[COLUMNS_ATTR] = {
        "change_pct": {"label": "Change", "format": "percent"},
        "prev_avg_order_value": {"label": "Avg order, before", "format": "currency"},
        "zip": {"format": "number"},
    }
    assert md("{{ df | table }}", {"df": df}).splitlines() == [
        "| Change | Avg order, before | zip |",
        "| ---: | ---: | ---: |",
        "| 4.4% | $84.50 | 1,010 |",
    ]


def test_a_document_holds_at_most_a_thousand_rows_per_table_and_per_loop():
    df = pd.DataFrame({"n": range(100_000), "v": [i * 0.5 for i in range(100_000)]})
    df.attrs[EXPORT_ATTR] = ("2026-11-27_data/big.csv", "CSV")
    text = md("{{ df | table(max_rows=100000) }}", {"df": df})
    assert len([line for line in text.splitlines() if line.startswith("| ")]) == 2 + 1000
    assert text.endswith(
        "Showing 1,000 of 100,000 rows. A report holds at most 1,000 rows per table. "
        "[Full data (CSV)](<2026-11-27_data/big.csv>)"
    )
    page = html_fragment("{{ df | table(max_rows=3) }}", {"df": df})
    assert page.endswith(
        '<p class="table-note">Showing 3 of 100,000 rows. '
        '<a href="2026-11-27_data/big.csv">Full data (CSV)</a></p>'
    )
    loops = (
        "{% for r in df.itertuples() %}x{% endfor %}|{% for i, r in df.iterrows() %}y{% endfor %}"
    )
    assert md(loops, {"df": df}) == "x" * 1000 + "|" + "y" * 1000
    assert md(loops, {"df": df.head(7)}) == "x" * 7 + "|" + "y" * 7


def test_table_shows_a_meaningful_index():
    df = pd.DataFrame({"region": ["N", "S"], "n": [1, 2]}).set_index("region")
    assert md("{{ df | table }}", {"df": df}).splitlines()[0] == "| region | n |"


# -- code ------


def test_code_filter():
    sql = "  SELECT a\n  FROM t\n  WHERE a < 3\n"
    assert md("{{ s | code('sql') }}", {"s": sql}) == "```sql\nSELECT a\nFROM t\nWHERE a < 3\n```"
    assert html_fragment("{{ s | code('sql') }}", {"s": sql}) == (
        '<pre><code class="language-sql">SELECT a\nFROM t\nWHERE a &lt; 3</code></pre>'
    )
    assert md("{{ '```x```' | code }}") == "````\n```x```\n````"
