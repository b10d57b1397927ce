"""Stability maps: one panel per optimizer over two hyperparameters, the theory drawn on top.

Reads :class:`~optviz.analysis.stability.StabilityMap` records. Colour is the final
``f - f*`` (log scale, dark = converged) or the steps to a tolerance; cells that
diverged are grey; the theoretical boundary ``eta = c(gamma) / lambda_max`` is a dashed
line where the optimizer has one, so the lecture can point at the edge where the
colours stop and the grey begins. Each panel's title names the optimizer in its colour.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from ..errors import OptvizError
from .field import _compact, decorations
from .stills import figure_legend, figure_title, finish_figure, new_figure, field_title
from .style import STYLES, colour_for, is_dark, style_context

__all__ = ["stability_figure", "AXIS_LABELS", "grid_shape", "grid_size", "panel_grid", "panel_title", "math_rule",
           "number_text"]

AXIS_LABELS = {"lr": "learning rate η", "momentum": "momentum γ", "beta1": "β₁", "beta2": "β₂", "alpha": "α",
               "rho": "ρ", "eps": "ε", "dampening": "dampening"}


def grid_shape(n: int):
    """Panels in rows and columns: up to three in a row, then two rows."""
    if n <= 3:
        return 1, n
    return math.ceil(n / 3), 3 if n > 4 else 2


def panel_grid(fig, rows: int, cols: int, n: int) -> np.ndarray:
    """The ``rows`` x ``cols`` axes of ``fig`` in reading order, those after the first ``n``
    (the cells a grid has beyond its panels) hidden."""
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes


def number_text(v: float) -> str:
    """``909``, ``28.6``, ``1,111``, ``38,000``: curvatures and limits as a lecture reads them."""
    if 1e3 <= abs(v) < 1e6:
        return f"{v:,.0f}"
    if 1e-2 <= abs(v) < 1e3:
        return f"{v:.3g}"
    return _compact(v)


def grid_size(style: str, rows: int, cols: int, legend_right: bool = False):
    """The canvas for a grid of panels: the preset's 16:9 on slides; on ``paper`` about
    3.3 x 3 inches per panel (the paper preset's single 7 x 4.8 canvas is for one plot)."""
    from .style import figure_size

    if style != "paper":
        return figure_size(style)
    return (3.3 * cols + (2.6 if legend_right else 1.0), 3.0 * rows + 1.3)


def panel_title(ax, text: str, colour: str, style: str, subtitle: str = "", width: int = 28):
    """The optimizer's name in its colour, and under it a smaller ``subtitle`` (wrapped at
    commas to lines of about ``width`` characters). The subtitle stays out of the layout:
    the title's padding makes its room, so a long one never squeezes the panels."""
    rc = STYLES[style]
    big = rc["font.size"] >= 16
    size = rc["axes.titlesize"] * (0.72 if big else 0.95)
    small = size * 0.8
    lines = _wrap(subtitle, width) if subtitle else []
    ax.set_title(text, color=colour, fontweight="bold", fontsize=size,
                 pad=(small * (1.25 * len(lines) + 0.5) if lines else 6))
    if lines:
        t = ax.annotate("\n".join(lines), xy=(0.5, 1.0), xycoords="axes fraction", xytext=(0, small * 0.35),
                        textcoords="offset points", ha="center", va="bottom", fontsize=small, linespacing=1.1,
                        color=decorations(style)["ink"], annotation_clip=False)
        t.set_in_layout(False)


def _wrap(text: str, width: int):
    lines, line = [], ""
    for part in text.split(", "):
        if line and len(line) + 2 + len(part) > width:
            lines.append(line + ",")
            line = part
        else:
            line = f"{line}, {part}" if line else part
    return lines + [line]


def _grey(style: str) -> str:
    return "#5b5f66" if is_dark(style) else "#a9a9a9"


def _never(style: str) -> str:
    return "#2a2d31" if is_dark(style) else "#f2f2f2"


def stability_figure(maps: Sequence, style: str = "paper", title: Optional[str] = None, *, field=None,
                     metric: str = "gap"):
    """One panel per :class:`~optviz.analysis.stability.StabilityMap`, a shared colour bar.

    ``metric``: ``"gap"`` (final ``f - f*``, log colour) or ``"steps"`` (steps until
    ``f - f* <= tol (f(start) - f*)``; the maps must have been made with ``tol``).
    """
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap, LogNorm, Normalize
    from matplotlib.ticker import FuncFormatter
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    maps = list(maps)
    if not maps:
        raise OptvizError("stability_figure needs at least one map")
    if metric not in ("gap", "steps"):
        raise OptvizError(f"unknown metric {metric!r}; choose one of: gap, steps")
    if metric == "steps" and any(m.steps_to_tol is None for m in maps):
        raise OptvizError("the steps metric needs maps made with a tolerance (stability_map(..., tol=...))")
    with style_context(style):
        deco = decorations(style)
        rc = STYLES[style]
        rows, cols = grid_shape(len(maps))
        fig = new_figure(style, grid_size(style, rows, cols))
        axes = panel_grid(fig, rows, cols, len(maps))
        base = ListedColormap(colormaps[rc.get("image.cmap", "viridis")](np.linspace(0, 1, 256)))
        if metric == "gap":
            top = max(m.initial_gap for m in maps)
            finite = np.concatenate([m.gap[np.isfinite(m.gap)].ravel() for m in maps])
            low = max(float(finite.min()) if finite.size else top * 1e-12, top * 1e-14)
            norm = LogNorm(vmin=low, vmax=top)
            cmap = base.with_extremes(bad=_grey(style), over=base(1.0))
            label = "final $f - f^*$"
        else:
            cmap = base.with_extremes(bad=_grey(style), over=_never(style))
            norm = Normalize(vmin=0, vmax=max(m.steps for m in maps))
            label = "steps to the tolerance"
        mesh = None
        theory = None
        for ax, m in zip(axes, maps):
            xe = m.x.edges
            ye = m.y.edges if m.y is not None else np.array([0.0, 1.0])
            if metric == "gap":
                values = np.where(m.diverged, np.nan, np.maximum(m.gap, low))
                values = np.where(~m.diverged & (m.gap > top), top * 10, values)   # worse than the start: "over"
            else:
                values = np.where(m.diverged, np.nan, np.where(np.isfinite(m.steps_to_tol), m.steps_to_tol, np.inf))
                values = np.where(np.isinf(values), norm.vmax * 10, values)
            mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(values), cmap=cmap, norm=norm, shading="flat",
                                 rasterized=True)
            if m.x.log:
                ax.set_xscale("log")
            if m.y is not None and m.y.log:
                ax.set_yscale("log")
            ax.set_xlim(xe[0], xe[-1])
            ax.set_ylim(ye[0], ye[-1])
            ax.set_xlabel(AXIS_LABELS.get(m.x.name, m.x.name))
            if m.y is not None:
                ax.set_ylabel(AXIS_LABELS.get(m.y.name, m.y.name))
            else:
                ax.set_yticks([])
            if m.boundary is not None:
                yb = m.y.values if m.y is not None else np.array([0.5])
                yb = np.concatenate([[ye[0]], yb, [ye[-1]]])
                xb = np.concatenate([[m.boundary[0]], m.boundary, [m.boundary[-1]]])
                ax.plot(xb, yb, color=deco["halo"], linewidth=deco["linewidth"] + deco["halo_extra"], zorder=3,
                        solid_capstyle="round")
                (theory,) = ax.plot(xb, yb, color=deco["ink"], linewidth=deco["linewidth"], linestyle=(0, (4, 2)),
                                    zorder=4)
                sub = f"theory: $\\eta$ < {_rule_text(m.rule)}"
            else:
                sub = "no boundary: steps bounded by η"
            panel_title(ax, m.label, colour_for(m.optimizer, style), style, sub)
            ax.tick_params(which="both", direction="out")
        cb = fig.colorbar(mesh, ax=list(axes[:len(maps)]), extend="max", shrink=0.92, pad=0.02, aspect=28)
        cb.set_label(label)
        if metric == "gap":
            cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _compact(v)))
        handles = [Patch(facecolor=_grey(style), edgecolor="none")]
        labels = ["diverged"]
        if metric == "steps":
            handles.append(Patch(facecolor=_never(style), edgecolor=deco["ink"], linewidth=0.5))
            labels.append(f"not within {maps[0].steps} steps")
        if theory is not None:
            handles.insert(0, Line2D([], [], color=deco["ink"], linewidth=deco["linewidth"], linestyle=(0, (4, 2))))
            eig = maps[0].hessian_eigenvalues
            labels.insert(0, f"theory, from $\\lambda_{{\\max}}$ = {number_text(eig[-1])} at the minimum")
        figure_legend(fig, handles, labels, style, where="below")
        m0 = maps[0]
        if title is None:
            name = field_title(field) if field is not None else ""
            title = (f"Stability: {name}" if name else "Stability") + \
                f"   ({m0.steps} steps from ({m0.start[0]:g}, {m0.start[1]:g})" + \
                (f"; tolerance $f - f^* \\leq$ {m0.tol:g} $(f_0 - f^*)$)" if metric == "steps" else ")")
        figure_title(fig, title, style)
    return finish_figure(fig, style)


def math_rule(rule: str, over: str = r"\eta") -> str:
    r"""A limit's rule as mathtext: ``"2(1+γ)/η"`` -> ``$2(1+\gamma)/\eta$``; ``over`` replaces
    the ``η`` (``"\lambda_{\max}"`` turns the limit on the curvature into one on the rate)."""
    text = (rule.replace("γ", r"\gamma ").replace("β₁", r"\beta_1 ").replace("-", "-")
            .replace("η", "{" + over + "}"))
    return f"${text}$"


def _rule_text(rule: str) -> str:
    r"""``"2(1+γ)/η"`` (a limit on lambda) -> ``$2(1+\gamma)/\lambda_{\max}$`` (a limit on eta)."""
    return math_rule(rule, r"\lambda_{\max}")
