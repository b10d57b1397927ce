"""First- and second-order methods on MNIST: accuracy against time, against work, and memory.

Reads a :class:`~optviz.analysis.second_order.ComparisonResult`. Three panels:
validation accuracy against training seconds and against data passes (gradients,
curvature products and line-search evaluations, each example counted once), both
on log axes so the first second and the last minute both show; and what each
method keeps in memory beside the weights, with the full Hessian that Newton's
method would need at the bottom, on a log scale (it is four to five decades larger).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from matplotlib.ticker import NullLocator

from ..errors import OptvizError
from .field import decorations, default_markevery, marker_for
from .stills import figure_title, finish_figure, new_figure
from .style import STYLES, colour_for, is_dark, style_context

__all__ = ["second_order_figure", "short_bytes"]


def short_bytes(n: float) -> str:
    """``41.4 GB``, ``1.2 MB``, ``812 kB``: three significant digits, for labels in a figure
    (:func:`optviz.memory.format_bytes` writes messages: ``41.4 GB``, ``812.0 KB``)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            v = n / size
            return f"{v:.3g} {unit}"
    return f"{n:.0f} B"


#: The old name, which optviz.cli.analysis still imports; not memory.format_bytes.
format_bytes = short_bytes


def _acc_panel(ax, result, xs_of, style, xlabel):
    deco = decorations(style)
    taken, handles, labels = [], [], []
    lo = 100.0
    for t in result.traces:
        colour = colour_for(t.name, style)
        marker = marker_for(t.name, taken)
        taken.append(marker)
        x = np.asarray(xs_of(t), dtype=float)
        acc = 100 * np.asarray(t.val_acc, dtype=float)
        ok = np.isfinite(acc) & (x > 0)
        every = default_markevery(max(int(ok.sum()) - 1, 1), 8)
        (line,) = ax.plot(x[ok], acc[ok], color=colour, linewidth=deco["linewidth"], marker=marker,
                          markevery=every, markersize=deco["path_marker_size"] * 1.1, markeredgecolor=deco["halo"],
                          linestyle="--" if t.name in ("lbfgs",) else "-")
        handles.append(line)
        labels.append(t.label)
        if ok.any():
            lo = min(lo, float(np.nanmin(acc[ok])))
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylim(max(lo - 2, 0), 100)
    ax.grid(True, which="major", alpha=0.18 if is_dark(style) else 0.25)
    return handles, labels


def second_order_figure(result, style: str = "slides", title: Optional[str] = None, *, floor: Optional[float] = 80.0):
    """Accuracy against seconds and against data passes, and memory beside the full Hessian.

    ``floor``: the accuracy (%) at the bottom of the accuracy axes (None: the lowest value).
    """
    traces = list(result.traces)
    if not traces:
        raise OptvizError("second_order_figure needs at least one method")
    with style_context(style):
        deco = decorations(style)
        rc = STYLES[style]
        size = (13.0, 4.8) if style == "paper" else None
        fig = new_figure(style, size)
        gs = fig.add_gridspec(1, 3, width_ratios=(1.0, 1.0, 0.95))
        ax_t, ax_p, ax_m = (fig.add_subplot(gs[0, i]) for i in range(3))
        handles, labels = _acc_panel(ax_t, result, lambda t: t.seconds, style, "seconds of training")
        _acc_panel(ax_p, result, lambda t: t.passes, style, "passes over the data")
        ax_t.set_ylabel("validation accuracy (%)")
        if floor is not None:
            for ax in (ax_t, ax_p):
                ax.set_ylim(bottom=max(ax.get_ylim()[0], floor) if min(ax.get_ylim()[0], floor) < floor else floor,
                            top=100)
        pad = 16 if rc["font.size"] >= 16 else 8
        ax_t.set_title("against time", pad=pad)
        ax_p.set_title("against work", pad=pad)

        # memory: weights + state per method, and the Hessian
        P, bpe = result.num_params, 4
        names = [t.label.split(" (")[0] for t in traces] + ["Newton\n(full Hessian)"]
        colours = [colour_for(t.name, style) for t in traces] + [colour_for("newton", style)]
        sizes = [(P + t.state_floats) * bpe for t in traces] + [P * P * bpe]
        y = np.arange(len(sizes))[::-1]
        ax_m.barh(y, sizes, color=colours, edgecolor=deco["ink"], linewidth=0.6, height=0.68)
        ax_m.set_xscale("log")
        ax_m.set_yticks(y)
        ax_m.set_yticklabels(names, fontsize=rc["font.size"] * 0.8)
        lo, hi = min(sizes) / 3, max(sizes) * 300                  # room for the labels inside the axes
        ax_m.set_xlim(lo, hi)
        ticks = [(v, u) for v, u in ((1e3, "1 kB"), (1e6, "1 MB"), (1e9, "1 GB"), (1e12, "1 TB")) if lo <= v <= hi]
        ax_m.set_xticks([v for v, _ in ticks], [u for _, u in ticks])
        ax_m.xaxis.set_minor_locator(NullLocator())
        for yi, s in zip(y, sizes):
            ax_m.annotate(short_bytes(s), xy=(s, yi), xytext=(4, 0), textcoords="offset points", va="center",
                          fontsize=rc["font.size"] * 0.75, color=deco["ink"])
        ax_m.set_xlabel("float32 bytes")
        ax_m.set_title("weights + state", pad=pad)
        ax_m.grid(True, axis="x", which="major", alpha=0.18 if is_dark(style) else 0.25)
        # below, in two columns: the second-order labels are long
        fig.legend(handles, labels, loc="outside lower center", ncols=min(2, len(handles)), handlelength=3.2,
                   borderaxespad=0.4, columnspacing=1.2)
        if title is None:
            title = (f"Second order on MNIST: {result.num_params:,} weights, {result.train_images:,} images, "
                     f"{result.budget_seconds:g} s each")
        figure_title(fig, title, style)
    return finish_figure(fig, style)
