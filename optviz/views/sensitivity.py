"""How much tuning matters: final loss against learning rate, one curve per optimizer.

Reads a :class:`~optviz.engine.sweep.SweepResult`; draws the median over the
starts with the band between the 25th and 75th percentiles, and below it the
share of starts that diverged at each rate. A wide valley means forgiving; a
narrow one, or one that ends in a cliff of divergence, means tuning matters.
"""
from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from .field import decorations, marker_for
from .stills import figure_legend, figure_title, finish_figure, new_figure, field_title
from .style import colour_for, style_context

__all__ = ["sensitivity_figure"]


def sensitivity_figure(result, field=None, style: str = "paper", title: Optional[str] = None):
    """Median final ``f - f*`` (log) against the learning rate (log), per optimizer."""
    fmin = getattr(field, "minimum_value", None) if field is not None else None
    offset = fmin if fmin is not None else 0.0
    with style_context(style):
        deco = decorations(style)
        fig = new_figure(style)
        ax, ax_div = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3.2, 1.0)})
        handles, labels = [], []
        for i, (name, label) in enumerate(zip(result.names, result.labels)):
            colour = colour_for(name, style)
            values = result.final_loss[i] - offset                     # (L, S)
            if fmin is not None:
                values = np.maximum(values, 1e-16)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # rates where every start diverged: NaN, drawn as gaps
                lo, med, hi = np.nanpercentile(values, (25, 50, 75), axis=1)
            share = result.diverged[i].mean(axis=1)
            ok = share < 0.5                                              # the median is a real number
            med = np.where(ok, med, np.nan)
            (line,) = ax.plot(result.lrs, med, color=colour, marker=marker_for(name), markevery=4,
                              markeredgecolor=deco["halo"])
            ax.fill_between(result.lrs, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan), color=colour,
                            alpha=0.15, linewidth=0)
            best = int(np.nanargmin(np.where(np.isfinite(med), med, np.inf))) if np.isfinite(med).any() else None
            if best is not None:
                ax.plot(result.lrs[best], med[best], linestyle="none", marker="o", markersize=deco["start_size"] * 0.6,
                        markerfacecolor=colour, markeredgecolor=deco["ink"], zorder=5)
            ax_div.plot(result.lrs, 100 * share, color=colour, marker=marker_for(name), markevery=4,
                        markeredgecolor=deco["halo"])
            handles.append(line)
            labels.append(label + (f", best η≈{result.lrs[best]:.2g}" if best is not None else ""))
        ax.set_xscale("log")
        ax.set_yscale("log" if fmin is not None else "symlog")
        ax.set_ylabel("final $f - f^*$" if fmin is not None else "final $f$")
        ax.grid(True, which="major", alpha=0.25)
        ax.set_title(f"median and quartiles over {len(result.starts)} starts, {result.steps} steps")
        ax_div.set_ylabel("diverged (%)")
        ax_div.set_ylim(-5, 105)
        ax_div.set_xlabel("learning rate η")
        ax_div.grid(True, which="major", alpha=0.25)
        figure_legend(fig, handles, labels, style, where="right")
        figure_title(fig, title or f"How much tuning matters: {field_title(field) if field is not None else ''}", style)
    return finish_figure(fig, style)
