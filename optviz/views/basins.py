"""Basins of attraction: one panel per optimizer, each start coloured by where it ended.

Reads :class:`~optviz.analysis.basins.BasinMap` records. Each listed minimum has
its own pale colour (the same in every panel, so the panels compare at a glance);
saddles, maxima, divergence and "not converged" have dark or neutral colours of
their own. The surface's contour lines and its minima (stars) are drawn on top.
Each panel's title names the optimizer in its colour, with what its starts found.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..analysis.basins import DIVERGED, MAXIMUM, NOT_CONVERGED, OTHER_MINIMUM, SADDLE
from ..errors import OptvizError
from .field import contour_data, decorations
from .stability import grid_shape, grid_size, panel_grid, panel_title
from .stills import figure_legend, figure_title, finish_figure, new_figure, field_title
from .style import colour_for, is_dark, style_context

__all__ = ["basins_figure", "MINIMUM_COLOURS", "outcome_colours"]

#: Pale, distinct colours for the minima (Paul Tol's "light" scheme, then more).
MINIMUM_COLOURS = ("#77AADD", "#EE8866", "#EEDD88", "#99DDFF", "#FFAABB", "#44BB99", "#BBCC33", "#AAAA00",
                   "#DDDDDD", "#c2a5cf")


def outcome_colours(style: str) -> dict:
    """Colours of the outcomes that are not a listed minimum."""
    dark = is_dark(style)
    return {DIVERGED: "#8c8c8c", SADDLE: "#000000" if not dark else "#f5f5f5", MAXIMUM: "#882255",
            OTHER_MINIMUM: "#5d3a9b", NOT_CONVERGED: "#ffffff" if not dark else "#2a2d31"}


def _colour_of(code: int, style: str) -> str:
    if code >= 0:
        return MINIMUM_COLOURS[code % len(MINIMUM_COLOURS)]
    return outcome_colours(style)[code]


def _summary(m) -> str:
    shares = m.shares()
    parts = [f"{len(m.found())}/{len(m.attractors)} minima"]
    for code in (SADDLE, MAXIMUM, OTHER_MINIMUM, DIVERGED, NOT_CONVERGED):
        if shares.get(code, 0) >= 0.005:
            parts.append(f"{_short[code]} {100 * shares[code]:.0f}%")
    return ", ".join(parts)


_short = {SADDLE: "saddle", MAXIMUM: "max.", OTHER_MINIMUM: "other min.", DIVERGED: "diverged",
          NOT_CONVERGED: "not conv."}


def basins_figure(maps: Sequence, field, style: str = "slides", title: Optional[str] = None):
    """One panel per map (up to three per row), the field's contours and minima on top,
    one legend below naming every outcome that occurs."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    maps = list(maps)
    if not maps:
        raise OptvizError("basins_figure needs at least one map")
    with style_context(style):
        deco = decorations(style)
        rows, cols = grid_shape(len(maps))
        fig = new_figure(style, grid_size(style, rows, cols, legend_right=len(maps) > 3))
        axes = panel_grid(fig, rows, cols, len(maps))
        codes = sorted({int(c) for m in maps for c in np.unique(m.outcome)})
        lut = {c: i for i, c in enumerate(codes)}
        cmap = ListedColormap([_colour_of(c, style) for c in codes])
        norm = BoundaryNorm(np.arange(len(codes) + 1) - 0.5, len(codes))
        X, Y, Z, levels = contour_data(field, 160, n_levels=14)
        for ax, m in zip(axes, maps):
            index = np.vectorize(lut.get)(m.outcome)
            dx, dy = m.xs[1] - m.xs[0], m.ys[1] - m.ys[0]
            extent = (m.xs[0] - dx / 2, m.xs[-1] + dx / 2, m.ys[0] - dy / 2, m.ys[-1] + dy / 2)
            ax.imshow(index, origin="lower", extent=extent, cmap=cmap, norm=norm, interpolation="nearest",
                      aspect="auto", zorder=0, rasterized=True)
            ax.contour(X, Y, Z, levels=levels, colors=deco["ink"], linewidths=deco["contour_width"] * 0.8,
                       alpha=0.35, linestyles="solid", zorder=1)
            mins = m.attractors[:m.n_global]
            if len(mins):
                ax.plot(mins[:, 0], mins[:, 1], linestyle="none", marker="*", markersize=deco["star_size"] * 0.6,
                        markerfacecolor=deco["star_face"], markeredgecolor=deco["star_edge"],
                        markeredgewidth=1.2, zorder=5)
            local = m.attractors[m.n_global:]
            if len(local):
                ax.plot(local[:, 0], local[:, 1], linestyle="none", marker="*", markersize=deco["star_size"] * 0.5,
                        markerfacecolor="none", markeredgecolor=deco["ink"], markeredgewidth=1.2, zorder=5)
            (x0, x1), (y0, y1) = field.domain
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
            ratio = (x1 - x0) / (y1 - y0)
            if 1 / 3 <= ratio <= 3:
                ax.set_aspect("equal", adjustable="box")
            for side in ("top", "right"):
                ax.spines[side].set_visible(True)
            panel_title(ax, m.label, colour_for(m.optimizer, style), style, _summary(m))
        for ax in axes[(rows - 1) * cols:]:
            ax.set_xlabel(getattr(field, "xlabel", "x"))
        for ax in axes[::cols]:
            ax.set_ylabel(getattr(field, "ylabel", "y"), rotation=0, ha="right", va="center", labelpad=8)
        handles, labels = [], []
        for c in codes:
            handles.append(Patch(facecolor=_colour_of(c, style), edgecolor=deco["ink"], linewidth=0.6))
            labels.append(maps[0].outcome_name(c).replace("global minimum", "minimum"))
        handles.append(Line2D([], [], linestyle="none", marker="*", markersize=deco["star_size"] * 0.6,
                              markerfacecolor=deco["star_face"], markeredgecolor=deco["star_edge"]))
        labels.append("global minimum")
        if any(len(m.attractors) > m.n_global for m in maps):
            handles.append(Line2D([], [], linestyle="none", marker="*", markersize=deco["star_size"] * 0.5,
                                  markerfacecolor="none", markeredgecolor=deco["ink"]))
            labels.append("local minimum")
        figure_legend(fig, handles, labels, style, where="right" if len(maps) > 3 else "below")
        if title is None:
            title = f"Basins: {field_title(field)}   ({maps[0].steps} steps from each start)"
        figure_title(fig, title, style)
    return finish_figure(fig, style)
