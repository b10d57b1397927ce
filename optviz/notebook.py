"""Figures that show themselves in a notebook, with or without ``%matplotlib inline``.

optviz builds its figures without pyplot (no global figure list to leak), so a
fresh Jupyter kernel, which registers matplotlib's inline display only when pyplot
is imported, shows ``<Figure size 700x480 with 2 Axes>`` instead of the picture.
:func:`shown_inline` gives a figure ``_repr_png_``, which every Jupyter frontend
asks for: the cell shows the image, drawn with the figure's own style preset.
Where matplotlib's inline display is active, its formatter takes precedence
(IPython asks type-registered formatters first), so the picture appears once.
"""
from __future__ import annotations

import io

from matplotlib.figure import Figure

__all__ = ["InlineFigure", "shown_inline"]


class InlineFigure(Figure):
    """A matplotlib Figure that renders itself as PNG for notebooks (``_repr_png_``)."""

    def _repr_png_(self) -> bytes:
        import matplotlib as mpl

        from .views.save import figure_style
        from .views.style import STYLES, style_context

        style = figure_style(self) or "paper"
        rc = STYLES.get(style, STYLES["paper"])
        buf = io.BytesIO()
        # paper figures cropped to their content, slides keep their 16:9 canvas (as save_figure does)
        with style_context(style), mpl.rc_context({"savefig.bbox": "tight" if style == "paper" else "standard"}):
            self.savefig(buf, format="png", dpi=rc["figure.dpi"], facecolor=self.get_facecolor())
        return buf.getvalue()


def shown_inline(fig):
    """``fig`` as an :class:`InlineFigure` (same object, same artists); other objects unchanged."""
    if type(fig) is Figure:
        fig.__class__ = InlineFigure
    return fig
