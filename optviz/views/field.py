"""Drawing primitives shared by the static figures and the animations.

Three functions, each drawing onto an ``Axes`` it is given:

- :func:`draw_field`: any :class:`~optviz.surfaces.ScalarField2D` (an analytic
  surface or a :class:`~optviz.surfaces.GridField` sampled from a network's
  loss) as filled contours with thin contour lines and its minima starred;
- :func:`draw_path`: one :class:`~optviz.engine.Trajectory` as a line with a
  marker every few steps, a start marker and, for a diverged run, a cross where
  it left;
- :func:`path_styles`: colour, linestyle and marker for each trajectory of a
  comparison, so every path stays identifiable in colour and in greyscale.

They read fields and trajectories only, never optimizers. The returned artist
records let an animation create everything once and then only call
:meth:`PathArtists.show_upto` per frame (which uses ``set_data``, so blitting works)::

    fig, ax = plt.subplots()
    draw_field(ax, field, style="slides")
    paths = [draw_path(ax, t, style="slides", **s.kwargs()) for t, s in zip(trajs, path_styles(trajs, "slides"))]
    def frame(k):
        return [a for p in paths for a in p.show_upto(k)]
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import List, Optional, Sequence

import numpy as np

from .style import STYLES, colour_for, is_dark

__all__ = ["FieldArtists", "PathArtists", "PathStyle", "draw_field", "draw_path", "path_styles",
           "add_colorbar", "field_cmap", "band_norm", "contour_data", "exit_point", "decorations", "diverged_label"]

#: Linestyles for repeated configurations of one optimizer (in order of first appearance).
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 3)))
#: One marker per optimizer (by registry order): the shape tells optimizers apart in greyscale.
MARKERS = ("o", "s", "^", "D", "v", "P", "d", "<", ">", "h", "p", "H", "8")  # no X (diverged) or * (minimum)


# --- per-style look -------------------------------------------------------------------


def decorations(style: str) -> dict:
    """Sizes and colours of the non-data ink for ``style`` (line widths, marker sizes, halo colour).

    Read from the preset itself, not from ``rcParams``, so drawing onto an axes created
    outside :func:`~optviz.views.style.style_context` still gets the preset's look.
    """
    rc = STYLES[style]
    big = rc["font.size"] >= 16
    dark = is_dark(style)
    bg = rc.get("axes.facecolor", "white")
    return {
        "linewidth": rc["lines.linewidth"],
        "path_marker_size": 6.5 if big else 3.5,    # the small markers every k steps
        "start_size": 15 if big else 8,
        "star_size": 26 if big else 15,
        "cross_size": 20 if big else 11,
        "cross_width": 4.5 if big else 2.4,
        "contour_width": 0.9 if big else 0.5,
        "contour_colour": "#ffffff" if dark else "#1a1a1a",
        "contour_alpha": 0.22 if dark else 0.28,
        "halo": bg,                                  # outline around paths: the background colour
        "halo_extra": 2.6 if big else 1.6,
        "star_face": "#ffffff" if dark else "#ffd84d",
        "star_edge": "#000000",
        "ink": "#eeeeee" if dark else "#1a1a1a",     # markers that are not an optimizer's colour
        "background": bg,
        "max_markers": 18 if big else 24,
    }


def field_cmap(style: str):
    """The background colour map: viridis washed towards the background.

    On the light presets it is a pastel viridis (paths in full colour stand out on it);
    on ``dark`` it is viridis dimmed towards the dark background (lightened paths stand out).
    Low values are the darkest band in both, so a minimum reads as a "pit".
    """
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap, to_rgb

    base = colormaps["viridis"](np.linspace(0.0, 1.0, 256))[:, :3]
    if is_dark(style):
        bg = np.array(to_rgb(STYLES[style]["axes.facecolor"]))
        rgb = bg + (base - bg) * 0.55
    else:
        rgb = 1.0 - (1.0 - base) * 0.52
    return ListedColormap(rgb, name=f"optviz_{style}")


def band_norm(levels, cmap):
    """One colour per contour band, evenly spread over the colour map.

    With log-spaced levels a linear norm would paint every band near the minimum the
    same colour; a :class:`~matplotlib.colors.BoundaryNorm` keeps them apart.
    """
    from matplotlib.colors import BoundaryNorm

    return BoundaryNorm(levels, cmap.N, clip=True)


def contour_data(field, resolution=200, levels=None, n_levels: int = 30):
    """``X, Y, Z, levels`` for a field: its samples (NaN masked) and strictly increasing levels."""
    X, Y, Z = field.grid(resolution)
    Z = np.ma.masked_invalid(np.asarray(Z, dtype=float))
    if levels is None:
        levels = field.levels(np.ma.filled(Z, np.nan), n_levels)
    elif np.ndim(levels) == 0:
        levels = field.levels(np.ma.filled(Z, np.nan), int(levels))
    levels = np.asarray(levels, dtype=float)
    return X, Y, Z, levels


# --- the field ----------------------------------------------------------------------------


@dataclass
class FieldArtists:
    """What :func:`draw_field` drew; ``None`` for the parts it did not draw."""

    filled: object                      # QuadContourSet (contourf)
    lines: object = None                # QuadContourSet (contour)
    minima: object = None               # Line2D of the global minima (stars)
    local_minima: object = None         # Line2D of the local minima (hollow stars)
    colorbar: object = None             # Colorbar
    levels: np.ndarray = dc_field(default_factory=lambda: np.zeros(0))

    def artists(self) -> list:
        return [a for a in (self.filled, self.lines, self.minima, self.local_minima) if a is not None]


def draw_field(ax, field, style: str = "paper", levels=None, resolution=200, *, n_levels: int = 30,
               lines: bool = True, colorbar: bool = False, mark_minima: bool = True,
               labels: bool = True, equal_aspect: Optional[bool] = None) -> FieldArtists:
    """Draw ``field`` on ``ax``: filled contours, thin contour lines and starred minima.

    Parameters
    ----------
    field : ScalarField2D
        A :class:`~optviz.surfaces.Surface` or a :class:`~optviz.surfaces.GridField`;
        only ``grid``, ``levels``, ``domain``, ``minima``, ``local_minima`` and the
        labels are used (no formula, no gradient).
    style : "paper", "slides" or "dark"
    levels : array, int or None
        Contour levels; an int asks ``field.levels`` for that many; None gives
        ``n_levels`` levels (log-spaced above the minimum when ``field.log_levels``).
    resolution : int or (nx, ny)
        Samples per axis for analytic fields (a GridField draws its own grid).
    colorbar : bool
        Add a slim colour bar (ticks at a few of the levels).
    equal_aspect : bool or None
        None: equal aspect when the domain is not more than 3:1 either way.

    Returns a :class:`FieldArtists`.
    """
    deco = decorations(style)
    cmap = field_cmap(style)
    X, Y, Z, levels = contour_data(field, resolution, levels, n_levels)
    norm = band_norm(levels, cmap)
    filled = ax.contourf(X, Y, Z, levels=levels, cmap=cmap, norm=norm, zorder=0)
    contour_lines = None
    if lines:
        contour_lines = ax.contour(X, Y, Z, levels=levels, colors=deco["contour_colour"],
                                   linewidths=deco["contour_width"], alpha=deco["contour_alpha"],
                                   linestyles="solid", zorder=1)
    out = FieldArtists(filled=filled, lines=contour_lines, levels=levels)

    if mark_minima:
        mins = np.asarray(getattr(field, "minima", np.zeros((0, 2))), dtype=float).reshape(-1, 2)
        if len(mins):
            (out.minima,) = ax.plot(mins[:, 0], mins[:, 1], linestyle="none", marker="*",
                                    markersize=deco["star_size"], markerfacecolor=deco["star_face"],
                                    markeredgecolor=deco["star_edge"], markeredgewidth=1.2 if deco["linewidth"] < 2 else 1.8,
                                    zorder=6, label="global minimum")
        local = np.asarray(getattr(field, "local_minima", np.zeros((0, 2))), dtype=float).reshape(-1, 2)
        if len(local):
            (out.local_minima,) = ax.plot(local[:, 0], local[:, 1], linestyle="none", marker="*",
                                          markersize=deco["star_size"] * 0.75, markerfacecolor="none",
                                          markeredgecolor=deco["ink"], markeredgewidth=1.2,
                                          zorder=6, label="local minimum")

    (x0, x1), (y0, y1) = field.domain
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    if equal_aspect is None:
        ratio = (x1 - x0) / (y1 - y0)
        equal_aspect = 1 / 3 <= ratio <= 3
    if equal_aspect:
        ax.set_aspect("equal", adjustable="box")
    if labels:
        ax.set_xlabel(getattr(field, "xlabel", "x"))
        ylabel = getattr(field, "ylabel", "y")
        if len(ylabel) <= 2:   # a short label reads better upright
            ax.set_ylabel(ylabel, rotation=0, ha="right", va="center", labelpad=8)
        else:
            ax.set_ylabel(ylabel)
    # the field fills the box: no spines needed on top and right either way
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)
    if colorbar:
        out.colorbar = add_colorbar(ax, filled, levels, style, log=bool(getattr(field, "log_levels", False)))
    return out


def add_colorbar(ax, mappable, levels, style: str, log: Optional[bool] = None):
    """A slim colour bar, one equal-width block per contour band, ticked at round values.

    For log-spaced levels the ticks are the powers of ten inside the range, else about
    five round values; the ends are ticked too when few round values fall inside.
    """
    from matplotlib.ticker import MaxNLocator

    fig = ax.figure
    # an inset axes beside the map: exactly as tall as the map, whatever its aspect
    cax = ax.inset_axes([1.04, 0.0, 0.045, 1.0])
    cb = fig.colorbar(mappable, cax=cax)
    lo, hi = float(levels[0]), float(levels[-1])
    if log is None:
        gaps = np.diff(levels)
        log = gaps[-1] > 3 * gaps[0]
    if log and hi > 0:
        first = np.floor(np.log10(max(lo, hi * 1e-12))) if lo > 0 else np.floor(np.log10(hi)) - 8
        ticks = [10.0 ** k for k in np.arange(first, np.ceil(np.log10(hi)) + 1) if lo <= 10.0 ** k <= hi]
        if lo <= 0 and (not ticks or ticks[0] > 0):
            ticks = [0.0] + ticks if lo <= 0 <= hi else ticks
    else:
        ticks = [t for t in MaxNLocator(5).tick_values(lo, hi) if lo <= t <= hi]
    if len(ticks) < 3:
        ticks = sorted(set(ticks) | {lo, hi})
    # blocks are equal width, so a tick's place is its fractional band index; drop ticks
    # that would sit closer than an eighth of the bar to the one below
    place = np.interp(ticks, levels, np.arange(len(levels)))
    kept, last = [], -np.inf
    for t, x in zip(ticks, place):
        if x - last >= (len(levels) - 1) / 8:
            kept.append(t)
            last = x
    ticks = kept
    cb.set_ticks(ticks)
    cb.set_ticklabels([_compact(v) for v in ticks])
    cb.minorticks_off()
    cb.outline.set_visible(False)
    cb.ax.tick_params(length=0)
    return cb


def _compact(v: float) -> str:
    """``0``, ``0.5``, ``42``, ``1e3``, ``2.5e-4``: short tick labels."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e3 or a < 1e-2:
        mantissa, exp = f"{v:.1e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        text = f"{mantissa}e{int(exp)}"
    else:
        text = f"{v:.3g}"
    return text.replace("-", "\u2212")   # a typographic minus, as matplotlib's own tick labels


# --- styles for a set of paths -----------------------------------------------------------


@dataclass(frozen=True)
class PathStyle:
    """How one path is drawn: the optimizer's colour, and a linestyle/marker pair unique
    to its configuration."""

    colour: str
    linestyle: object
    marker: str
    label: str

    def kwargs(self) -> dict:
        """Keyword arguments for :func:`draw_path`."""
        return {"colour": self.colour, "linestyle": self.linestyle, "marker": self.marker, "label": self.label}


def _config_key(traj):
    return traj.optimizer, traj.label or repr(sorted((traj.hyperparams or {}).items(), key=str))


def marker_for(name: str, taken=()) -> str:
    """The optimizer's fixed marker: its place in the registry picks it, so Adam has the same
    marker in every figure, as it has the same colour. Names outside the registry take the
    first marker not in ``taken``."""
    from ..optim import registry

    try:
        return MARKERS[registry.names().index(name) % len(MARKERS)]
    except ValueError:
        free = [m for m in MARKERS if m not in set(taken)]
        return free[0] if free else MARKERS[len(taken) % len(MARKERS)]


def path_styles(trajectories: Sequence, style: str = "paper") -> List[PathStyle]:
    """One :class:`PathStyle` per trajectory, in order.

    Colour: the optimizer's fixed colour (:func:`~optviz.views.style.colour_for`).
    Marker: the optimizer's fixed marker (:func:`marker_for`). Linestyle: solid for an
    optimizer's first configuration, then dashed, dotted, ... for further settings of the
    same optimizer (same colour). So every (optimizer, hyperparameters) pair has its own
    (marker, linestyle) and stays identifiable in greyscale. The same configuration run
    from several starts shares one style (and one legend entry).
    """
    markers: dict = {}
    variants: dict = {}
    out = []
    for traj in trajectories:
        name = traj.optimizer
        if name not in markers:
            markers[name] = marker_for(name, taken=set(markers.values()))
            variants[name] = {}
        key = _config_key(traj)
        if key not in variants[name]:
            variants[name][key] = LINESTYLES[len(variants[name]) % len(LINESTYLES)]
        out.append(PathStyle(colour=colour_for(name, style), linestyle=variants[name][key],
                             marker=markers[name], label=traj.label or name))
    return out


# --- one path ---------------------------------------------------------------------------------


def _finite_prefix(xy: np.ndarray) -> np.ndarray:
    """The rows of ``xy`` up to (not including) the first non-finite one."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    bad = ~np.all(np.isfinite(xy), axis=1)
    return xy[: int(np.argmax(bad))] if bad.any() else xy


def exit_point(xy: np.ndarray, box) -> np.ndarray:
    """Where the path ``xy`` (finite rows) last is inside ``box`` = ((x0, x1), (y0, y1)).

    If the path leaves the box, the point where its first outgoing segment crosses the
    box's edge (so a cross drawn there is visible and on the path); else its last point.
    """
    (x0, x1), (y0, y1) = (sorted(box[0]), sorted(box[1]))
    inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    if inside.all() or not inside[0]:
        return xy[-1] if inside.all() else xy[0]
    k = int(np.argmin(inside))          # first point outside
    p, q = xy[k - 1], xy[k]
    d = q - p
    t = 1.0
    for i, (lo, hi) in enumerate(((x0, x1), (y0, y1))):
        if d[i] > 0 and q[i] > hi:
            t = min(t, (hi - p[i]) / d[i])
        elif d[i] < 0 and q[i] < lo:
            t = min(t, (lo - p[i]) / d[i])
    return p + max(0.0, t) * d


def default_markevery(n_steps: int, max_markers: int) -> int:
    """A marker every k steps, k a round number giving at most ``max_markers`` markers."""
    if n_steps <= max_markers:
        return 1
    raw = n_steps / max_markers
    for k in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000):
        if k >= raw:
            return k
    return int(np.ceil(raw))


def diverged_label(label: str, step: int, how: str = "diverged") -> str:
    """``"Adam (η=0.5), diverged at step 7"``: the legend text of a path that left
    (``how="escaped"`` on a surface unbounded below, where leaving is the point)."""
    return f"{label}, {how} at step {step}"


@dataclass
class PathArtists:
    """What :func:`draw_path` drew for one trajectory."""

    line: object                         # Line2D: the path, with a marker every ``markevery`` steps
    halo: object                         # Line2D under it in the background colour (or None)
    start: object                        # Line2D: the start marker
    head: object                         # Line2D: the current point (animations) or None
    cross: object = None                 # Line2D: the cross where a diverged path left, or None
    xy: np.ndarray = dc_field(default_factory=lambda: np.zeros((0, 2)))   # finite positions drawn
    markevery: int = 1
    end: Optional[np.ndarray] = None     # where the cross sits (diverged) or None

    def artists(self) -> list:
        return [a for a in (self.halo, self.line, self.start, self.head, self.cross) if a is not None]

    def show_upto(self, k: int) -> list:
        """Show the path up to step ``k`` (for animation frames; ``set_data`` only).

        The cross appears once ``k`` reaches the end of a diverged path. Returns the
        artists to hand back to ``FuncAnimation`` (blitting).
        """
        k = int(np.clip(k, 0, len(self.xy) - 1))
        seg = self.xy[: k + 1]
        self.line.set_data(seg[:, 0], seg[:, 1])
        if self.halo is not None:
            self.halo.set_data(seg[:, 0], seg[:, 1])
        if self.head is not None:
            self.head.set_data([seg[-1, 0]], [seg[-1, 1]])
        if self.cross is not None:
            self.cross.set_visible(k >= len(self.xy) - 1)
        return self.artists()


def draw_path(ax, traj, colour: Optional[str] = None, label: Optional[str] = None, style: str = "paper", *,
              linestyle="-", marker: str = "o", markevery: Optional[int] = None, head: bool = False,
              halo: bool = True, zorder: float = 4, box=None) -> PathArtists:
    """Draw one trajectory on ``ax``.

    A line (with a small ``marker`` every ``markevery`` steps: default a round number giving
    a dozen or two markers), a large hollow start marker, and for a diverged trajectory
    (``traj.diverged_at`` set) a cross at the last point it reached inside the axes (the
    point where it crossed the edge of ``box``, default the axes limits). Lines get a thin
    outline in the background colour, so they read on any contour colour and where paths cross.

    ``colour`` defaults to the optimizer's colour; ``label`` to ``traj.label``, with
    ", diverged at step k" appended for a diverged trajectory (only the line carries the
    label, so the legend has one entry per path). ``head=True`` also draws a dot at the
    path's last point (animations move it with :meth:`PathArtists.show_upto`).
    """
    deco = decorations(style)
    colour = colour or colour_for(traj.optimizer, style)
    label = traj.label if label is None else label
    if label and traj.diverged_at is not None and traj.exit not in label:
        label = diverged_label(label, traj.diverged_at, traj.exit)
    xy = _finite_prefix(traj.xy)
    if len(xy) == 0:
        xy = np.full((1, 2), np.nan)
    n = len(xy) - 1
    every = markevery or default_markevery(n, deco["max_markers"])
    lw = deco["linewidth"]
    halo_line = None
    if halo:
        # a separate line (not a path effect) so the small markers are not haloed into blobs
        (halo_line,) = ax.plot(xy[:, 0], xy[:, 1], color=deco["halo"], linewidth=lw + deco["halo_extra"],
                               alpha=0.85, zorder=zorder - 0.01, solid_capstyle="round", label="_halo")
    (line,) = ax.plot(xy[:, 0], xy[:, 1], color=colour, linestyle=linestyle, linewidth=lw,
                      marker=marker, markevery=every, markersize=deco["path_marker_size"],
                      markeredgecolor=deco["halo"], markeredgewidth=0.6 if lw < 2 else 1.0,
                      label=label or None, zorder=zorder, solid_capstyle="round", dash_capstyle="round")
    (start,) = ax.plot([xy[0, 0]], [xy[0, 1]], linestyle="none", marker="o", markersize=deco["start_size"],
                       markerfacecolor="none", markeredgecolor=deco["ink"], markeredgewidth=lw * 0.8,
                       zorder=zorder + 1.5, label="_start")
    head_artist = None
    if head:
        (head_artist,) = ax.plot([xy[-1, 0]], [xy[-1, 1]], linestyle="none", marker="o",
                                 markersize=deco["start_size"] * 0.7, markerfacecolor=colour,
                                 markeredgecolor=deco["halo"], markeredgewidth=1.2, zorder=zorder + 2,
                                 label="_head")
    cross = end = None
    if traj.diverged_at is not None:
        if box is None:
            box = (ax.get_xlim(), ax.get_ylim())
        end = exit_point(xy, box)
        (cross,) = ax.plot([end[0]], [end[1]], linestyle="none", marker="X", markersize=deco["cross_size"],
                           markerfacecolor=colour, markeredgecolor=deco["ink"],
                           markeredgewidth=1.0 if lw < 2 else 1.6, zorder=zorder + 2, label="_diverged",
                           clip_on=False)
    return PathArtists(line=line, halo=halo_line, start=start, head=head_artist, cross=cross, xy=xy, markevery=every, end=end)
