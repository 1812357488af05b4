"""The figure every chart is drawn on: it knows its chart and lays itself out once."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

#: Padding of the constrained layout, in inches (pads) and fractions (spaces).
LAYOUT_PADS: dict[str, Any] = {"w_pad": 0.1, "h_pad": 0.08, "hspace": 0.02, "wspace": 0.02}


class ChartFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that knows which chart it shows.

    ``chart_name`` keeps the ids inside an inline SVG apart from those of the
    other charts on the page; ``summary`` becomes the SVG's ``aria-label``.

    The figure is laid out by matplotlib's constrained layout, solved once,
    at the first draw (or by :meth:`lay_out`), and kept for every later save.
    A figure with a layout engine attached would instead pay for an extra
    full draw in every ``savefig`` (matplotlib draws once without output to
    run the engine) and solve the layout again each time; a chart is saved
    twice, as SVG and PNG.  Positions are figure fractions and text sizes are
    points, so one solution fits both formats.
    """

    def __init__(self, *args: Any, chart_name: str = "chart", summary: str = "", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.chart_name = chart_name
        self.summary = summary
        self.released = False
        self._pending_layout: ConstrainedLayoutEngine | None = ConstrainedLayoutEngine(
            **LAYOUT_PADS
        )

    @property
    def laid_out(self) -> bool:
        """Whether the layout has been solved (it is never solved twice)."""
        return self._pending_layout is None

    def lay_out(self) -> None:
        """Solve the layout now, unless it already was.

        Text is measured with the renderer of the figure's canvas; attach an
        Agg canvas first so the measurements are cached for the PNG render.
        """
        engine, self._pending_layout = self._pending_layout, None
        if engine is not None and self.axes:
            engine.execute(self)

    def draw(self, renderer):
        """Lay out (the first time only), then draw as any figure does."""
        self.lay_out()
        super().draw(renderer)
