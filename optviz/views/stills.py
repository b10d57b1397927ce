"""Static figures: each function returns a matplotlib ``Figure``; the caller saves it.

>>> from optviz.surfaces import get_surface
>>> from optviz.views import contour_figure, save_figure
>>> fig = contour_figure(get_surface("rosenbrock"), [], "slides")
>>> len(fig.axes)          # the map and its colour bar
2

Figures:

- :func:`contour_figure`: the field's contours with the paths, starts and minima;
- :func:`surface3d_figure`: the field as a 3-D surface (log height for wide ranges) with the paths on it;
- :func:`loss_figure`: loss against step, and distance to the nearest minimum;
- :func:`gradient_field_figure`: the flow of ``-grad f`` over the contours (analytic surfaces only);
- :func:`dashboard_figure`: the paths beside the loss curves, 16:9 on slides.

They draw any :class:`~optviz.surfaces.ScalarField2D`, also a
:class:`~optviz.surfaces.GridField` such as a slice of MNIST's loss landscape,
and any list of :class:`~optviz.engine.Trajectory`. They are built without
pyplot (no global figure list to leak), laid out with constrained layout (nothing
is cut off), and take the preset ``paper``, ``slides`` or ``dark``.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from ..errors import OptvizError
from .field import (PathArtists, band_norm, contour_data, decorations, default_markevery,
                    diverged_label, draw_field, draw_path, field_cmap, path_styles, _finite_prefix)
from .save import tag_figure
from .style import STYLES, figure_size, is_dark, style_context

__all__ = ["contour_figure", "surface3d_figure", "loss_figure", "gradient_field_figure", "dashboard_figure",
           "field_title"]


# --- shared helpers ---------------------------------------------------------------------------


def new_figure(style: str, size=None):
    """A new Figure (no pyplot) with an Agg canvas and constrained layout; call inside style_context."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size or figure_size(style), layout="constrained")
    FigureCanvasAgg(fig)
    big = STYLES[style]["font.size"] >= 16
    fig.get_layout_engine().set(w_pad=0.12 if big else 0.06, h_pad=0.12 if big else 0.06)
    return fig


def finish_figure(fig, style: str):
    """Tag the figure with its preset and settle the layout.

    Constrained layout needs a second pass when an outside legend or a colour bar
    changes the room left for an equal-aspect map; one draw here makes every later
    draw (saving, showing) start from the settled layout, so nothing is cut off.
    """
    with style_context(style):
        fig.draw_without_rendering()
    return tag_figure(fig, style)


def field_title(field) -> str:
    """``"Rosenbrock:  $(1-x)^2 + 100(y-x^2)^2$"``; a GridField's own title as it is."""
    title = getattr(field, "title", "") or getattr(field, "name", "")
    name = str(getattr(field, "name", "")).replace("_", " ").strip()
    if title.startswith("$") and name:
        return f"{name[:1].upper()}{name[1:]}:  {title}"
    return title


def _fit_text(text, max_width_px: float, min_scale: float = 0.5) -> None:
    """Shrink ``text``'s font until it is at most ``max_width_px`` wide (long formulas)."""
    fig = text.figure
    renderer = fig.canvas.get_renderer()
    size = text.get_fontsize()
    for _ in range(8):
        if text.get_window_extent(renderer).width <= max_width_px or text.get_fontsize() <= size * min_scale:
            return
        text.set_fontsize(text.get_fontsize() * 0.88)


def figure_title(fig, text: str, style: str):
    """The figure's title (a suptitle: constrained layout keeps it inside the canvas),
    shrunk to fit the width when the formula is long."""
    if not text:
        return None
    t = fig.suptitle(text, fontsize=STYLES[style]["axes.titlesize"])
    _fit_text(t, 0.96 * fig.get_size_inches()[0] * fig.dpi)
    return t


def _legend_entries(trajectories, artists: Sequence[PathArtists]):
    """One (handle, label) per distinct configuration; a diverged one shows its cross."""
    handles, labels = [], []
    for traj, pa in zip(trajectories, artists):
        label = pa.line.get_label()
        if not label or label.startswith("_") or label in labels:
            continue
        handles.append((pa.line, pa.cross) if pa.cross is not None else pa.line)
        labels.append(label)
    return handles, labels


def _marker_entries(style: str, field_artists=None, start: bool = True):
    """Legend proxies for the start ring and the minima stars."""
    from matplotlib.lines import Line2D

    deco = decorations(style)
    handles, labels = [], []
    if start:
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=deco["start_size"] * 0.8,
                              markerfacecolor="none", markeredgecolor=deco["ink"],
                              markeredgewidth=deco["linewidth"] * 0.7))
        labels.append("start")
    if field_artists is not None:
        for artist, label in ((field_artists.minima, "global minimum"), (field_artists.local_minima, "local minimum")):
            if artist is not None:
                handles.append(artist)
                labels.append(label)
    return handles, labels


def figure_legend(fig, handles, labels, style: str, where: str = "right"):
    """A legend outside the axes (constrained layout makes room for it)."""
    from matplotlib.legend_handler import HandlerTuple

    if not handles:
        return None
    loc = {"right": "outside right center", "below": "outside lower center"}[where]
    ncols = 1 if where == "right" else min(len(handles), 3)
    big = STYLES[style]["font.size"] >= 16
    return fig.legend(handles, labels, loc=loc, ncols=ncols, handlelength=3.2 if big else 3.0,
                      handler_map={tuple: HandlerTuple(ndivide=None, pad=0.0)},
                      borderaxespad=0.4, columnspacing=1.2)


def _draw_paths(ax, trajectories, style: str, box=None) -> List[PathArtists]:
    out = []
    for traj, ps in zip(trajectories, path_styles(trajectories, style)):
        out.append(draw_path(ax, traj, style=style, box=box, **ps.kwargs()))
    return out


def _check_trajectories(trajectories) -> list:
    trajs = list(trajectories or [])
    for t in trajs:
        if not hasattr(t, "xy") or not hasattr(t, "optimizer"):
            raise OptvizError(f"expected Trajectory records, got {type(t).__name__}")
    return trajs


def _has_grad(field) -> bool:
    return callable(getattr(field, "grad", None))


# --- contour --------------------------------------------------------------------------------------


def contour_figure(field, trajectories: Sequence = (), style: str = "paper", title: Optional[str] = None, *,
                   colorbar: bool = True, resolution=200, legend: bool = True):
    """The field's filled contours with each trajectory's path.

    Starts are ringed, minima starred; a diverged path ends with a cross where it left
    the picture and its legend entry reads "..., diverged at step k". The legend (outside,
    on the right) gives each optimizer with its hyperparameters (``traj.label``).
    ``title`` defaults to the field's name and formula; pass ``""`` for none.

    Axes: the map, plus the colour bar when ``colorbar``.
    """
    trajs = _check_trajectories(trajectories)
    with style_context(style):
        fig = new_figure(style)
        ax = fig.add_subplot()
        fa = draw_field(ax, field, style, resolution=resolution, colorbar=colorbar)
        paths = _draw_paths(ax, trajs, style)
        figure_title(fig, field_title(field) if title is None else title, style)
        if legend:
            h, l = _legend_entries(trajs, paths)
            mh, ml = _marker_entries(style, fa, start=bool(trajs))
            figure_legend(fig, h + mh, l + ml, style)
    return finish_figure(fig, style)


# --- 3-D surface -----------------------------------------------------------------------------------


def _height(field, Z):
    """The function that maps field values to plotted heights, and the z-axis label.

    Wide-range fields (``log_levels``) are drawn as ``log10(f - min f + eps)``, where ``eps``
    is the 1st percentile of ``f - min f`` over the grid (so the valley floor keeps some
    relief and the walls do not dwarf it); others as they are, clipped to the grid's range.
    """
    z = np.asarray(np.ma.filled(Z, np.nan), dtype=float)
    finite = z[np.isfinite(z)]
    zmin, zmax = float(finite.min()), float(finite.max())
    if getattr(field, "log_levels", False):
        eps = max(float(np.percentile(finite - zmin, 1.0)), 1e-12 * max(zmax - zmin, 1e-300))

        def height(v):
            v = np.asarray(v, dtype=float)
            return np.log10(np.clip(v, zmin, zmax) - zmin + eps)

        return height, r"$f - \min f$  (log scale)", True
    return (lambda v: np.clip(np.asarray(v, dtype=float), zmin, zmax)), "f", False


def _inside_part(xy, domain):
    """The finite part of a path up to where it first leaves ``domain`` (that edge point included)."""
    from .field import exit_point

    xy = _finite_prefix(xy)
    (x0, x1), (y0, y1) = domain
    inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    if inside.all() or len(xy) == 0:
        return xy
    if not inside[0]:
        return xy[:0]
    k = int(np.argmin(inside))
    return np.vstack([xy[:k], exit_point(xy, domain)[None, :]])


def surface3d_figure(field, trajectories: Sequence = (), style: str = "paper", title: Optional[str] = None, *,
                     resolution=90, elev: float = 50, azim: float = -120, legend: bool = True):
    """The field as a 3-D surface, banded like the contour map, with the paths lying on it.

    Heights are ``log10(f - min f + eps)`` when the field's range spans decades
    (``log_levels``), else ``f``. Paths are drawn at the field's height under each
    point (so a path projected onto a network's loss landscape lies on the slice) and
    stop where they leave the domain; a diverged path ends in a cross.

    Paths are drawn over the surface (matplotlib's 3-D has no depth buffer, and on a log
    height a minimum is a narrow well that hides its floor from any side), so they stay
    visible from every camera angle; ``elev``/``azim`` turn the camera.
    """

    trajs = _check_trajectories(trajectories)
    with style_context(style):
        deco = decorations(style)
        rc = STYLES[style]
        fig = new_figure(style)
        ax = fig.add_subplot(projection="3d", computed_zorder=False)
        X, Y, Z, levels = contour_data(field, resolution)
        height, zlabel, logz = _height(field, Z)
        H = np.where(np.ma.getmaskarray(Z), np.nan, height(np.ma.filled(Z, np.nan)))
        cmap = field_cmap(style)
        face = cmap(band_norm(levels, cmap)(np.ma.filled(Z, levels[0])))
        face = _soft_shade(face, np.nan_to_num(H, nan=np.nanmin(H)), X, Y)
        stride = max(1, min(X.shape) // 60)
        ax.plot_surface(X, Y, H, facecolors=face, rstride=stride, cstride=stride, linewidth=0,
                        antialiased=False, shade=False, zorder=0)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, prune="lower"))  # keeps clear of the x labels at the corner
        if logz:
            from matplotlib.ticker import FuncFormatter

            ax.zaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
            ax.zaxis.set_major_formatter(FuncFormatter(lambda t, _: f"$10^{{{int(round(t))}}}$"))

        styles = path_styles(trajs, style)
        handles, labels = [], []
        (x0, x1), (y0, y1) = field.domain
        ratio = (y1 - y0) / (x1 - x0)
        aspect_y = ratio if 1 / 3 <= ratio <= 3 else 1.0
        box = (1.0, aspect_y, 0.65)
        for traj, ps in zip(trajs, styles):
            xy = _inside_part(traj.xy, field.domain)
            if len(xy) == 0:
                continue
            zs = height(field.value(xy))
            zs = np.where(np.isfinite(zs), zs, np.nanmin(H))
            n = len(xy) - 1
            every = default_markevery(n, deco["max_markers"])
            label = traj.label or traj.optimizer
            if traj.diverged_at is not None:
                label = diverged_label(label, traj.diverged_at, traj.exit)
            ax.plot(xy[:, 0], xy[:, 1], zs, color=deco["halo"], linewidth=deco["linewidth"] + deco["halo_extra"],
                    alpha=0.85, zorder=3, label="_halo")
            (line,) = ax.plot(xy[:, 0], xy[:, 1], zs, color=ps.colour, linestyle=ps.linestyle,
                              linewidth=deco["linewidth"], marker=ps.marker, markevery=every,
                              markersize=deco["path_marker_size"], markeredgecolor=deco["halo"],
                              markeredgewidth=0.6, zorder=4, label=label)
            ax.plot([xy[0, 0]], [xy[0, 1]], [zs[0]], linestyle="none", marker="o", markersize=deco["start_size"],
                    markerfacecolor="none", markeredgecolor=deco["ink"], markeredgewidth=deco["linewidth"] * 0.8,
                    zorder=5, label="_start")
            handle = line
            if traj.diverged_at is not None:
                (cross,) = ax.plot([xy[-1, 0]], [xy[-1, 1]], [zs[-1]], linestyle="none", marker="X",
                                   markersize=deco["cross_size"], markerfacecolor=ps.colour,
                                   markeredgecolor=deco["ink"], zorder=6, label="_diverged")
                handle = (line, cross)
            if label not in labels:
                handles.append(handle)
                labels.append(label)

        mins = np.asarray(getattr(field, "minima", np.zeros((0, 2))), dtype=float).reshape(-1, 2)
        star = None
        if len(mins):
            zm = height(field.value(mins))
            (star,) = ax.plot(mins[:, 0], mins[:, 1], zm, linestyle="none", marker="*",
                              markersize=deco["star_size"], markerfacecolor=deco["star_face"],
                              markeredgecolor=deco["star_edge"], zorder=7, label="global minimum")

        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_box_aspect(box, zoom=0.92)
        ax.view_init(elev=elev, azim=azim)
        small = rc.get("xtick.labelsize", rc["font.size"])
        small = 0.75 * (small if isinstance(small, (int, float)) else rc["font.size"])
        ax.tick_params(labelsize=small, pad=1)
        pad = 10 if rc["font.size"] >= 16 else 4
        ax.set_xlabel(getattr(field, "xlabel", "x"), labelpad=pad)
        ax.set_ylabel(getattr(field, "ylabel", "y"), labelpad=pad)
        ax.set_zlabel(zlabel, labelpad=pad + 4)
        _style_panes(ax, style)
        figure_title(fig, field_title(field) if title is None else title, style)
        if legend:
            mh, ml = _marker_entries(style, None, start=bool(trajs))
            if star is not None:
                mh.append(star)
                ml.append("global minimum")
            figure_legend(fig, handles + mh, labels + ml, style)
    return finish_figure(fig, style)


def _soft_shade(rgba, H, X, Y):
    """Blend a light-source shading into the band colours: relief without losing the bands."""
    from matplotlib.colors import LightSource

    span = float(np.ptp(H)) or 1.0
    # heights scaled to the domain's size, so the relief reads the same on any field
    size = max(float(np.ptp(X)), float(np.ptp(Y)))
    dx = float(np.ptp(X)) / max(X.shape[1] - 1, 1)
    dy = float(np.ptp(Y)) / max(X.shape[0] - 1, 1)
    ls = LightSource(azdeg=315, altdeg=50)
    shaded = ls.shade_rgb(rgba[..., :3], H * (0.5 * size / span), blend_mode="soft", fraction=0.8, dx=dx, dy=dy)
    return np.concatenate([shaded, rgba[..., 3:]], axis=-1)


def _style_panes(ax, style: str) -> None:
    """Quiet panes and grid, in the background's tone on the dark preset."""
    dark = is_dark(style)
    bg = STYLES[style].get("axes.facecolor", "white")
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.pane.set_facecolor(bg if dark else "#f4f4f4")
        axis.pane.set_edgecolor("#444444" if dark else "#cccccc")
        axis._axinfo["grid"].update(color="#3a3d42" if dark else "#dddddd", linewidth=0.6)


# --- loss and distance ------------------------------------------------------------------------------


def _clip_range(x, y, lo, hi, log: bool):
    """Cut a curve where it first leaves ``[lo, hi]``; return (x, y, end point or None).

    The end point is where the segment crosses the bound (interpolated in log space on a
    log axis), so a cross drawn there sits on the axes' edge, on the curve.
    """
    out = ~((y >= lo) & (y <= hi))
    if not out.any():
        return x, y, None
    k = int(np.argmax(out))
    bound = hi if not (y[k] < lo) else lo
    if k == 0:
        return x[:1], np.clip(y[:1], lo, hi), (x[0], bound)
    y0, y1 = y[k - 1], y[k]
    t = 1.0
    with np.errstate(all="ignore"):
        if log and y0 > 0 and y1 > 0 and bound > 0 and np.isfinite(y1):
            t = (np.log(bound) - np.log(y0)) / (np.log(y1) - np.log(y0))
        elif np.isfinite(y1) and y1 != y0:
            t = (bound - y0) / (y1 - y0)
    t = float(np.clip(t, 0.0, 1.0)) if np.isfinite(t) else 1.0
    xe = x[k - 1] + t * (x[k] - x[k - 1])
    return np.append(x[:k], xe), np.append(y[:k], bound), (xe, bound)


def _caps(trajs, values, log: bool):
    """Axis limits that keep runaway (diverged) curves from squashing the others.

    The range of the curves that did not diverge, plus the starting values, widened a
    little (a decade and a half on a log axis, a quarter of the range on a linear one);
    None for a side that no curve leaves.
    """
    calm = [v[np.isfinite(v)] for t, v in zip(trajs, values) if t.diverged_at is None]
    calm += [v[:1][np.isfinite(v[:1])] for v in values]
    calm = np.concatenate(calm) if calm else np.zeros(0)
    if log:
        calm = calm[calm > 0]
    if calm.size == 0:
        return None, None
    lo, hi = float(calm.min()), float(calm.max())
    if log:
        lo_cap, hi_cap = lo / 30.0, hi * 30.0
    else:
        pad = 0.25 * max(hi - lo, 1e-12 * max(1.0, abs(hi)))
        lo_cap, hi_cap = lo - pad, hi + pad
    finite = [v[np.isfinite(v)] for v in values]
    every = np.concatenate(finite) if finite else np.zeros(0)
    if every.size == 0:
        return None, None
    return (lo_cap if every.min() < lo_cap else None), (hi_cap if every.max() > hi_cap else None)


def _curve_panel(ax, trajs, styles, values, style: str, ylabel: str, log: bool):
    """One curve per trajectory (``values``: one array per trajectory, indexed by step).

    Returns the legend's (handles, labels): one per configuration, a diverged one
    showing its cross, which is drawn where the curve ends or leaves the axes.
    """
    deco = decorations(style)
    lw = deco["linewidth"]
    lo_cap, hi_cap = _caps(trajs, values, log)
    lo = -np.inf if lo_cap is None else lo_cap
    hi = np.inf if hi_cap is None else hi_cap
    handles, labels = [], []
    for traj, ps, v in zip(trajs, styles, values):
        v = np.asarray(v, dtype=float)
        steps = np.arange(len(v), dtype=float)
        good = np.isfinite(v)
        if not good.all():
            cut = int(np.argmin(good))
            steps, v = steps[:cut], v[:cut]
        end = None
        if len(v):
            steps, v, end = _clip_range(steps, v, lo, hi, log)
            if end is None and traj.diverged_at is not None:
                end = (steps[-1], v[-1])
        label = traj.label or traj.optimizer
        if traj.diverged_at is not None:
            label = diverged_label(label, traj.diverged_at, traj.exit)
        every = default_markevery(max(len(v) - 1, 1), 10)
        (line,) = ax.plot(steps, v, color=ps.colour, linestyle=ps.linestyle, linewidth=lw, marker=ps.marker,
                          markevery=every, markersize=deco["path_marker_size"], markeredgecolor=deco["halo"],
                          markeredgewidth=0.6, label=label, solid_capstyle="round", dash_capstyle="round")
        handle = line
        if traj.diverged_at is not None and end is not None:
            (cross,) = ax.plot([end[0]], [end[1]], linestyle="none", marker="X", markersize=deco["cross_size"] * 0.8,
                               markerfacecolor=ps.colour, markeredgecolor=deco["ink"], clip_on=False,
                               label="_diverged", zorder=5)
            handle = (line, cross)
        if label not in labels:
            handles.append(handle)
            labels.append(label)
    if log:
        ax.set_yscale("log")
    if lo_cap is not None or hi_cap is not None:
        ax.set_ylim(bottom=lo_cap, top=hi_cap)
    if log:
        short_log_ticks(ax)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.18 if is_dark(style) else 0.25)
    ax.margins(x=0.01)
    return handles, labels


def short_log_ticks(ax) -> None:
    """On a log axis spanning under ~2.5 decades, tick 1-2-5 values written plainly
    (``0.5``, ``2``) instead of matplotlib's ``6 x 10^-1`` minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo, hi = ax.get_ylim()
    if lo <= 0 or hi / lo > 10 ** 2.5:
        return
    from .field import _compact

    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _compact(v)))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _loss_values(trajs, minimum_value):
    """The curves for the loss panel, their y label and whether the y axis is logarithmic."""
    if minimum_value is not None:
        tiny = 1e-16 * max(1.0, abs(float(minimum_value)))
        values = [np.asarray(t.loss, dtype=float) - float(minimum_value) + tiny for t in trajs]
        # rounding can put a value a hair below the minimum
        values = [np.where(np.isfinite(v), np.maximum(v, tiny), v) for v in values]
        return values, r"$f - f^*$", True
    values = [np.asarray(t.loss, dtype=float) for t in trajs]
    finite = [v[np.isfinite(v)] for v in values]
    positive = all(f.size == 0 or f.min() > 0 for f in finite) and any(f.size for f in finite)
    return values, "f", positive


def _distance_values(trajs, minima):
    values = []
    for t in trajs:
        d = t.distance_to(minima)
        values.append(d)
    scale = max([np.nanmax(v[np.isfinite(v)]) for v in values if np.isfinite(v).any()] + [1.0])
    tiny = 1e-16 * scale
    return [np.where(np.isfinite(v), v + tiny, v) for v in values]


def _resolve_reference(field, minimum_value, minima):
    if field is not None:
        if minimum_value is None:
            minimum_value = getattr(field, "minimum_value", None)
        if minima is None:
            minima = getattr(field, "minima", None)
    minima = None if minima is None else np.asarray(minima, dtype=float).reshape(-1, 2)
    if minima is not None and len(minima) == 0:
        minima = None
    return minimum_value, minima


def loss_figure(trajectories: Sequence, style: str = "paper", minimum_value: Optional[float] = None, *,
                minima=None, field=None, title: Optional[str] = None):
    """Loss against step (left) and distance to the nearest minimum (right).

    With ``minimum_value`` (``f*``) the left panel shows ``f - f* + tiny`` on a log axis,
    so linear and superlinear convergence read as straight and bending lines; without
    it, ``f`` itself (log axis when every value is positive, e.g. a training loss, else
    linear, e.g. on a saddle). The distance panel needs the minima (``minima`` (k, 2),
    or a ``field`` that lists them, which also supplies ``f*``); without minima the
    figure has the loss panel only. A diverged run ends in a cross where it left
    the axes; the y axes are capped a little above the starting values.
    """
    trajs = _check_trajectories(trajectories)
    if not trajs:
        raise OptvizError("loss_figure needs at least one trajectory")
    minimum_value, minima = _resolve_reference(field, minimum_value, minima)
    with style_context(style):
        fig = new_figure(style)
        styles = path_styles(trajs, style)
        n = 2 if minima is not None else 1
        axes = fig.subplots(1, n, squeeze=False)[0]
        values, ylabel, log = _loss_values(trajs, minimum_value)
        handles, labels = _curve_panel(axes[0], trajs, styles, values, style, ylabel, log)
        axes[0].set_title("loss")
        if n == 2:
            _curve_panel(axes[1], trajs, styles, _distance_values(trajs, minima), style,
                         "distance", True)
            axes[1].set_title("distance to nearest minimum")
        if title is None and field is not None:
            title = field_title(field)
        if title:
            figure_title(fig, title, style)
        figure_legend(fig, handles, labels, style, where="below" if n == 2 else "right")
    return finish_figure(fig, style)


# --- gradient field ---------------------------------------------------------------------------------


def gradient_field_figure(field, style: str = "paper", title: Optional[str] = None, *, kind: str = "stream",
                          density: Optional[float] = None, resolution=200):
    """The flow of ``-grad f`` over the contours: where gradient descent would go.

    ``kind="stream"``: streamlines, thicker where the gradient is steeper (log scale);
    ``kind="quiver"``: arrows of equal length on a coarse grid (directions only).
    Needs an analytic surface: a :class:`~optviz.surfaces.GridField` has no gradient and
    raises :class:`~optviz.errors.OptvizError`.
    """
    if not _has_grad(field):
        raise OptvizError(
            f"field {getattr(field, 'name', '?')!r} has no gradient (it is known only by its samples on a grid); "
            "a gradient field figure needs an analytic surface such as get_surface('rosenbrock')")
    if kind not in ("stream", "quiver"):
        raise OptvizError(f"unknown gradient field kind {kind!r}; choose one of: quiver, stream")
    with style_context(style):
        deco = decorations(style)
        fig = new_figure(style)
        ax = fig.add_subplot()
        fa = draw_field(ax, field, style, resolution=resolution, colorbar=True)
        (x0, x1), (y0, y1) = field.domain
        n = 36 if kind == "stream" else 21
        xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
        P = np.stack(np.meshgrid(xs, ys), axis=-1)                   # (n, n, 2)
        with np.errstate(all="ignore"):
            G = -np.asarray(field.grad(P), dtype=float)               # (n, n, 2)
        G = np.where(np.isfinite(G), G, 0.0)
        U, V = G[..., 0], G[..., 1]
        mag = np.hypot(U, V)
        ink = deco["ink"]
        if kind == "stream":
            logm = np.log10(mag + 1e-12 * max(mag.max(), 1e-300))
            lo, hi = np.percentile(logm, [5, 95])
            w = np.clip((logm - lo) / max(hi - lo, 1e-12), 0, 1)
            lw = deco["linewidth"] * (0.25 + 0.55 * w)
            ax.streamplot(xs, ys, U, V, color=ink, linewidth=lw, density=density or (1.3 if deco["linewidth"] < 2 else 1.0),
                          arrowsize=1.0 if deco["linewidth"] < 2 else 1.8, arrowstyle="-|>", zorder=3,
                          broken_streamlines=True)
        else:
            unit = np.where(mag > 0, 1.0 / np.maximum(mag, 1e-300), 0.0)
            ax.quiver(P[..., 0], P[..., 1], U * unit, V * unit, color=ink, angles="xy", pivot="mid",
                      scale_units="xy", scale=1.4 / ((x1 - x0) / (n - 1)), width=0.004 if deco["linewidth"] < 2 else 0.005,
                      zorder=3, alpha=0.85)
        for artist in (fa.minima, fa.local_minima):
            if artist is not None:
                artist.set_zorder(6)
        base = field_title(field)
        figure_title(fig, (r"$-\nabla f$" + (f" on {base}" if base else "")) if title is None else title, style)
        mh, ml = _marker_entries(style, fa, start=False)
        if mh:
            figure_legend(fig, mh, ml, style, where="below")
    return finish_figure(fig, style)


# --- dashboard ---------------------------------------------------------------------------------------


def dashboard_figure(field, trajectories: Sequence, style: str = "slides", minimum_value: Optional[float] = None,
                     title: Optional[str] = None, *, resolution=200):
    """Paths on the contour map (left) beside the loss curves (right), one shared legend below.

    16:9 in ``slides``/``dark``; on ``paper`` a wide 10 x 4.8 inch figure. The loss panel
    is as in :func:`loss_figure` (``f - f*`` on a log axis when ``f*`` is known, from
    ``minimum_value`` or the field).
    """
    trajs = _check_trajectories(trajectories)
    if minimum_value is None:
        minimum_value = getattr(field, "minimum_value", None)
    with style_context(style):
        size = (10.0, 4.8) if style == "paper" else figure_size(style)
        fig = new_figure(style, size)
        gs = fig.add_gridspec(1, 2, width_ratios=(1.05, 1.0))
        ax_map = fig.add_subplot(gs[0, 0])
        ax_loss = fig.add_subplot(gs[0, 1])
        fa = draw_field(ax_map, field, style, resolution=resolution, colorbar=False)
        paths = _draw_paths(ax_map, trajs, style)
        styles = path_styles(trajs, style)
        handles, labels = [], []
        if trajs:
            values, ylabel, log = _loss_values(trajs, minimum_value)
            _curve_panel(ax_loss, trajs, styles, values, style, ylabel, log)
            handles, labels = _legend_entries(trajs, paths)
        pad = 16 if STYLES[style]["font.size"] >= 16 else 8   # room for a cross on the map's top edge
        ax_loss.set_title("loss", pad=pad)
        ax_map.set_title("paths", pad=pad)
        figure_title(fig, field_title(field) if title is None else title, style)
        mh, ml = _marker_entries(style, fa, start=bool(trajs))
        figure_legend(fig, handles + mh, labels + ml, style, where="below")
    return finish_figure(fig, style)
