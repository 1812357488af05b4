"""PNG and inline SVG output: deterministic, embeddable, thread-safe, freed after use."""

from __future__ import annotations

import gc
import hashlib
import json
import re
import subprocess
import sys
import textwrap
import weakref
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from eil_pipelines.charts import draw_chart, render_chart
from eil_pipelines.spec.models import ChartSpec

SVG = "{http://www.w3.org/2000/svg}"
DAYS = pd.date_range("2026-11-01", periods=20, freq="D")
FRAME = pd.DataFrame(
    {
        "day": np.repeat(DAYS, 2),
        "region": ["EMEA", "APAC"] * 20,
        "revenue": np.linspace(1000, 30_000, 40),
        "cost": np.linspace(-500, 9000, 40),
    }
)

# One chart of each type (and a no-data one): the thread test draws these 8.
SPECS = [
    ChartSpec(name="line", query="q", type="line", x="day", y="revenue", series="region"),
    ChartSpec(name="bar", query="q", type="bar", x="region", y=["revenue", "cost"]),
    ChartSpec(name="barh", query="q", type="barh", x="region", y="revenue", format="currency"),
    ChartSpec(name="area", query="q", type="area", x="day", y="revenue", series="region"),
    ChartSpec(name="scatter", query="q", type="scatter", x="revenue", y="cost"),
    ChartSpec(name="pie", query="q", type="pie", x="region", y="revenue"),
    ChartSpec(name="hist", query="q", type="hist", y="cost", format="compact"),
    ChartSpec(name="empty", query="q", type="line", x="day", y="revenue"),
]


def frame_for(spec: ChartSpec) -> pd.DataFrame:
    return FRAME.iloc[:0] if spec.name == "empty" else FRAME


def both_formats(spec: ChartSpec) -> tuple[bytes, bytes]:
    fig = draw_chart(spec, frame_for(spec))
    return render_chart(fig, "png", close=False), render_chart(fig, "svg")


@pytest.fixture(scope="module")
def serial() -> list[tuple[bytes, bytes]]:
    return [both_formats(s) for s in SPECS]


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_rendering_twice_gives_identical_bytes(fmt):
    spec = SPECS[0]
    first = render_chart(draw_chart(spec, FRAME), fmt)
    second = render_chart(draw_chart(spec, FRAME), fmt)
    assert first == second


def test_png_is_a_2x_8_by_3_6_inch_image_without_a_software_stamp(serial):
    # 2× (200 dpi): 800 × 360 at 100 dpi was soft on high-density screens and in print.
    png = serial[0][0]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1600, 720)
    at = png.index(b"pHYs")  # pixels per metre: printed at 8 × 3.6 inches
    assert int.from_bytes(png[at + 4 : at + 8], "big") == round(200 / 0.0254)
    assert b"matplotlib" not in png.lower()


def test_svg_is_a_bare_svg_element_fit_for_html(serial):
    svg = serial[0][1].decode("utf-8")
    assert svg.startswith("<svg ")
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<metadata" not in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label", "").startswith("Line: line chart of revenue by day for 2 series")
    assert root.get("viewBox") == "0 0 576 259.2"


def test_svg_ids_are_prefixed_by_the_chart_and_every_reference_resolves(serial):
    svgs = [s.decode("utf-8") for _, s in serial]
    seen: set[str] = set()
    for spec, svg in zip(SPECS, svgs, strict=True):
        ids = re.findall(r'\sid="([^"]+)"', svg)
        refs = set(re.findall(r'href="#([^"]+)"', svg)) | set(re.findall(r"url\(#([^)]+)\)", svg))
        assert len(ids) == len(set(ids)), spec.name
        assert refs <= set(ids), spec.name
        assert all(i.startswith(f"eil-{spec.name}-") for i in ids), spec.name
        assert not seen & set(ids), "two charts on one page would share ids"
        seen |= set(ids)


def test_svg_default_stroke_style_is_inherited_from_its_own_root(serial):
    """No style sheet: it would style the page, or break when a page renames ids."""
    svg = serial[0][1].decode("utf-8")
    root = ET.fromstring(svg)
    assert "<style" not in svg
    assert root.get("stroke-linejoin") == "round"
    assert root.get("stroke-linecap") == "butt"


def test_aria_label_is_escaped():
    spec = ChartSpec(name="q", query="q", type="bar", x="region", y="revenue")
    df = pd.DataFrame({"region": ['"Big" & <small>'], "revenue": [1.0]})
    root = ET.fromstring(render_chart(draw_chart(spec, df), "svg"))
    assert 'highest "Big" & <small> 1' in root.get("aria-label")


def test_dollar_signs_in_labels_stay_literal_text():
    spec = ChartSpec(name="q", query="q", type="bar", x="plan", y="revenue")
    df = pd.DataFrame({"plan": ["$5 plan", "$10 plan"], "revenue": [1.0, 2.0]})
    fig = draw_chart(spec, df)
    render_chart(fig, "png", close=False)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["\\$5 plan", "\\$10 plan"]  # escaped: never parsed as mathtext
    assert not any(t._preprocess_math(t.get_text())[1] for t in fig.axes[0].get_xticklabels())


def test_unknown_format_is_refused():
    fig = draw_chart(SPECS[0], FRAME)
    with pytest.raises(ValueError, match='unknown chart image format "jpg"'):
        render_chart(fig, "jpg")  # type: ignore[arg-type]


def test_rendering_releases_the_figure():
    fig = draw_chart(SPECS[0], FRAME)
    render_chart(fig, "png")
    assert fig.axes == []
    with pytest.raises(ValueError, match="released by an earlier render_chart call"):
        render_chart(fig, "svg")
    ref = weakref.ref(fig)
    del fig
    gc.collect()
    assert ref() is None, "something still holds the figure"


def _live(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


def test_memory_does_not_grow_with_the_number_of_charts():
    # Python-level growth is what a leak looks like here (a kept figure holds
    # hundreds of artists); RSS is not asserted on, as the C allocator keeps
    # arenas after the first few dozen charts.
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure

    spec = ChartSpec(name="m", query="q", type="line", x="day", y="revenue", series="region")
    for _ in range(2):
        render_chart(draw_chart(spec, FRAME), "png")
    figures, artists = _live(Figure), _live(Artist)
    for i in range(10):
        render_chart(draw_chart(spec, FRAME), "svg" if i % 2 else "png")
    assert _live(Figure) == figures
    assert _live(Artist) == artists


def test_drawing_in_threads_gives_the_same_bytes_as_drawing_serially(serial):
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(both_formats, SPECS))
    for spec, a, b in zip(SPECS, serial, threaded, strict=True):
        assert a[0] == b[0], f"{spec.name}: png differs"
        assert a[1] == b[1], f"{spec.name}: svg differs"


CHILD = textwrap.dedent(
    """
    import hashlib, json, sys
    import numpy as np, pandas as pd
    from eil_pipelines.charts import draw_chart, render_chart
    from eil_pipelines.spec.models import ChartSpec
    days = pd.date_range("2026-11-01", periods=20, freq="D")
    df = pd.DataFrame({"day": np.repeat(days, 2), "region": ["EMEA", "APAC"] * 20,
                       "revenue": np.linspace(1000, 30_000, 40)})
    spec = ChartSpec(name="line", query="q", type="line", x="day", y="revenue", series="region")
    fig = draw_chart(spec, df)
    png = render_chart(fig, "png", close=False)
    svg = render_chart(fig, "svg")
    print(json.dumps({
        "pyplot": "matplotlib.pyplot" in sys.modules,
        "png": hashlib.sha256(png).hexdigest(),
        "svg": hashlib.sha256(svg).hexdigest(),
    }))
    """
)


@pytest.fixture(scope="module")
def child() -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_drawing_never_imports_pyplot(child):
    assert child["pyplot"] is False


def test_output_is_identical_in_another_process(child, serial):
    # A fresh interpreter has other random SVG salts and id counters.
    png, svg = serial[0]
    assert child["png"] == hashlib.sha256(png).hexdigest()
    assert child["svg"] == hashlib.sha256(svg).hexdigest()
