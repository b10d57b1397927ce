"""Save a figure: the format from the extension, atomically, in its style's resolution.

>>> from optviz.views import contour_figure, save_figure          # doctest: +SKIP
>>> save_figure(contour_figure(field, paths, "slides"), "rosenbrock.png")   # doctest: +SKIP

``paper`` figures are cropped to their content (``bbox_inches="tight"``); ``slides``
and ``dark`` figures keep their exact 16:9 canvas, so they fill a slide. The
figure functions lay out with constrained layout, so nothing is cut off either way
(:func:`overflow` measures it; the tests check it).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..errors import OptvizError
from ..io import atomic_path
from .style import STYLES, style_context

__all__ = ["FORMATS", "save_figure", "figure_style", "tag_figure", "overflow"]

#: Extension -> matplotlib format.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}

_STYLE_ATTR = "_optviz_style"


def tag_figure(fig, style: str):
    """Remember which preset drew ``fig`` (read back by :func:`save_figure`)."""
    setattr(fig, _STYLE_ATTR, style)
    return fig


def figure_style(fig) -> Optional[str]:
    """The preset that drew ``fig``, if one of optviz's figure functions made it."""
    return getattr(fig, _STYLE_ATTR, None)


def _format_for(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in FORMATS:
        valid = ", ".join(sorted(FORMATS))
        what = f"extension {ext!r}" if ext else "no extension"
        raise OptvizError(f"cannot save a figure to {str(path)!r}: {what}; use one of {valid}")
    return FORMATS[ext]


def save_figure(fig, path: str | os.PathLike, *, dpi: Optional[float] = None, tight: Optional[bool] = None,
                style: Optional[str] = None) -> Path:
    """Write ``fig`` to ``path`` as PNG, SVG or PDF (chosen by the extension) and return the path.

    Parameters
    ----------
    dpi : float, optional
        Raster resolution; default the style's (``paper`` 200, ``slides``/``dark`` 150),
        which gives a 2000 x 1125 slide.
    tight : bool, optional
        Crop to the content. Default: yes for ``paper``, no for ``slides``/``dark``
        (they keep their 16:9 canvas).
    style : str, optional
        The preset; default the one recorded on the figure by the figure function.

    An unsupported extension raises :class:`~optviz.errors.OptvizError` naming the valid
    ones, before anything is written. The file appears complete or not at all.
    """
    path = Path(path)
    fmt = _format_for(path)
    style = style or figure_style(fig) or "paper"
    rc = STYLES.get(style, STYLES["paper"])
    if tight is None:
        tight = style == "paper"
    if dpi is None:
        dpi = rc["savefig.dpi"]
        if not tight:
            # a whole number of pixels across: 13.333 in at 150 dpi is 2000 px, not 1999
            width = fig.get_size_inches()[0]
            dpi = (round(width * dpi) + 0.01) / width
    import matplotlib as mpl

    kwargs = dict(format=fmt, dpi=dpi, facecolor=fig.get_facecolor())
    if fmt == "png":
        kwargs["metadata"] = {"Software": "optviz (matplotlib)"}
    # the presets set savefig.bbox = "tight"; "standard" keeps the exact canvas (bbox_inches=None
    # would fall back to the rc value, so the choice is made through rcParams)
    with style_context(style), mpl.rc_context({"savefig.bbox": "tight" if tight else "standard"}), \
            atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)
    return path


def overflow(fig) -> float:
    """How far (in inches) the drawn content reaches outside the figure's canvas; 0 when
    nothing would be cut off by saving the canvas as it is."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    tight = fig.get_tightbbox(renderer)
    w, h = fig.get_size_inches()
    return float(max(0.0, -tight.x0, -tight.y0, tight.x1 - w, tight.y1 - h))
