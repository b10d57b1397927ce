"""Curvature beside the limit ``c / eta``: along 2-D paths, and along real training runs.

- :func:`path_curvature_figure`: the paths on the contour map (left) and, for each,
  the top Hessian eigenvalue along it (right, the preconditioned one for adaptive
  methods) with the optimizer's limit as a dashed line in its colour;
- :func:`sharpness_figure`: one panel per MNIST run, its sharpness at each snapshot
  against its limit (``2/eta``, ``2(1+gamma)/eta``, Adam's ``38/eta`` on ``P^-1 H``),
  the cost of one eigenvalue in the title.

Both read records (:class:`~optviz.analysis.curvature.PathCurvature`,
:class:`~optviz.analysis.sharpness.SharpnessResult`), never models or optimizers.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..errors import OptvizError
from .field import decorations, default_markevery, draw_field, draw_path, path_styles
from .stability import grid_shape, grid_size, math_rule, number_text, panel_grid, panel_title
from .stills import figure_legend, figure_title, finish_figure, new_figure, field_title
from .style import STYLES, colour_for, is_dark, style_context

__all__ = ["path_curvature_figure", "sharpness_figure"]


def _limit_label(limit, precise: bool = True) -> str:
    rule = math_rule(limit.rule)
    return f"{rule} = {number_text(limit.value)}" if precise else rule


def _short_limit(limit) -> str:
    r"""``$38/\eta$ = 38,000``: the limit with its constant worked out (fits a small panel)."""
    return f"${limit.constant:.3g}/\\eta$ = {number_text(limit.value)}"


def path_curvature_figure(field, curvatures: Sequence, style: str = "slides", title: Optional[str] = None, *,
                          resolution=200):
    """Paths on the map (left) and the curvature met along each (right), beside its limit."""
    from matplotlib.lines import Line2D

    curvatures = list(curvatures)
    if not curvatures:
        raise OptvizError("path_curvature_figure needs at least one path")
    trajs = [c.trajectory for c in curvatures]
    with style_context(style):
        deco = decorations(style)
        size = (11.0, 4.8) if style == "paper" else None
        fig = new_figure(style, size)
        gs = fig.add_gridspec(1, 2, width_ratios=(1.0, 1.15))
        ax_map, ax = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
        draw_field(ax_map, field, style, resolution=resolution)
        styles = path_styles(trajs, style)
        handles, labels, limits, shown = [], [], [], []
        for c, ps in zip(curvatures, styles):
            pa = draw_path(ax_map, c.trajectory, style=style, **ps.kwargs())
            values = np.asarray(c.sharpness, dtype=float)
            steps = np.arange(len(values))
            ok = np.isfinite(values) & (values > 0)
            every = default_markevery(max(len(values) - 1, 1), 10)
            (line,) = ax.plot(steps[ok], values[ok], color=ps.colour, linestyle=ps.linestyle,
                              linewidth=deco["linewidth"], marker=ps.marker, markevery=every,
                              markersize=deco["path_marker_size"], markeredgecolor=deco["halo"])
            shown.append(values[ok])
            label = c.trajectory.label
            if c.limit is not None:
                ax.axhline(c.limit.value, color=ps.colour, linestyle=":", linewidth=deco["linewidth"] * 0.8,
                           zorder=1)
                ax.annotate(_limit_label(c.limit), xy=(0.0, c.limit.value), xycoords=("axes fraction", "data"),
                            xytext=(6, 3), textcoords="offset points", ha="left", va="bottom", zorder=6,
                            fontsize=STYLES[style]["font.size"] * 0.75, color=ps.colour,
                            bbox=dict(boxstyle="square,pad=0.1", facecolor=deco["background"], edgecolor="none",
                                      alpha=0.85))
                limits.append(c.limit.value)
                label += f"; {'of $P^{-1}H$, ' if c.limit.preconditioned else ''}{_limit_label(c.limit)}"
            if c.trajectory.diverged_at is not None:
                label += f", diverged at step {c.trajectory.diverged_at}"
            handles.append((line, pa.cross) if pa.cross is not None else line)
            labels.append(label)
        minima = np.asarray(getattr(field, "minima", np.zeros((0, 2))), dtype=float).reshape(-1, 2)
        at_min = None
        if len(minima) and hasattr(field, "hessian"):
            at_min = float(np.linalg.eigvalsh(field.hessian(minima[:1]))[0, -1])
            grey = "#8a8a8a"
            ax.axhline(at_min, color=grey, linestyle="-", linewidth=deco["linewidth"] * 0.5, zorder=0.5)
            limits.append(at_min)
        every_value = np.concatenate(shown + [np.asarray(limits, dtype=float)])
        if every_value.size and every_value.max() / every_value.min() > 20:
            ax.set_yscale("log")
        else:
            ax.set_ylim(0, every_value.max() * 1.12 if every_value.size else 1)
        ax.set_xlabel("step")
        ax.set_ylabel(r"$\lambda_{\max}$ of the Hessian")
        ax.grid(True, which="major", alpha=0.18 if is_dark(style) else 0.25)
        ax.margins(x=0.01)
        pad = 16 if STYLES[style]["font.size"] >= 16 else 8
        ax_map.set_title("paths", pad=pad)
        ax.set_title("curvature met along the path", pad=pad)
        handles.append(Line2D([], [], color=deco["ink"], linestyle=":", linewidth=deco["linewidth"] * 0.8))
        labels.append("dotted: each method's limit $c/\\eta$")
        if at_min is not None:
            handles.append(Line2D([], [], color="#8a8a8a", linewidth=deco["linewidth"] * 0.5))
            labels.append(f"grey: $\\lambda_{{\\max}}$ at the minimum ({number_text(at_min)})")
        from matplotlib.legend_handler import HandlerTuple

        fig.legend(handles, labels, loc="outside lower center", ncols=2 if len(handles) > 2 else len(handles),
                   handlelength=3.2, handler_map={tuple: HandlerTuple(ndivide=None, pad=0.0)},
                   borderaxespad=0.4, columnspacing=1.2)
        figure_title(fig, field_title(field) if title is None else title, style)
    return finish_figure(fig, style)


def _describe(curve) -> str:
    """``"peaks at 184 % of the limit"`` / ``"stays below 17 % of it"``."""
    r = curve.ratio
    r = r[np.isfinite(r)]
    if curve.limit is None or not len(r):
        return "no stability limit"
    top = float(r.max())
    if top >= 0.9:
        return f"reaches the limit (peak {100 * top:.0f} %)"
    return f"stays below {100 * top:.0f} % of the limit"


def sharpness_figure(result, style: str = "slides", title: Optional[str] = None, *, x: str = "step"):
    """One panel per run: its sharpness at each snapshot against its limit (dashed).

    The title is ``title`` (default "Sharpness during training") followed by the cost of
    one eigenvalue, which every sharpness figure states.

    For adaptive methods the coloured line is the preconditioned sharpness
    ``lambda_max(P^-1 H)`` (what Adam's limit is about) and a thin grey line the plain
    ``lambda_max(H)``. ``x``: ``"step"`` or ``"epoch"``.
    """
    from matplotlib.lines import Line2D

    curves = list(result.curves)
    if not curves:
        raise OptvizError("sharpness_figure needs at least one run")
    if x not in ("step", "epoch"):
        raise OptvizError(f"unknown x axis {x!r}; choose one of: epoch, step")
    with style_context(style):
        deco = decorations(style)
        rows, cols = grid_shape(len(curves))
        fig = new_figure(style, grid_size(style, rows, cols))
        axes = panel_grid(fig, rows, cols, len(curves))
        grey = "#9a9a9a" if not is_dark(style) else "#8a8d92"
        any_pre = False
        for ax, c in zip(axes, curves):
            colour = colour_for(c.optimizer, style)
            t = np.asarray(c.steps, dtype=float)
            if x == "epoch" and c.steps_per_epoch:
                t = t / c.steps_per_epoch
            main = np.asarray(c.relevant, dtype=float)
            plain = np.asarray(c.sharpness, dtype=float)
            pre_shown = c.limit is not None and c.limit.preconditioned and c.preconditioned is not None
            values = [main] + ([plain] if pre_shown else [])
            if c.limit is not None:
                values.append(np.array([c.limit.value]))
            finite = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in values])
            log = finite.size > 0 and finite.max() / finite.min() > 20
            if pre_shown:
                any_pre = True
                ax.plot(t, plain, color=grey, linewidth=deco["linewidth"] * 0.6, zorder=2)
            ok = np.isfinite(main)
            every = default_markevery(max(int(ok.sum()) - 1, 1), 12)
            ax.plot(t[ok], main[ok], color=colour, linewidth=deco["linewidth"], marker="o", markevery=every,
                    markersize=deco["path_marker_size"] * 0.8, markeredgecolor=deco["halo"], zorder=3)
            if c.limit is not None:
                ax.axhline(c.limit.value, color=deco["ink"], linestyle=(0, (5, 3)), linewidth=deco["linewidth"] * 0.7,
                           zorder=2)
                ax.annotate(_short_limit(c.limit), xy=(1.0, c.limit.value), xycoords=("axes fraction", "data"),
                            xytext=(-4, 4), textcoords="offset points", ha="right", va="bottom",
                            fontsize=STYLES[style]["font.size"] * 0.8, color=deco["ink"])
            top = float(finite.max()) if finite.size else 1.0
            if log:
                ax.set_yscale("log")
                ax.set_ylim(bottom=float(finite.min()) / 1.6, top=top * 4.0)    # room for the limit's label
            else:
                ax.set_ylim(bottom=0, top=max(top * 1.3, 1e-12))
            ax.grid(True, which="major", alpha=0.18 if is_dark(style) else 0.25)
            ax.margins(x=0.01)
            panel_title(ax, c.label, colour, style, _describe(c))
            if c.note:
                ax.text(0.5, 0.5, "preconditioner unavailable:\nthe replay did not reproduce the run",
                        transform=ax.transAxes, ha="center", va="center", fontsize=STYLES[style]["font.size"] * 0.7,
                        color=deco["ink"])
        n = len(curves)
        for i, ax in enumerate(axes[:n]):
            if i + cols >= n:                                 # nothing below it: label its x axis
                ax.set_xlabel("training step" if x == "step" else "epoch")
        fig.supylabel(r"top Hessian eigenvalue $\lambda_{\max}$", fontsize=STYLES[style]["axes.labelsize"])
        handles = [Line2D([], [], color=deco["ink"], linewidth=deco["linewidth"], marker="o",
                          markersize=deco["path_marker_size"] * 0.8),
                   Line2D([], [], color=deco["ink"], linestyle=(0, (5, 3)), linewidth=deco["linewidth"] * 0.7)]
        labels = [r"$\lambda_{\max}(H)$" + (r" (adaptive: of $P^{-1}H$)" if any_pre else ""),
                  r"stability limit $c/\eta$"]
        if any_pre:
            handles.append(Line2D([], [], color=grey, linewidth=deco["linewidth"] * 0.6))
            labels.append(r"adaptive: $\lambda_{\max}(H)$")
        figure_legend(fig, handles, labels, style, where="below")
        cost = (f"on {result.images:,} training images: {result.seconds_per_eigenvalue:.2g} s and "
                f"{result.products_per_eigenvalue:.0f} Hessian-vector products per eigenvalue")
        title = f"{title or 'Sharpness during training'}\n{cost}"
        figure_title(fig, title, style)
    return finish_figure(fig, style)
