"""docs/gallery.md shows every shipped example, as scripts/make_gallery.py makes it."""

from __future__ import annotations

import struct
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "pipelines").glob("*.toml"))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_is_in_the_gallery_at_both_widths(example):
    spec = tomllib.loads(example.read_text(encoding="utf-8"))
    name = spec.get("name", example.stem)
    page = (REPO / "docs" / "gallery.md").read_text(encoding="utf-8")
    assert f"## {spec['title']}" in page
    assert f"Pipeline file: `pipelines/{name}.toml`." in page
    from importlib.util import module_from_spec, spec_from_file_location

    loader = spec_from_file_location("make_gallery", REPO / "scripts" / "make_gallery.py")
    assert loader is not None and loader.loader is not None
    script = module_from_spec(loader)
    loader.loader.exec_module(script)
    for width, height in script.SHOTS:
        image = f"gallery/{name}-{width}.png"
        assert f"]({image})" in page
        assert png_size(REPO / "docs" / image) == (width, height)
