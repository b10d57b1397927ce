"""How much tuning matters: a metric against a hyperparameter, one curve per optimizer.

One drawing for both worlds. A :class:`Sensitivity` record holds, per optimizer, the
grid values (learning rates), the metric at each of them for every repeat (starts on a
2-D surface, seeds on MNIST) and which repeats diverged;
:func:`draw_sensitivity` draws the centre line with a band, marks the best setting (a
filled circle) and the optimizer's own default (a ring), and below, the share of
repeats that diverged. A wide plateau means forgiving; a narrow one, or one that ends
in a cliff of divergence, means tuning matters.

* :func:`sensitivity_figure`: a 2-D learning-rate sweep (:class:`~optviz.engine.sweep.SweepResult`):
  median final ``f - f*`` and its quartiles over the starts;
* an MNIST study (:func:`optviz.study.report.sensitivity_data`, drawn by :func:`draw_sensitivity`):
  mean validation error +- std over the seeds;
* :func:`heatmap_figure`: two grids at once (learning rate x momentum, ...), one map per optimizer.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import List, Optional

import numpy as np

from .field import decorations, marker_for
from .stability import panel_grid
from .stills import field_title, figure_legend, figure_title, finish_figure, new_figure
from .style import colour_for, style_context

__all__ = ["Sensitivity", "draw_sensitivity", "sensitivity_figure", "heatmap_figure", "Heatmap"]


@dataclasses.dataclass
class Sensitivity:
    """A metric over a grid, per optimizer and repeat (the record a tuning figure draws)."""

    names: List[str]                 # registry names: colour and marker of each curve
    labels: List[str]                # legend text
    x: List[np.ndarray]              # per curve, (L_i,) grid values (ascending)
    values: List[np.ndarray]         # per curve, (L_i, S) the metric per repeat (NaN: diverged or missing)
    diverged: List[np.ndarray]       # per curve, (L_i, S) bool
    xlabel: str = "learning rate η"
    ylabel: str = "final $f - f^*$"
    higher_is_better: bool = False
    yscale: str = "log"              # "log", "symlog" or "linear"
    centre: str = "median"           # "median" (band: quartiles) or "mean" (band: +- std, within min..max)
    defaults: Optional[List[Optional[int]]] = None   # per curve, the index of its default setting
    subtitle: str = ""
    percent: bool = False            # draw the metric x 100 (accuracies)


def _centre_band(values: np.ndarray, how: str):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all repeats missing at a grid value: a gap
        if how == "median":
            lo, mid, hi = np.nanpercentile(values, (25, 50, 75), axis=1)
            return mid, lo, hi
        mid = np.nanmean(values, axis=1)
        sd = np.nanstd(values, axis=1, ddof=1) if values.shape[1] > 1 else np.zeros_like(mid)
        sd = np.nan_to_num(sd)
        # within what the repeats showed: mean - std of a skewed spread would dive on a log axis
        return mid, np.maximum(mid - sd, np.nanmin(values, axis=1)), np.minimum(mid + sd, np.nanmax(values, axis=1))


def draw_sensitivity(data: Sensitivity, style: str = "paper", title: Optional[str] = None):
    """The tuning figure of ``data``: metric (top) and share of diverged repeats (bottom)
    against the grid values; returns the Figure."""
    scale = 100.0 if data.percent else 1.0
    with style_context(style):
        deco = decorations(style)
        fig = new_figure(style)
        ax, ax_div = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3.2, 1.0)})
        handles, labels = [], []
        for i, name in enumerate(data.names):
            colour = colour_for(name, style)
            x, values, gone = np.asarray(data.x[i], float), np.asarray(data.values[i], float), np.asarray(data.diverged[i])
            mid, lo, hi = (v * scale for v in _centre_band(values, data.centre))
            share = gone.mean(axis=1) if gone.size else np.zeros(len(x))
            ok = share < 0.5                                        # the centre is a real number
            mid = np.where(ok, mid, np.nan)
            (line,) = ax.plot(x, mid, color=colour, marker=marker_for(name), markevery=max(1, len(x) // 8),
                              markeredgecolor=deco["halo"])
            ax.fill_between(x, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan), color=colour, alpha=0.15,
                            linewidth=0)
            finite = np.isfinite(mid)
            best = None
            if finite.any():
                best = int(np.nanargmax(np.where(finite, mid, -np.inf)) if data.higher_is_better
                           else np.nanargmin(np.where(finite, mid, np.inf)))
                ax.plot(x[best], mid[best], linestyle="none", marker="o", markersize=deco["start_size"] * 0.6,
                        markerfacecolor=colour, markeredgecolor=deco["ink"], zorder=5)
            d = data.defaults[i] if data.defaults else None
            if d is not None and np.isfinite(mid[d]):
                ax.plot(x[d], mid[d], linestyle="none", marker="o", markersize=deco["start_size"] * 1.05,
                        markerfacecolor="none", markeredgecolor=colour, markeredgewidth=deco["linewidth"] * 0.7,
                        zorder=6)
            ax_div.plot(x, 100 * share, color=colour, marker=marker_for(name), markevery=max(1, len(x) // 8),
                        markeredgecolor=deco["halo"])
            handles.append(line)
            labels.append(data.labels[i] + (f", best η≈{x[best]:.2g}" if best is not None and "η" in data.xlabel else ""))
        if data.defaults and any(d is not None for d in data.defaults):
            from matplotlib.lines import Line2D

            handles += [Line2D([], [], linestyle="none", marker="o", markersize=deco["start_size"] * 0.6,
                               markerfacecolor=deco["ink"], markeredgecolor=deco["ink"]),
                        Line2D([], [], linestyle="none", marker="o", markersize=deco["start_size"] * 1.05,
                               markerfacecolor="none", markeredgecolor=deco["ink"])]
            labels += ["best (chosen on validation)", "the lecture's setting"]
        ax.set_xscale("log")
        ax.set_yscale(data.yscale)
        ax.set_ylabel(data.ylabel)
        ax.grid(True, which="major", alpha=0.25)
        if data.subtitle:
            ax.set_title(data.subtitle)
        ax_div.set_ylabel("diverged (%)")
        ax_div.set_ylim(-5, 105)
        ax_div.set_xlabel(data.xlabel)
        ax_div.grid(True, which="major", alpha=0.25)
        figure_legend(fig, handles, labels, style, where="right")
        figure_title(fig, title or "How much tuning matters", style)
    return finish_figure(fig, style)


def sensitivity_figure(result, field=None, style: str = "paper", title: Optional[str] = None):
    """Median final ``f - f*`` (log) against the learning rate (log), per optimizer, for a
    2-D :class:`~optviz.engine.sweep.SweepResult`."""
    fmin = getattr(field, "minimum_value", None) if field is not None else None
    offset = fmin if fmin is not None else 0.0
    values = []
    for i in range(len(result.names)):
        v = result.final_loss[i] - offset                              # (L, S)
        values.append(np.maximum(v, 1e-16) if fmin is not None else v)
    data = Sensitivity(names=list(result.names), labels=list(result.labels), x=[result.lrs] * len(result.names),
                       values=values, diverged=list(result.diverged),
                       ylabel="final $f - f^*$" if fmin is not None else "final $f$",
                       yscale="log" if fmin is not None else "symlog", centre="median",
                       subtitle=f"median and quartiles over {len(result.starts)} starts, {result.steps} steps")
    text = title or f"How much tuning matters: {field_title(field) if field is not None else ''}"
    return draw_sensitivity(data, style, text)


@dataclasses.dataclass
class Heatmap:
    """A metric over two grids per optimizer: ``values[i]`` is (len(y[i]), len(x[i]))."""

    names: List[str]
    labels: List[str]
    x: List[np.ndarray]
    y: List[np.ndarray]
    values: List[np.ndarray]           # mean over repeats (NaN: diverged or missing)
    diverged: List[np.ndarray]         # bool, any repeat diverged
    xlabel: str
    ylabel: str
    zlabel: str
    best: List[Optional[tuple]]        # (row, col) of the best cell
    defaults: List[Optional[tuple]]    # (row, col) of the default setting
    percent: bool = True


def heatmap_figure(data: Heatmap, style: str = "paper", title: Optional[str] = None):
    """One map per optimizer of a metric over two grids: diverged cells crossed, cells not run
    hatched, the best ringed in the optimizer's colour, its default setting starred; one
    colour bar for all (its range the best ten points, values below drawn in its lowest colour)."""
    import matplotlib.colors as mcolors
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    n = len(data.names)
    scale = 100.0 if data.percent else 1.0
    finite = [v[np.isfinite(v)] * scale for v in data.values]
    allv = np.concatenate(finite) if any(len(f) for f in finite) else np.array([0.0, 1.0])
    top, low = float(np.max(allv)), float(np.min(allv))
    # the interesting range: the best ten points, so near-optimal cells are told apart
    norm = mcolors.Normalize(vmin=max(low, top - 10.0), vmax=top)
    with style_context(style):
        deco = decorations(style)
        cols = min(n, 3)
        rows = -(-n // cols)
        fig = new_figure(style)
        axes = panel_grid(fig, rows, cols, n)
        image = None
        for i, ax in enumerate(axes[:n]):
            x, y, v = np.asarray(data.x[i], float), np.asarray(data.y[i], float), np.asarray(data.values[i], float)
            gone = np.asarray(data.diverged[i])
            ax.add_patch(Rectangle((-0.5, -0.5), len(x), len(y), facecolor="none", edgecolor=deco["ink"],
                                   hatch="//", alpha=0.25, linewidth=0, zorder=0))   # shows through where not run
            image = ax.imshow(np.ma.masked_invalid(v * scale), origin="lower", aspect="auto", norm=norm,
                              cmap="viridis", extent=(-0.5, len(x) - 0.5, -0.5, len(y) - 0.5), zorder=1)
            rr, cc = np.nonzero(gone)
            ax.plot(cc, rr, linestyle="none", marker="x", color=deco["ink"], markersize=deco["cross_size"] * 0.6,
                    markeredgewidth=deco["linewidth"] * 0.6, zorder=3)
            if data.best[i] is not None:
                r, c = data.best[i]
                ax.plot(c, r, linestyle="none", marker="o", markersize=deco["start_size"] * 1.2,
                        markerfacecolor="none", markeredgecolor=colour_for(data.names[i], style),
                        markeredgewidth=deco["linewidth"], zorder=4)
            if data.defaults[i] is not None:
                r, c = data.defaults[i]
                ax.plot(c, r, linestyle="none", marker="*", markersize=deco["star_size"] * 0.7,
                        markerfacecolor=deco["ink"], markeredgecolor=deco["halo"], zorder=5)
            ax.set_xlim(-0.5, len(x) - 0.5)
            ax.set_ylim(-0.5, len(y) - 0.5)
            step_x = max(1, -(-len(x) // 5))
            ax.set_xticks(np.arange(len(x))[::step_x], [f"{t:.2g}" for t in x[::step_x]], rotation=45, ha="right",
                          rotation_mode="anchor")
            step_y = max(1, -(-len(y) // 6))
            ax.set_yticks(np.arange(len(y))[::step_y], [f"{t:.3g}" for t in y[::step_y]])
            ax.set_title(data.labels[i], color=colour_for(data.names[i], style))
            ax.set_xlabel(data.xlabel)
            if i % cols == 0:
                ax.set_ylabel(data.ylabel)
        if image is not None:
            bar = fig.colorbar(image, ax=list(axes[:n]), shrink=0.9, extend="min" if low < norm.vmin else "neither")
            bar.set_label(data.zlabel)
        handles = [Line2D([], [], linestyle="none", marker="o", markersize=deco["start_size"] * 0.9,
                          markerfacecolor="none", markeredgecolor=deco["ink"], markeredgewidth=deco["linewidth"] * 0.6),
                   Line2D([], [], linestyle="none", marker="*", markersize=deco["star_size"] * 0.6,
                          markerfacecolor=deco["ink"], markeredgecolor=deco["halo"]),
                   Line2D([], [], linestyle="none", marker="x", color=deco["ink"], markersize=deco["cross_size"] * 0.5),
                   Patch(facecolor="none", edgecolor=deco["ink"], hatch="//", alpha=0.5)]
        fig.legend(handles, ["best (chosen on validation)", "the lecture's setting", "diverged", "not run"],
                   loc="outside lower center", ncols=4, frameon=False)
        figure_title(fig, title or "Two hyperparameters at once", style)
    return finish_figure(fig, style)
