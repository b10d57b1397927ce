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
import html as html_lib
import io
import struct
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import numpy as np

from ..errors import InvalidValue, OptvizError, UnknownName
from ..io import atomic_path
from .field import decorations, draw_field, draw_path, path_styles
from .frames import frame_steps, schedule_caption
from .style import STYLES, figure_size, style_context

__all__ = ["RaceAnimation", "animate", "render", "ARROWS", "FORMATS"]

#: Arrow kinds: the vector drawn at each current point.
ARROWS = ("grad", "momentum", "step")
#: Output formats by file extension.
FORMATS = {".gif": "GIF (Pillow, shared palette)", ".mp4": "MP4 (H.264 via ffmpeg)",
           ".html": "HTML page with a frame player", ".htm": "HTML page with a frame player"}

# Momentum-like buffers the engine records, and the sign that turns each into a
# direction of motion (torch's buffers accumulate gradients: the step is -lr * buf).
_MOMENTUM_KEYS = (("momentum_buffer", -1.0), ("exp_avg", -1.0), ("velocity", 1.0))
_ARROW_LABELS = {"grad": r"$-\nabla f$", "momentum": "momentum", "step": "next step"}
_ARROW_WIDTH = {"grad": 0.011, "momentum": 0.017, "step": 0.008}   # shaft, fraction of the axes width
_ARROW_LENGTH = 0.16        # longest arrow, as a fraction of the domain
_GIF_MAX_FPS = 50           # GIF delays are centiseconds; browsers slow down delays < 2 cs
_TRANSPARENT = 255          # the GIF palette slot kept free for "unchanged pixel"
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


class _Quantizer:
    """Maps RGBA frames to one shared palette of at most 255 colours (slot 255 stays free).

    The palette is built from sample frames: their most frequent exact colours (contour
    bands, path colours, text) are kept exactly, and a median cut of all their pixels
    fills the rest with the blends that antialiasing makes. No dithering: flat contour
    bands stay flat, so the GIF's LZW compresses them well.
    """

    def __init__(self, samples: Sequence[np.ndarray], exact: int = 96):
        from PIL import Image

        stack = np.concatenate([np.ascontiguousarray(s[..., :3]) for s in samples], axis=0)
        img = Image.fromarray(stack, "RGB")
        counts = img.getcolors(maxcolors=stack.shape[0] * stack.shape[1]) or []
        counts.sort(key=lambda c: -c[0])
        colours = [c for _, c in counts[:exact]]
        rest = 255 - len(colours)
        if rest > 0 and len(counts) > len(colours):
            cut = img.quantize(colors=rest, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            pal = cut.getpalette()[: 3 * rest]
            seen = set(colours)
            for i in range(0, len(pal), 3):
                c = tuple(pal[i:i + 3])
                if c not in seen:
                    seen.add(c)
                    colours.append(c)
        colours = colours[:255] or [(0, 0, 0)]
        self.n_colours = len(colours)
        flat = [v for c in colours for v in c]
        self.palette_image = Image.new("P", (1, 1))
        self.palette_image.putpalette(flat)           # < 256 entries: slot 255 is never chosen
        self.palette_bytes = bytes(flat + [0] * (768 - len(flat)))

    def indices(self, rgba: np.ndarray) -> np.ndarray:
        """(H, W) uint8 palette indices of an (H, W, 4) frame."""
        from PIL import Image

        h, w = rgba.shape[:2]
        # unpack RGBA straight to RGB ("RGBX" raw mode): one pass, no extra conversion
        img = Image.frombytes("RGB", (w, h), np.ascontiguousarray(rgba), "raw", "RGBX")
        return np.asarray(img.quantize(palette=self.palette_image, dither=Image.Dither.NONE))


def _delta(previous: np.ndarray, current: np.ndarray):
    """``(block, (x, y))``: the rectangle of ``current`` (palette indices) that differs from
    ``previous``, its unchanged pixels set to the transparent slot; 1 x 1 when nothing changed."""
    changed = current != previous
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    if rows.size == 0:
        return np.full((1, 1), _TRANSPARENT, np.uint8), (0, 0)
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    block = np.where(changed[r0:r1, c0:c1], current[r0:r1, c0:c1], np.uint8(_TRANSPARENT))
    return np.ascontiguousarray(block, dtype=np.uint8), (int(c0), int(r0))


class GifWriter:
    """A GIF streamed to disk: the first frame whole, then only the rectangle that changed,
    its unchanged pixels transparent (disposal "leave in place")."""

    def __init__(self, path: Path, fps: float, samples: Sequence[np.ndarray]):
        from PIL import GifImagePlugin  # noqa: F401  (fail here, before any work, if Pillow lacks it)

        if fps > _GIF_MAX_FPS:
            raise InvalidValue(f"GIF plays at most {_GIF_MAX_FPS} fps (browsers slow faster GIFs down); "
                               f"got fps={fps:g}: lower it or save an .mp4")
        self.quantizer = _Quantizer(samples)
        self.fps = float(fps)
        self.fh = open(path, "wb")
        self.previous = None
        self.count = 0

    def _delay_ms(self) -> int:
        # centisecond delays that add up to the exact frame rate (3, 3, 4, 3, 3, 4 cs at 30 fps)
        k = self.count
        cs = round((k + 1) * 100 / self.fps) - round(k * 100 / self.fps)
        return 10 * max(int(cs), 2)

    def _header(self, w: int, h: int) -> bytes:
        return (b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0) + self.quantizer.palette_bytes
                + b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0) + b"\x00")   # loop forever

    def write(self, rgba: np.ndarray) -> None:
        from PIL import GifImagePlugin, Image

        idx = self.quantizer.indices(rgba)
        params = {"duration": self._delay_ms(), "disposal": 1}
        if self.previous is None:
            self.fh.write(self._header(idx.shape[1], idx.shape[0]))
            block, offset = idx, (0, 0)
        else:
            block, offset = _delta(self.previous, idx)
            params["transparency"] = _TRANSPARENT
        im = Image.fromarray(block, "L")
        self.fh.writelines(GifImagePlugin.getdata(im, offset, **params))
        self.previous = idx
        self.count += 1

    def close(self) -> None:
        self.fh.write(b";")
        self.fh.close()

    def abort(self) -> None:
        self.fh.close()


class _Mp4Writer:
    """H.264 (yuv420p) MP4: raw RGBA frames piped into imageio-ffmpeg's ffmpeg."""

    def __init__(self, path: Path, fps: float, size, crf: int = 18):
        try:
            import imageio_ffmpeg
            exe = imageio_ffmpeg.get_ffmpeg_exe()
        except Exception as exc:   # not installed, or no binary for this platform
            raise OptvizError(f"MP4 output needs ffmpeg from the imageio-ffmpeg package: {exc}") from None
        w, h = size
        cmd = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgba", "-s", f"{w}x{h}",
               "-r", f"{fps:g}", "-i", "pipe:0", "-an",
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",          # yuv420p needs even sides
               "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(crf), "-preset", "medium",
               "-movflags", "+faststart", "-f", "mp4", str(path)]
        self.errors = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.errors)

    def _failure(self) -> OptvizError:
        self.errors.seek(0)
        text = self.errors.read().decode(errors="replace").strip()
        return OptvizError(f"ffmpeg failed (exit {self.proc.returncode}): {text[-600:] or 'no message'}")

    def write(self, rgba: np.ndarray) -> None:
        try:
            self.proc.stdin.write(memoryview(np.ascontiguousarray(rgba)).cast("B"))
        except BrokenPipeError:
            self.proc.wait()
            raise self._failure() from None

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        if self.proc.wait() != 0:
            raise self._failure()
        self.errors.close()

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.stdin.close()
        self.proc.wait()
        self.errors.close()


_PLAYER = """<div class="optviz-animation" id="{uid}" data-n-frames="{n}">
<canvas id="{uid}-canvas" width="{width}" height="{height}" style="max-width:100%;height:auto;display:block"
 aria-label="{alt}"></canvas>
<div style="display:flex;align-items:center;gap:6px;font-family:sans-serif;font-size:14px;margin-top:4px">
<button id="{uid}-first" title="first frame">&#9198;</button><button id="{uid}-prev" title="previous frame">&#9664;&#9646;</button>
<button id="{uid}-play" title="play / pause">&#9654;</button><button id="{uid}-next" title="next frame">&#9646;&#9654;</button>
<input id="{uid}-slider" type="range" min="0" max="{last}" value="0" style="flex:1">
<span id="{uid}-label">frame 1 / {n}</span></div>
<script>
(function() {{
  // frames[i] = [x, y, png]: a keyframe (whole picture at 0, 0) or the rectangle that
  // changed since frame i - 1, its unchanged pixels transparent
  var frames = {frames};
  var keyEvery = {key_every}, fps = {fps}, shown = -1, timer = null, ready = 0;
  function $(s) {{ return document.getElementById("{uid}-" + s); }}
  var ctx = $("canvas").getContext("2d");
  var images = frames.map(function(f) {{
    var im = new Image();
    im.onload = function() {{ if (++ready === frames.length) show(0); }};
    im.src = "data:image/png;base64," + f[2];
    return im;
  }});
  function paint(i) {{
    if (i % keyEvery === 0) ctx.clearRect(0, 0, {width}, {height});
    ctx.drawImage(images[i], frames[i][0], frames[i][1]);
  }}
  function show(k) {{
    if (ready < frames.length) return;
    k = (k + frames.length) % frames.length;
    // the next frame is one delta away; any other from its keyframe on
    var from = (k === shown + 1) ? k : k - (k % keyEvery);
    for (var i = from; i <= k; i++) paint(i);
    shown = k;
    $("slider").value = k;
    $("label").textContent = "frame " + (k + 1) + " / " + frames.length;
  }}
  function stop() {{ if (timer) {{ clearInterval(timer); timer = null; $("play").innerHTML = "&#9654;"; }} }}
  function play() {{ stop(); timer = setInterval(function() {{ show(shown + 1); }}, 1000 / fps);
                     $("play").innerHTML = "&#10074;&#10074;"; }}
  $("play").onclick = function() {{ timer ? stop() : play(); }};
  $("first").onclick = function() {{ stop(); show(0); }};
  $("prev").onclick = function() {{ stop(); show(shown - 1); }};
  $("next").onclick = function() {{ stop(); show(shown + 1); }};
  $("slider").oninput = function() {{ stop(); show(parseInt(this.value, 10)); }};
  {autoplay}
}})();
</script></div>"""


class _HtmlWriter:
    """A self-contained HTML player (slider, play/pause, frame steps) for pages and notebooks.

    Frames are palette PNGs in a JS array, stored as the GIF stores them: a keyframe
    every ``key_every`` frames and, between them, only the rectangle that changed (its
    unchanged pixels transparent), so the page is about as small as the GIF while any
    frame is at most ``key_every - 1`` small paints away. No external scripts.
    """

    def __init__(self, path: Optional[Path], fps: float, samples: Sequence[np.ndarray], title: str = "",
                 page: bool = True, autoplay: bool = False, key_every: int = 50):
        self.path, self.fps, self.title, self.page, self.autoplay = path, float(fps), title, page, autoplay
        self.key_every = max(1, int(key_every))
        self.quantizer = _Quantizer(samples)
        self.frames: List[str] = []
        self.previous = None
        self.size = (0, 0)

    def _png(self, block: np.ndarray) -> str:
        from PIL import Image

        im = Image.fromarray(block, "P")
        im.putpalette(self.quantizer.palette_bytes)
        buf = io.BytesIO()
        im.save(buf, format="PNG", transparency=_TRANSPARENT, compress_level=6)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    def write(self, rgba: np.ndarray) -> None:
        idx = self.quantizer.indices(rgba)
        if len(self.frames) % self.key_every == 0:
            block, (x, y) = idx, (0, 0)
            self.size = (idx.shape[1], idx.shape[0])
        else:
            block, (x, y) = _delta(self.previous, idx)
        self.frames.append(f'[{x},{y},"{self._png(block)}"]')
        self.previous = idx

    def snippet(self) -> str:
        uid = "optviz-" + uuid.uuid4().hex[:10]
        return _PLAYER.format(uid=uid, n=len(self.frames), last=len(self.frames) - 1,
                              frames="[" + ",\n".join(self.frames) + "]", key_every=self.key_every,
                              width=self.size[0], height=self.size[1], fps=f"{self.fps:g}",
                              alt=html_lib.escape(self.title), autoplay="play();" if self.autoplay else "")

    def close(self) -> None:
        if self.path is None:
            return
        body = self.snippet()
        if self.page:
            body = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html_lib.escape(self.title)}'
                    f"</title></head>\n<body>\n{body}\n</body></html>\n")
        Path(self.path).write_text(body, encoding="utf-8")

    def abort(self) -> None:
        self.frames.clear()


# --- the animation object -------------------------------------------------------------------


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
        from tqdm.auto import tqdm

        with self.scene(dpi) as scene:
            for k in tqdm(range(self.n_frames), desc=desc, unit="frame", disable=not progress):
                yield scene.blit(k)

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
        suffix = path.suffix.lower()
        if suffix not in FORMATS:
            raise OptvizError(f"cannot write {path.name!r}: unsupported extension {path.suffix or '(none)'!r}; "
                              f"valid: {', '.join(FORMATS)}")
        fps = self.fps if fps is None else float(fps)
        if not (np.isfinite(fps) and fps > 0):
            raise InvalidValue(f"fps must be a positive number, got {fps!r}")
        with atomic_path(path) as tmp, self.scene(dpi) as scene:
            if suffix == ".gif":
                writer = GifWriter(tmp, fps, self._samples(scene))
            elif suffix == ".mp4":
                writer = _Mp4Writer(tmp, fps, scene.size)
            else:
                writer = _HtmlWriter(tmp, fps, self._samples(scene), title=_plain(self.title))
            self._pump(scene, writer, progress, f"{path.name}")
        return path

    def _pump(self, scene: _Scene, writer, progress: bool, desc: str) -> None:
        from tqdm.auto import tqdm

        try:
            for k in tqdm(range(self.n_frames), desc=desc, unit="frame", disable=not progress):
                writer.write(scene.blit(k))
        except BaseException:
            writer.abort()
            raise
        writer.close()

    # -- notebooks -----------------------------------------------------------------------

    def to_jshtml(self, fps: Optional[float] = None, dpi: Optional[float] = None, progress: bool = False,
                  autoplay: bool = False, key_every: int = 50) -> str:
        """An HTML snippet with every frame embedded and a player (slider, play, step);
        a whole frame every ``key_every`` frames, only what changed in between."""
        with self.scene(dpi) as scene:
            writer = _HtmlWriter(None, self.fps if fps is None else fps, self._samples(scene),
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
