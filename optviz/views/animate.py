"""Animated optimizer races: every optimizer moves in lockstep across a field.

>>> from optviz.engine import race
>>> from optviz.surfaces import get_surface
>>> surface = get_surface("rosenbrock")
>>> paths = race(surface, ["sgd:lr=2e-3", "adam:lr=0.1"], steps=300)
>>> anim = animate(surface, paths, frames=150, schedule="log", arrows=("grad",))
>>> anim.save("race.gif")            # or .mp4, .html; in Jupyter, ``anim`` displays inline

Each frame shows the paths up to one step (the frame schedule, stated on the
frame, says which: see :mod:`optviz.views.frames`), a loss panel (log y) that
grows in sync, optional arrows at each current point, and a cross where a
diverged path left.

Why it is fast: all data are computed first; the figure is drawn once and its
static part (contours, minima, legend, axes) kept as a pixel buffer
(``copy_from_bbox``). A frame restores that buffer, moves the artists with
``set_data`` and draws only them (``draw_artist``), then hands the canvas's
RGBA buffer straight to the writer: no per-frame ``savefig``, no re-rendered
contours. Writers stream: the GIF writer quantizes each frame to one shared
palette and stores only the rectangle that changed (unchanged pixels
transparent), so memory stays at one frame and lecture GIFs stay small; the
MP4 writer pipes raw frames into the ffmpeg that ``imageio-ffmpeg`` ships.
Every file is written atomically: an interrupted render leaves no file and
keeps an older one intact.
"""
from __future__ import annotations

import base64
import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import numpy as np

from ..errors import InvalidValue, OptvizError, UnknownName
from ..io import atomic_path, check_writable
from ..memory import check_memory
from ..progress import progress_bar
from .field import decorations, draw_field, draw_path, path_styles
from .frames import frame_steps, schedule_caption
from .style import STYLES, figure_size, style_context
from .writers import GifWriter, HtmlWriter, Mp4Writer

__all__ = ["RaceAnimation", "animate", "render", "check_animation", "ARROWS", "FORMATS"]

#: Arrow kinds: the vector drawn at each current point.
ARROWS = ("grad", "momentum", "step")
#: Output formats by file extension.
FORMATS = {".gif": "GIF (Pillow, shared palette)", ".mp4": "MP4 (H.264 via ffmpeg)",
           ".html": "HTML page with a frame player", ".htm": "HTML page with a frame player"}

#: Playback rates a file can hold: GIF delays are whole centiseconds (at most 50 fps, browsers
#: slow faster ones down) in 16 bits; players choke below a frame a minute or above 120 fps.
FPS_RANGE = {".gif": (0.02, 50.0), ".mp4": (0.02, 120.0), ".html": (0.02, 120.0), ".htm": (0.02, 120.0)}
#: Bytes an HTML player holds per frame while it is written: ~10 KB of PNG per frame (measured:
#: slides race, 300 frames, with arrows), kept as base64 strings, joined, then wrapped in the page.
HTML_BYTES_PER_FRAME = 40_000

# Momentum-like buffers the engine records, and the sign that turns each into a
# direction of motion (torch's buffers accumulate gradients: the step is -lr * buf).
_MOMENTUM_KEYS = (("momentum_buffer", -1.0), ("exp_avg", -1.0), ("velocity", 1.0))
_ARROW_LABELS = {"grad": r"$-\nabla f$", "momentum": "momentum", "step": "next step"}
_ARROW_WIDTH = {"grad": 0.011, "momentum": 0.017, "step": 0.008}   # shaft, fraction of the axes width
_ARROW_LENGTH = 0.16        # longest arrow, as a fraction of the domain
_MOVING_Z = 3.5             # artists at or above this zorder in the data axes are redrawn per frame


# --- data computed once -------------------------------------------------------------------


@dataclass
class _Track:
    """One trajectory's drawable data; ``idx[k]`` is the row shown in frame ``k``."""

    traj: object
    xy: np.ndarray          # (m, 2) finite positions
    y: np.ndarray           # (m,) what the loss panel plots
    t: np.ndarray           # (m,) the step of each row: 0, 1, ..., m - 1
    idx: np.ndarray         # (n_frames,) row of xy shown per frame
    gone: np.ndarray        # (n_frames,) bool: diverged by this frame


def _check_format(path: Path, fps: float) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise OptvizError(f"cannot write {path.name!r}: unsupported extension {path.suffix or '(none)'!r}; "
                          f"valid: {', '.join(FORMATS)}")
    lo, hi = FPS_RANGE[suffix]
    if not (np.isfinite(fps) and lo <= fps <= hi):
        extra = " (browsers slow faster GIFs down): lower it or save an .mp4" if suffix == ".gif" and fps > hi else ""
        raise InvalidValue(f"{suffix[1:].upper()} plays {lo:g} to {hi:g} frames per second; got fps={fps:g}{extra}")
    return suffix


def _check_html_memory(n_frames: int, budget: Optional[int] = None) -> None:
    check_memory(n_frames * HTML_BYTES_PER_FRAME, f"an HTML player of {n_frames:,} frames",
                 "it keeps every frame in memory and in the page: use fewer --frames, or save an .mp4 or .gif",
                 budget)


def check_animation(path, frames: int, fps: float, budget: Optional[int] = None) -> Path:
    """Check an animation's output before any work: the extension, a frame rate the format
    can play, a path that can be written, and (HTML keeps every frame) the memory for
    ``frames`` frames. Returns the path."""
    path = Path(path)
    suffix = _check_format(path, float(fps))
    if suffix in (".html", ".htm"):
        _check_html_memory(int(frames), budget)
    return check_writable(path)


def _finite_rows(traj) -> int:
    xy = np.asarray(traj.xy, dtype=float).reshape(-1, 2)
    bad = ~np.all(np.isfinite(xy), axis=1)
    return int(np.argmax(bad)) if bad.any() else len(xy)


def _run_length(traj) -> int:
    """The last step a trajectory covers (its divergence step if it left)."""
    n = _finite_rows(traj) - 1
    return max(n, int(traj.diverged_at)) if traj.diverged_at is not None else n


def _loss_transform(field, trajectories):
    """``(offset, scale, ylabel)``: the loss panel plots ``loss - offset`` on ``scale``."""
    analytic = hasattr(field, "grad")
    fstar = getattr(field, "minimum_value", None)
    if fstar is not None:
        return float(fstar), "log", "f − f*"
    name = "f" if analytic else "loss"
    finite = np.concatenate([np.asarray(t.loss, dtype=float).ravel() for t in trajectories])
    finite = finite[np.isfinite(finite)]
    if finite.size and finite.min() <= 0:
        return 0.0, "symlog", name
    return 0.0, "log", name


def _compress(vectors: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Arrow vectors (..., 2) with exact directions and lengths squashed to at most
    ``_ARROW_LENGTH`` of the domain: ``r / (r + median r)`` keeps both the steep walls
    and the flat valley readable (a longer arrow is always a larger vector)."""
    rel = vectors / spans                                   # domain units
    r = np.linalg.norm(rel, axis=-1, keepdims=True)
    positive = r[np.isfinite(r) & (r > 0)]
    if positive.size == 0:
        return np.zeros_like(vectors)
    ref = float(np.median(positive))
    factor = np.where(r > 0, _ARROW_LENGTH / (r + ref), 0.0)
    out = rel * factor * spans
    return np.where(np.isfinite(out), out, 0.0)


def _arrow_vectors(kind: str, field, track: _Track) -> np.ndarray:
    """(m, 2) raw vectors of ``kind`` along a track (zeros where there is none)."""
    traj, m = track.traj, len(track.xy)
    if kind == "grad":
        grad = traj.grad
        if grad is None:
            if not hasattr(field, "grad"):
                raise InvalidValue(f"arrows=('grad',) needs gradients: trajectory {traj.label!r} has none "
                                   "recorded and the field has no gradient")
            grad = field.grad(track.xy)
        return -np.asarray(grad, dtype=float).reshape(-1, 2)[:m]
    if kind == "momentum":
        for key, sign in _MOMENTUM_KEYS:
            if key in (traj.state or {}):
                return sign * np.asarray(traj.state[key], dtype=float).reshape(-1, 2)[:m]
        return np.zeros((m, 2))                     # SGD, AdaGrad: no momentum to show
    steps = np.zeros((m, 2))
    if traj.step is not None:                       # step[i] moves xy[i] to xy[i + 1]
        s = np.asarray(traj.step, dtype=float).reshape(-1, 2)[: m]
        steps[: len(s)] = s
    return steps


# --- the figure: built once, then only set_data --------------------------------------------


class _Scene:
    """The race figure at one resolution. ``set_frame(k)`` only moves artists, so it
    serves both the blitted renderer (:meth:`blit`) and a full redraw (:meth:`full`)."""

    def __init__(self, anim: "RaceAnimation", dpi: float):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        self.anim = anim
        self.moving: list = []                 # (axes, artist) pairs redrawn per frame, in draw order
        style, field = anim.style, anim.field
        deco = decorations(style)
        fig = Figure(figsize=figure_size(style), dpi=dpi, layout="constrained")
        FigureCanvasAgg(fig)
        self.fig = fig
        if anim.loss_panel:
            gs = fig.add_gridspec(2, 2, width_ratios=(1.05, 1), height_ratios=(1.45, 1))
            ax, lax, iax = fig.add_subplot(gs[:, 0]), fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[1, 1])
        else:
            gs = fig.add_gridspec(1, 2, width_ratios=(1.6, 1))
            ax, lax, iax = fig.add_subplot(gs[0, 0]), None, fig.add_subplot(gs[0, 1])
        iax.set_axis_off()
        self.ax, self.lax, self.iax = ax, lax, iax

        draw_field(ax, field, style)
        styles = path_styles([t.traj for t in anim.tracks], style)
        self.paths = [draw_path(ax, t.traj, style=style, head=True, **ps.kwargs())
                      for t, ps in zip(anim.tracks, styles)]

        legend_handles, labels = [], []
        for p in self.paths:
            if p.line.get_label() not in labels:
                legend_handles.append(p.line)
                labels.append(p.line.get_label())

        self.quivers = []
        for kind, (pos, vec) in anim.arrows.items():
            solid = kind != "momentum"
            q = ax.quiver(pos[0, :, 0], pos[0, :, 1], vec[0, :, 0], vec[0, :, 1],
                          color=[ps.colour for ps in styles], angles="xy", scale_units="xy", scale=1,
                          width=_ARROW_WIDTH[kind], headwidth=2.6, headlength=3.0, headaxislength=2.7,
                          minlength=0, edgecolor=deco["ink"], linewidth=1.0, alpha=1.0 if solid else 0.6,
                          zorder=5.2 if solid else 5.1)
            self.quivers.append(q)
            legend_handles.append(Line2D([], [], linestyle="none", marker=r"$\longrightarrow$",
                                         markersize=2.2 * STYLES[style]["legend.fontsize"],
                                         color=deco["ink"], alpha=1.0 if solid else 0.6))
            labels.append(_ARROW_LABELS[kind])

        legend_handles.append(Line2D([], [], linestyle="none", marker="o", markersize=deco["start_size"] * 0.8,
                                     markerfacecolor="none", markeredgecolor=deco["ink"], markeredgewidth=1.5))
        labels.append("start")
        if len(getattr(field, "minima", ())):
            legend_handles.append(Line2D([], [], linestyle="none", marker="*", markersize=deco["star_size"] * 0.8,
                                         markerfacecolor=deco["star_face"], markeredgecolor=deco["star_edge"]))
            labels.append("global minimum")
        legend_kw = dict(handles=legend_handles, labels=labels, loc="upper center", borderaxespad=0.0,
                         handlelength=1.8, columnspacing=1.0, frameon=False)
        iax.legend(**legend_kw).set_in_layout(False)

        self.loss_lines = []
        if lax is not None:
            self._build_loss_panel(lax, styles, deco)

        big = STYLES[style]["font.size"] * 1.25
        self.counter = iax.text(0.5, 0.16, "", transform=iax.transAxes, ha="center", va="bottom",
                                fontsize=big, fontweight="bold", zorder=10)
        caption = anim.caption + ("; arrow lengths compressed" if anim.arrows else "")
        self.caption_text = iax.text(0.5, 0.02, f"({caption})", transform=iax.transAxes, ha="center",
                                     va="bottom", fontsize=STYLES[style]["font.size"] * 0.85, alpha=0.8)
        for text in (self.counter, self.caption_text):
            text.set_in_layout(False)      # sized by _fit, inside the info panel
        title = fig.suptitle(anim.title)

        # one full draw fixes the layout (then frozen: frames must not move the axes)
        self.set_frame(len(anim.steps) - 1)      # the widest counter text
        canvas = fig.canvas
        canvas.draw()
        self._fit(title, legend_kw)
        fig.set_layout_engine("none")

        # moving artists: everything at or above _MOVING_Z in the data axes (so the draw
        # order matches a full redraw), the loss panel's lines, and the counter
        moving = []
        for a_ax in (ax, lax, iax):
            if a_ax is None:
                continue
            zmin = _MOVING_Z if a_ax is not iax else 9.0
            kids = [a for a in a_ax.get_children() if a is not a_ax.patch and a.get_zorder() >= zmin]
            if a_ax is lax:
                kids = [a for a in a_ax.get_children() if a in self._loss_artists]
            moving += [(a_ax, a) for a in sorted(kids, key=lambda a: a.get_zorder())]
        self.moving = moving
        for _, a in moving:
            a.set_animated(True)
        canvas.draw()
        self.background = canvas.copy_from_bbox(fig.bbox)

    def _fit(self, title, legend_kw) -> None:
        """Shrink a long title to the figure's width, and the legend to the room above the
        step counter (long labels, many paths), so nothing is cut off or overlaps."""
        fig, iax = self.fig, self.iax
        renderer = fig.canvas.get_renderer()
        changed = False
        room = iax.get_window_extent(renderer)
        # centred on the info panel, and inside the figure
        avail_w = 2 * min(room.x0 + room.width / 2, fig.bbox.width - (room.x0 + room.width / 2)) - 24.0
        for text, limit in ((title, 0.97 * fig.bbox.width), (self.caption_text, avail_w)):
            width = text.get_window_extent(renderer).width
            if width > limit:
                text.set_fontsize(text.get_fontsize() * limit / width)
                changed = True
        # the legend: one column or two, whichever needs less shrinking to fit above the counter
        avail_h = room.y1 - self.counter.get_window_extent(renderer).y1 - 8.0
        best = None
        for ncol in (1, 2):
            box = iax.legend(**legend_kw, ncol=ncol).get_window_extent(renderer)
            scale = min(1.0, avail_w / box.width, avail_h / box.height)
            if best is None or scale > best[0] + 1e-6:
                best = (scale, ncol)
        scale, ncol = best
        size = STYLES[self.anim.style]["legend.fontsize"] * (1.0 if scale >= 1.0 else scale * 0.97)
        iax.legend(**legend_kw, ncol=ncol, fontsize=size, markerscale=min(1.0, max(scale, 0.5))).set_in_layout(False)
        changed = True
        if changed:
            fig.canvas.draw()

    def _build_loss_panel(self, lax, styles, deco):
        anim = self.anim
        lw = STYLES[anim.style]["lines.linewidth"] * 0.75
        lax.set_yscale(anim.yscale, **({"linthresh": anim.linthresh} if anim.yscale == "symlog" else {}))
        last = float(anim.step_values[-1])
        lax.set_xlim(-0.02 * last, 1.02 * max(last, 1))
        lax.set_ylim(*anim.ylim)
        lax.set_xlabel("step")
        lax.set_ylabel(anim.ylabel)
        lax.grid(True, which="major", alpha=0.25)
        artists = []
        self.cursor = lax.axvline(0, color=deco["ink"], linewidth=1.2, alpha=0.35, zorder=3.6)
        artists.append(self.cursor)
        for t, ps in zip(anim.tracks, styles):
            (line,) = lax.plot([], [], color=ps.colour, linestyle=ps.linestyle, linewidth=lw, zorder=4,
                               solid_capstyle="round", dash_capstyle="round")
            (head,) = lax.plot([], [], linestyle="none", marker="o", markersize=deco["start_size"] * 0.5,
                               markerfacecolor=ps.colour, markeredgecolor=deco["halo"], zorder=6)
            (cross,) = lax.plot([], [], linestyle="none", marker="X", markersize=deco["cross_size"] * 0.7,
                                markerfacecolor=ps.colour, markeredgecolor=deco["ink"], zorder=6)
            self.loss_lines.append((line, head, cross))
            artists += [line, head, cross]
        self._loss_artists = artists

    def set_frame(self, k: int) -> list:
        """Show frame ``k`` (``set_data`` only); returns the artists that moved."""
        anim = self.anim
        s = int(anim.steps[k])
        for j, (track, p) in enumerate(zip(anim.tracks, self.paths)):
            i, gone = int(track.idx[k]), bool(track.gone[k])
            p.show_upto(i)
            p.head.set_visible(not gone)
            if p.cross is not None:
                p.cross.set_visible(gone)
            if self.loss_lines:
                line, head, cross = self.loss_lines[j]
                line.set_data(track.t[: i + 1], track.y[: i + 1])
                end = ([track.t[i]], [track.y[i]])
                head.set_data(*end)
                cross.set_data(*end)
                head.set_visible(not gone)
                cross.set_visible(gone)
        for q, (pos, vec) in zip(self.quivers, anim.arrows.values()):
            q.set_offsets(pos[k])
            q.set_UVC(vec[k, :, 0], vec[k, :, 1])
        shown = int(anim.step_values[s])
        if self.loss_lines:
            self.cursor.set_xdata([shown, shown])
        self.counter.set_text(f"step {shown:,} / {int(anim.step_values[-1]):,}")
        return [a for _, a in self.moving]

    def blit(self, k: int) -> np.ndarray:
        """Frame ``k`` as an (H, W, 4) uint8 view of the canvas (valid until the next frame)."""
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        self.set_frame(k)
        for a_ax, a in self.moving:
            a_ax.draw_artist(a)
        return np.asarray(canvas.buffer_rgba())

    def full(self, k: int) -> np.ndarray:
        """Frame ``k`` by a full redraw of the figure (a copy): the reference for :meth:`blit`."""
        for _, a in self.moving:
            a.set_animated(False)
        try:
            self.set_frame(k)
            self.fig.canvas.draw()
            return np.asarray(self.fig.canvas.buffer_rgba()).copy()
        finally:
            for _, a in self.moving:
                a.set_animated(True)

    @property
    def size(self):
        w, h = self.fig.canvas.get_width_height()
        return int(w), int(h)


# --- writers: a frame in, bytes out, nothing kept -----------------------------------------


class RaceAnimation:
    """An optimizer race, ready to render: all data computed, nothing drawn yet.

    ``save(path)`` writes a GIF, MP4 or HTML file (chosen by extension); in Jupyter the
    object displays inline (``_repr_html_``: an HTML5 video, or the frame player when
    ffmpeg is missing). Build it with :func:`animate`.

    Attributes: ``n_frames``; ``steps`` (the step of each frame); ``n_steps``;
    ``caption`` (the frame schedule in words); ``fps``; ``style``.
    """

    def __init__(self, field, trajectories, style: str = "slides", frames: int = 300, schedule: str = "linear",
                 fps: float = 30, arrows: Sequence[str] = (), loss_panel: bool = True, title: Optional[str] = None,
                 dpi: Optional[float] = None, step_values: Optional[Sequence[int]] = None):
        if style not in STYLES:
            raise UnknownName("style", style, STYLES)
        trajectories = list(trajectories)
        if not trajectories:
            raise InvalidValue("animate needs at least one trajectory")
        if isinstance(arrows, str):
            arrows = (arrows,)
        for kind in arrows:
            if kind not in ARROWS:
                raise UnknownName("arrow kind", kind, ARROWS)
        if not (np.isfinite(fps) and fps > 0):
            raise InvalidValue(f"fps must be a positive number, got {fps!r}")
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames <= 0:
            raise InvalidValue(f"frames must be a positive integer, got {frames!r}")
        self.field, self.style, self.fps = field, style, float(fps)
        self.loss_panel, self.schedule = bool(loss_panel), schedule
        self.dpi = float(dpi or STYLES[style]["figure.dpi"])

        self.n_steps = max(_run_length(t) for t in trajectories)
        # What each path index means as a step: the index itself on a surface; the
        # training step of each weight snapshot when a path is a thinned MNIST run.
        self.step_values = np.arange(self.n_steps + 1) if step_values is None else np.asarray(step_values)
        if self.step_values.shape != (self.n_steps + 1,) or np.any(np.diff(self.step_values) <= 0):
            raise InvalidValue(f"step_values must be {self.n_steps + 1} increasing numbers, one per path point")
        self.steps = frame_steps(self.n_steps, frames, schedule)
        self.caption = schedule_caption(self.steps, schedule)
        if title is None:
            name = str(getattr(field, "name", "")).replace("_", " ")
            formula = str(getattr(field, "title", "") or "")
            title = f"{name.capitalize()}: {formula}" if formula and formula != name else name.capitalize()
        self.title = title

        offset, self.yscale, self.ylabel = _loss_transform(field, trajectories)
        self.tracks = [self._track(t, offset) for t in trajectories]
        self.ylim, self.linthresh = self._loss_limits()
        self.arrows = {kind: self._arrow_frames(kind) for kind in dict.fromkeys(arrows)}

    @property
    def n_frames(self) -> int:
        return len(self.steps)

    def _track(self, traj, offset: float) -> _Track:
        m = max(_finite_rows(traj), 1)
        xy = np.asarray(traj.xy, dtype=float).reshape(-1, 2)[:m]
        if len(xy) == 0:
            xy = np.full((1, 2), np.nan)
        y = np.asarray(traj.loss, dtype=float).ravel()[:m] - offset
        if len(y) < m:
            y = np.concatenate([y, np.full(m - len(y), np.nan)])
        idx = np.minimum(self.steps, m - 1)
        gone = (self.steps >= traj.diverged_at) if traj.diverged_at is not None else np.zeros(len(self.steps), bool)
        return _Track(traj=traj, xy=xy, y=y, t=self.step_values[:len(xy)], idx=idx, gone=gone)

    def _loss_limits(self):
        ys = np.concatenate([t.y for t in self.tracks])
        ys = ys[np.isfinite(ys)]
        if ys.size == 0:
            return (1e-3, 1.0), 1.0
        if self.yscale == "symlog":
            big = float(np.max(np.abs(ys))) or 1.0
            lo, hi = float(ys.min()), float(ys.max())
            pad = 0.05 * (hi - lo or big)
            # linear within the size of the starting values, logarithmic beyond
            start = max((abs(float(t.y[0])) for t in self.tracks if np.isfinite(t.y[0])), default=big)
            return (lo - pad, hi + pad), 10.0 ** np.floor(np.log10(max(start, big * 1e-9)))
        top = float(ys.max())
        if not top > 0:
            top = 1.0
        floor = max(float(ys[ys > 0].min()) if np.any(ys > 0) else top * 1e-12, top * 1e-16)
        for t in self.tracks:                       # exact zeros (a minimum reached) sit on the floor
            t.y = np.where(np.isfinite(t.y), np.maximum(t.y, floor), t.y)
        return (floor / 3.0, top * 3.0), 1.0

    def _arrow_frames(self, kind: str):
        """(positions, vectors), each (n_frames, n_tracks, 2), lengths compressed."""
        (x0, x1), (y0, y1) = self.field.domain
        spans = np.array([x1 - x0, y1 - y0], dtype=float)
        pos = np.stack([t.xy[t.idx] for t in self.tracks], axis=1)
        raw = np.stack([_arrow_vectors(kind, self.field, t)[t.idx] for t in self.tracks], axis=1)
        gone = np.stack([t.gone for t in self.tracks], axis=1)
        raw[gone] = 0.0
        return np.where(np.isfinite(pos), pos, 0.0), _compress(raw, spans)

    # -- frames --------------------------------------------------------------------------

    @contextlib.contextmanager
    def scene(self, dpi: Optional[float] = None) -> Iterator[_Scene]:
        with style_context(self.style):
            scene = _Scene(self, float(dpi or self.dpi))
            try:
                yield scene
            finally:
                scene.fig.clear()

    def frame(self, k: int, dpi: Optional[float] = None) -> np.ndarray:
        """Frame ``k`` (negative counts from the end) as an (H, W, 4) uint8 RGBA array."""
        k = range(self.n_frames)[k]
        with self.scene(dpi) as scene:
            return scene.blit(k).copy()

    def iter_frames(self, dpi: Optional[float] = None, progress: bool = False, desc: str = "rendering"):
        """Yield every frame as an (H, W, 4) uint8 view of the canvas, valid until the next one."""
        with self.scene(dpi) as scene, progress_bar(self.n_frames, desc, "frame", enabled=progress) as bar:
            for k in range(self.n_frames):
                yield scene.blit(k)
                bar.update()

    def _samples(self, scene: _Scene) -> List[np.ndarray]:
        # first, middle and last frames carry every colour the animation uses
        picks = sorted({0, self.n_frames // 2, self.n_frames - 1})
        return [scene.blit(k).copy() for k in picks]

    def save(self, path, fps: Optional[float] = None, dpi: Optional[float] = None, progress: bool = True) -> Path:
        """Write the animation to ``path``: ``.gif``, ``.mp4`` or ``.html`` (atomic).

        ``fps`` defaults to the animation's; ``dpi`` to the style's (slides: 1333 x 750 px).
        Returns the path.
        """
        path = Path(path)
        fps = self.fps if fps is None else float(fps)
        suffix = _check_format(path, fps)
        if suffix in (".html", ".htm"):
            _check_html_memory(self.n_frames)
        with atomic_path(path) as tmp, self.scene(dpi) as scene:
            if suffix == ".gif":
                writer = GifWriter(tmp, fps, self._samples(scene))
            elif suffix == ".mp4":
                writer = Mp4Writer(tmp, fps, scene.size)
            else:
                writer = HtmlWriter(tmp, fps, self._samples(scene), title=_plain(self.title))
            self._pump(scene, writer, progress, f"{path.name}")
        return path

    def _pump(self, scene: _Scene, writer, progress: bool, desc: str) -> None:
        try:
            with progress_bar(self.n_frames, desc, "frame", enabled=progress) as bar:
                for k in range(self.n_frames):
                    writer.write(scene.blit(k))
                    bar.update()
        except BaseException:
            writer.abort()
            raise
        writer.close()

    # -- notebooks -----------------------------------------------------------------------

    def to_jshtml(self, fps: Optional[float] = None, dpi: Optional[float] = None, progress: bool = False,
                  autoplay: bool = False, key_every: int = 50) -> str:
        """An HTML snippet with every frame embedded and a player (slider, play, step);
        a whole frame every ``key_every`` frames, only what changed in between."""
        _check_html_memory(self.n_frames)
        with self.scene(dpi) as scene:
            writer = HtmlWriter(None, self.fps if fps is None else fps, self._samples(scene),
                                 title=_plain(self.title), autoplay=autoplay, key_every=key_every)
            self._pump(scene, writer, progress, "jshtml")
        return writer.snippet()

    def to_html5_video(self, fps: Optional[float] = None, dpi: Optional[float] = None,
                       progress: bool = False) -> str:
        """A ``<video>`` tag with the MP4 embedded (base64): small and smooth in notebooks."""
        with tempfile.TemporaryDirectory() as tmp:
            out = self.save(Path(tmp) / "race.mp4", fps=fps, dpi=dpi, progress=progress)
            data = base64.b64encode(out.read_bytes()).decode("ascii")
        return ('<video controls autoplay loop muted playsinline style="max-width:100%">'
                f'<source type="video/mp4" src="data:video/mp4;base64,{data}"></video>')

    def _repr_html_(self) -> str:
        try:
            return self.to_html5_video()
        except OptvizError:                 # no ffmpeg here: the frame player needs none
            return self.to_jshtml()

    def __repr__(self) -> str:
        return (f"<RaceAnimation {len(self.tracks)} paths, {self.n_frames} frames of {self.n_steps} steps "
                f"({self.caption}), {self.fps:g} fps, style {self.style!r}>")


def _plain(text: str) -> str:
    return text.replace("$", "")


def animate(field, trajectories, style: str = "slides", frames: int = 300, schedule: str = "linear",
            fps: float = 30, arrows: Sequence[str] = (), loss_panel: bool = True, title: Optional[str] = None,
            dpi: Optional[float] = None, step_values: Optional[Sequence[int]] = None) -> RaceAnimation:
    """A race of ``trajectories`` across ``field``, as a :class:`RaceAnimation`.

    Parameters
    ----------
    field : ScalarField2D
        An analytic surface or a :class:`~optviz.surfaces.GridField` (drawn with
        :func:`~optviz.views.field.draw_field`, as the still figures are).
    trajectories : sequence of Trajectory
        All move in lockstep: frame ``k`` shows every path at the same step.
    style : "paper", "slides" or "dark"
    frames : int
        Frames requested (at most one per step; see :func:`~optviz.views.frames.frame_steps`).
    schedule : "linear", "log" or "all"
        How frames map to steps; stated on every frame.
    fps : float
        Playback rate.
    arrows : subset of ("grad", "momentum", "step")
        Arrows at each current point: the negative gradient, the momentum buffer
        (as a direction of motion: ``-momentum_buffer``, ``-exp_avg``), the next update.
        Directions are exact; lengths are compressed to stay readable.
    loss_panel : bool
        A log-y loss panel beside the contours, growing in sync (``f - f*`` when the
        minimum is known; symlog when values go negative).
    title : str, optional
        Figure title; default the field's name and formula.
    dpi : float, optional
        Pixels per inch of the frames; default the style's (slides: 1333 x 750 px).
    step_values : sequence of int, optional
        The step each path point stands for, when points are not every step (MNIST
        weight snapshots every k training steps): the counter and the loss panel's
        x axis then count training steps.

    Example
    -------
    >>> anim = animate(surface, paths, schedule="log", arrows=("grad", "momentum"))
    >>> anim.save("race.mp4")
    """
    return RaceAnimation(field, trajectories, style=style, frames=frames, schedule=schedule, fps=fps,
                         arrows=arrows, loss_panel=loss_panel, title=title, dpi=dpi, step_values=step_values)


def render(field, trajectories, path, *, progress: bool = True, **kwargs) -> Path:
    """``animate(field, trajectories, **kwargs).save(path)``; returns the path."""
    return animate(field, trajectories, **kwargs).save(path, progress=progress)
