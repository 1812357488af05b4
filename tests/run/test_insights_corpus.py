"""Insights are true and read well: a corpus of generated sentences, each checked
against its numbers by a computation written independently of run/metrics.py.

The generator is seeded, so a failure names the same case every time.
"""

from __future__ import annotations

import random
import re

import pandas as pd
import pytest

from eil_pipelines.run.metrics import (
    build_insights,
    chart_sentence,
    compute_metric,
    is_limited_sql,
    metric_sentence,
)
from eil_pipelines.spec.models import ChartSpec, MetricSpec

# Labels with their grammatical number, written down by hand (not guessed).
LABELS = {
    "Revenue": "was",
    "Orders": "were",
    "Active customers": "were",
    "Gross margin": "was",
    "Sales": "were",
    "Net revenue": "was",
    "Refunds": "were",
    "Status": "was",
    "Cancellation rate": "was",
    "New sign-ups": "were",
}
SENTENCE = re.compile(
    r"^(?P<label>.+?) (?P<verb>rose|fell) (?P<amount>[\d,.]+)(?P<unit>%| points) to "
    r"(?P<text>\S+) against the previous (?P<period>\w+)\.$"
)


def metric_cases(count: int) -> list[tuple[str, str, float, float]]:
    rng = random.Random(16)
    cases = []
    labels = list(LABELS)
    for i in range(count):
        fmt = ["number", "currency", "percent"][i % 3]
        if fmt == "percent":
            value, previous = round(rng.uniform(0.01, 0.9), 4), round(rng.uniform(0.01, 0.9), 4)
        else:
            value, previous = rng.randint(1, 5_000_000), rng.randint(1, 5_000_000)
        cases.append((labels[i % len(labels)], fmt, float(value), float(previous)))
    return cases


@pytest.mark.parametrize(("label", "fmt", "value", "previous"), metric_cases(18))
def test_metric_sentence_states_its_numbers(label, fmt, value, previous):
    spec = MetricSpec(label=label, query="q", column="v", compare="p", format=fmt)
    result = compute_metric(spec, pd.DataFrame({"v": [value], "p": [previous]}))
    sentence = metric_sentence(result, "week")
    match = SENTENCE.match(sentence or "")
    if fmt == "percent":
        points = round(abs(value - previous) * 100, 1)
    else:
        points = round(abs(value - previous) / abs(previous) * 100, 1)
    if points == 0:
        # The printed change would be zero: it must say "unchanged", with the right verb.
        assert (
            sentence
            == f"{label} {LABELS[label]} unchanged at {result.text} against the previous week."
        )
        return
    assert match, sentence
    assert match["label"] == label
    assert match["verb"] == ("rose" if value > previous else "fell")
    assert float(match["amount"].replace(",", "")) == pytest.approx(points, abs=0.051)
    assert match["unit"] == (" points" if fmt == "percent" else "%")
    assert match["period"] == "week"
    # The figure it rose or fell to is the value, read back from its text.
    assert printed_value(match["text"], fmt) == pytest.approx(value, rel=0.006, abs=0.0005)


def printed_value(text: str, fmt: str) -> float:
    """``$1.24M`` → 1_240_000; ``12.3%`` → 0.123; ``4,512`` → 4512: written here, not
    imported, so the sentence is checked against a second reading of its figure."""
    scale = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
    number = text.removeprefix("$").replace(",", "")
    if fmt == "percent":
        assert number.endswith("%"), text
        return float(number[:-1]) / 100
    if fmt == "currency":
        assert text.startswith("$"), text
    factor = scale.get(number[-1], 1.0)
    return float(number.rstrip("KMBT")) * factor


@pytest.mark.parametrize("label", sorted(LABELS))
def test_plural_labels_agree_with_their_verb(label):
    spec = MetricSpec(label=label, query="q", column="v", compare="p")
    flat = compute_metric(spec, pd.DataFrame({"v": [7], "p": [7]}))
    assert (
        metric_sentence(flat, "day")
        == f"{label} {LABELS[label]} unchanged at 7 against the previous day."
    )


def test_zero_and_zero_says_nothing():
    spec = MetricSpec(label="Orders", query="q", column="v", compare="p")
    zero = compute_metric(spec, pd.DataFrame({"v": [0], "p": [0]}))
    assert metric_sentence(zero, "day") is None
    assert build_insights([zero], [], {"q": pd.DataFrame({"v": [0], "p": [0]})}, "day") == []


def chart_cases(count: int) -> list[tuple[dict[str, float], bool]]:
    rng = random.Random(1612)
    names = ["ETHIOPIA", "KENYA", "PERU", "CHINA", "FRANCE", "BRAZIL", "INDIA", "JAPAN"]
    cases = []
    for i in range(count):
        size = rng.randint(2, len(names))
        values = {n: float(rng.randint(1_000, 40_000_000)) for n in rng.sample(names, size)}
        cases.append((values, i % 2 == 0))
    return cases


@pytest.mark.parametrize(("values", "limited"), chart_cases(12))
def test_chart_sentence_names_the_leader_and_the_right_whole(values, limited):
    chart = ChartSpec(
        name="nations",
        query="q",
        type="barh",
        x="nation",
        y="revenue",
        format="currency",
        title="Net revenue by nation, top 10",
    )
    df = pd.DataFrame({"nation": list(values), "revenue": list(values.values())})
    sentence = chart_sentence(chart, df, limited=limited)
    leader = max(values, key=values.__getitem__)
    share = round(values[leader] / sum(values.values()) * 100)
    whole = f"the top {len(values)}" if limited else "the total"
    assert sentence is not None
    assert sentence.startswith(f"{leader} led net revenue by nation with $")
    assert sentence.endswith(f" ({share}% of {whole}).")
    figure = sentence.split(" with ", 1)[1].split(" (", 1)[0]
    assert printed_value(figure, "currency") == pytest.approx(values[leader], rel=0.006)
    assert "top 10 with" not in sentence


@pytest.mark.parametrize(
    "revenue",
    [[5.0, 5.0, 5.0], [0.0, 0.0], [-3.0, -1.0], [7.0]],
    ids=["flat", "zero", "negative", "one"],
)
def test_chart_sentence_is_silent_when_nothing_led(revenue):
    chart = ChartSpec(name="c", query="q", type="bar", x="k", y="revenue")
    df = pd.DataFrame({"k": [f"k{i}" for i in range(len(revenue))], "revenue": revenue})
    assert chart_sentence(chart, df) is None


@pytest.mark.parametrize(
    ("sql", "limited"),
    [
        ("SELECT * FROM t ORDER BY x DESC LIMIT 10", True),
        ("SELECT * FROM t LIMIT $top_n", True),
        ("SELECT TOP 5 * FROM t", True),
        ("SELECT * FROM t FETCH FIRST 3 ROWS ONLY", True),
        ("SELECT * FROM t -- LIMIT 10 is for later", False),
        ("SELECT limit_amount FROM t", False),
    ],
)
def test_limited_sql(sql, limited):
    assert is_limited_sql(sql) is limited


def test_insights_say_top_n_when_the_query_keeps_only_some_rows():
    chart = ChartSpec(name="c", query="q", type="bar", x="k", y="sales", format="currency")
    df = pd.DataFrame({"k": ["a", "b", "c"], "sales": [331_110.0, 2e6, 200_000.0]})
    [limited] = build_insights([], [chart], {"q": df}, "day", sql={"q": "SELECT … LIMIT 3"})
    [whole] = build_insights([], [chart], {"q": df}, "day", sql={"q": "SELECT …"})
    assert limited == "b led c with $2M (79% of the top 3)."
    assert whole == "b led c with $2M (79% of the total)."


def test_a_change_that_prints_as_zero_is_neutral():
    margin = MetricSpec(label="Gross margin", query="q", column="v", compare="p", format="percent")
    tiny = compute_metric(margin, pd.DataFrame({"v": [0.38001], "p": [0.38]}))
    assert (tiny.direction, tiny.sentiment, tiny.change_text) == ("flat", "neutral", "■ 0.0 pts")
    assert metric_sentence(tiny, "week") == (
        "Gross margin was unchanged at 38.0% against the previous week."
    )
    revenue = MetricSpec(label="Revenue", query="q", column="v", compare="p", format="currency")
    still = compute_metric(revenue, pd.DataFrame({"v": [100_040.0], "p": [100_000.0]}))
    assert (still.direction, still.sentiment, still.change_text) == ("flat", "neutral", "■ 0.0%")
