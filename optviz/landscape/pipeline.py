"""From a run folder to figures: :func:`~optviz.landscape.compute.compute_landscape`, then
the ordinary views (contour, 3-D, animation) and the lecture figure.

>>> from optviz.landscape import landscape_pipeline
>>> landscape_pipeline("runs/lecture", "out/landscape")        # doctest: +SKIP
[PosixPath('out/landscape/contour.png'), ...]
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np

from ..errors import OptvizError, UnknownName
from .compute import Landscape, compute_landscape

__all__ = ["landscape_figures", "landscape_pipeline", "paths_figure", "lecture_figure", "lecture_animation",
           "FIGURE_NAMES"]

#: The files :func:`landscape_figures` writes into a folder.
FIGURE_NAMES = {"paths": "paths_vs_plane.png", "contour": "contour.png", "surface3d": "surface3d.png",
                "accuracy": "error_rate.png", "animation": "landscape.gif", "report": "landscape.json"}


# ==================================================================== figures


def paths_figure(land: Landscape, style: str = "slides"):
    """The paths on the loss contours (left), and along each path (right) the true loss
    (solid) against the plane's loss at its projection (dashed), and the off-plane
    residual per snapshot: where solid and dashed part, the plane misleads."""
    from matplotlib.lines import Line2D

    from ..views.field import decorations, draw_field, draw_path, path_styles
    from ..views.stills import short_log_ticks
    from ..views.stills import figure_title, finish_figure, new_figure
    from ..views.style import STYLES, style_context
    field = land.field()
    trajs = [p.trajectory(label=p.label) for p in land.paths]      # residuals have their own panel
    with style_context(style):
        deco = decorations(style)
        rc = STYLES[style]
        fig = new_figure(style, (12.0, 6.6) if style == "paper" else None)
        gs = fig.add_gridspec(2, 2, width_ratios=(1.15, 1.0), height_ratios=(1.5, 1.0))
        ax = fig.add_subplot(gs[:, 0])
        ax_loss = fig.add_subplot(gs[0, 1])
        ax_res = fig.add_subplot(gs[1, 1], sharex=ax_loss)
        draw_field(ax, field, style, colorbar=True)
        styles = path_styles(trajs, style)
        length = [float(np.sum(np.linalg.norm(np.diff(t.xy, axis=0), axis=1))) for t in trajs]
        rank = np.argsort(np.argsort(length)[::-1])            # short paths on top
        drawn = [draw_path(ax, t, style=style, zorder=4 + 0.1 * r, **ps.kwargs())
                 for t, ps, r in zip(trajs, styles, rank)]
        lw = deco["linewidth"] * 0.75
        dashed = (0, (2, 1.5))
        for p, ps in zip(land.paths, styles):
            ax_loss.plot(p.steps, p.loss, color=ps.colour, linewidth=lw)
            ax_loss.plot(p.steps, p.plane_loss, color=ps.colour, linewidth=lw, linestyle=dashed)
            ax_res.plot(p.steps, 100 * p.residual, color=ps.colour, linewidth=lw, marker=ps.marker,
                        markevery=max(1, len(p.steps) // 8), markersize=deco["path_marker_size"],
                        markeredgecolor=deco["halo"])
        ax_loss.set_yscale("log")
        short_log_ticks(ax_loss)
        ax_loss.set_ylabel("loss")
        small = rc["axes.labelsize"] * 0.8
        ax_loss.set_title("true (solid) vs. on the plane (dashed)", fontsize=small, loc="right")
        ax_loss.tick_params(labelbottom=False)
        ax_res.set_title("off-plane part of the path (%)", fontsize=small, loc="right")
        ax_res.set_xlabel("training step")
        ax_res.set_ylim(0, 100)
        for a in (ax_loss, ax_res):
            a.grid(True, alpha=0.25)
        handles = [d.line for d in drawn] + [Line2D([], [], color=deco["ink"], linewidth=lw),
                                             Line2D([], [], color=deco["ink"], linewidth=lw, linestyle=dashed)]
        labels = [d.line.get_label() for d in drawn] + ["true loss", "loss at the projection"]
        figure_title(fig, land.title, style)
        big = rc["font.size"] >= 16
        fig.legend(handles, labels, loc="outside lower center", ncols=4, handlelength=2.6 if big else 3.0,
                   columnspacing=1.0, borderaxespad=0.3)
    return finish_figure(fig, style)


def landscape_figures(land: Landscape, out_dir, style: str = "slides", *, animation: bool = True,
                      frames: int = 120, fps: float = 12, which: Optional[Sequence[str]] = None,
                      log: Optional[Callable[[str], None]] = None) -> List[Path]:
    """Draw ``land`` into ``out_dir`` with the ordinary views; returns the files written.

    ``paths_vs_plane.png`` (:func:`paths_figure`), ``contour.png`` (contour_figure),
    ``surface3d.png`` (surface3d_figure), ``error_rate.png`` (the error rate on the
    grid), ``landscape.gif`` (all paths in lockstep, the loss panel growing beside
    them; x axis: drawn snapshot) and ``landscape.json`` (the report).
    """
    from ..io import atomic_write
    from ..views.animate import animate
    from ..views.save import save_figure
    from ..views.stills import contour_figure, surface3d_figure

    say = log or (lambda msg: None)
    out_dir = Path(out_dir)
    which = set(which or FIGURE_NAMES)
    if not animation:
        which.discard("animation")
    field, trajs = land.field(), land.trajectories(two_lines=True)
    written: List[Path] = []

    def put(kind, make):
        if kind in which:
            path = out_dir / FIGURE_NAMES[kind]
            fig = make()
            written.append(save_figure(fig, path))
            say(f"wrote {path}")

    put("paths", lambda: paths_figure(land, style))
    put("contour", lambda: contour_figure(field, trajs, style, title=land.title))
    # the camera looks from the start's side, along PC1: the paths run down into their valleys
    put("surface3d", lambda: surface3d_figure(field, trajs, style, title=land.title, elev=40, azim=-60))
    put("accuracy", lambda: contour_figure(land.error_field(), trajs, style,
                                           title=land.title.replace("loss landscape", "error rate (1 − accuracy)")))
    if "animation" in which:
        path = out_dir / FIGURE_NAMES["animation"]
        n = max(len(p.steps) for p in land.paths)
        every = _snapshot_spacing(land)
        title = f"{land.title}; one path point per {every:,} training steps" if every else land.title
        anim = animate(field, land.trajectories(), style=style, frames=min(int(frames), n), fps=fps, title=title,
                       dpi=72 if style != "paper" else None, step_values=_step_values(land))
        written.append(anim.save(path, progress=False))
        say(f"wrote {path}")
    if "report" in which:
        path = out_dir / FIGURE_NAMES["report"]
        with atomic_write(path, encoding="utf-8") as fh:
            json.dump(land.report(), fh, indent=1, ensure_ascii=False)
        written.append(path)
    return written


def _step_values(land: Landscape) -> np.ndarray:
    """The training step of each path point (the longest path's snapshot steps), so
    animations count training steps, not snapshots."""
    return np.asarray(max(land.paths, key=lambda p: len(p.steps)).steps)


def _snapshot_spacing(land: Landscape) -> Optional[int]:
    gaps = np.concatenate([np.diff(p.steps) for p in land.paths if len(p.steps) > 1] or [np.zeros(0)])
    gaps = gaps[gaps > 0]
    return int(np.median(gaps)) if gaps.size else None


# ==================================================================== the lecture figure


@functools.lru_cache(maxsize=1)
def _rosenbrock():
    """The lecture's race on Rosenbrock (computed once per process: the figure and the GIF share it)."""
    from .. import api
    from ..surfaces import get_surface

    surface = get_surface("rosenbrock")
    return surface, api.race(surface)


def lecture_figure(land: Landscape, style: str = "slides", rosenbrock=None):
    """The lecture's five optimizers on Rosenbrock (left) and on MNIST's loss landscape
    (right), in the same colours and markers, one legend per panel below it."""
    from ..views.field import draw_field, draw_path, path_styles
    from ..views.stills import figure_title, finish_figure, new_figure
    from ..views.style import STYLES, style_context
    surface, rpaths = rosenbrock or _rosenbrock()
    trajs = land.trajectories(order="run")
    mnist = f"MNIST {land.model_name}" + (f", {land.epochs_text}" if land.epochs else "") + f": {land.plane_name}"
    with style_context(style):
        fig = new_figure(style, (13.0, 6.2) if style == "paper" else None)
        axes = fig.subplots(1, 2)
        small = STYLES[style]["legend.fontsize"] * 0.85
        for ax, field, paths, title in ((axes[0], surface, rpaths, "Rosenbrock"), (axes[1], land.field(), trajs, mnist)):
            draw_field(ax, field, style, colorbar=False)
            length = [float(np.nansum(np.linalg.norm(np.diff(t.xy, axis=0), axis=1))) for t in paths]
            rank = np.argsort(np.argsort(length)[::-1])        # short paths on top
            drawn = [draw_path(ax, t, style=style, zorder=4 + 0.1 * r, **ps.kwargs())
                     for t, ps, r in zip(paths, path_styles(paths, style), rank)]
            ax.set_title(title)
            ax.legend([d.line for d in drawn], [d.line.get_label() for d in drawn], loc="upper center",
                      bbox_to_anchor=(0.5, -0.16 if style == "paper" else -0.2), ncols=2 if style == "paper" else 1,
                      fontsize=small, frameon=False, handlelength=2.2)
        figure_title(fig, "The same five optimizers, the same colours: a test function and a real network", style)
    return finish_figure(fig, style)


def lecture_animation(land: Landscape, path, style: str = "slides", frames: int = 100, fps: float = 10,
                      dpi: float = 72, rosenbrock=None) -> Path:
    """Rosenbrock (left) and MNIST's landscape (right) racing side by side, each with its
    loss panel growing, written as a GIF: both are :class:`~optviz.views.animate.RaceAnimation`
    frames (same frame count, so both runs advance by the same fraction per frame)."""
    from ..io import atomic_path
    from ..views.animate import GifWriter, animate

    surface, rpaths = rosenbrock or _rosenbrock()
    trajs = land.trajectories()                  # short paths last (on top) ...
    rank = {t.optimizer: i for i, t in enumerate(trajs)}
    rpaths = sorted(rpaths, key=lambda t: rank.get(t.optimizer, len(rank)))   # ... and both legends in one order
    n_mnist = max(len(p.steps) for p in land.paths)
    n_rosen = max(len(t.xy) for t in rpaths)
    frames = int(min(frames, n_mnist, n_rosen))
    every = _snapshot_spacing(land)
    a = animate(surface, rpaths, style=style, frames=frames, fps=fps, dpi=dpi)
    b = animate(land.field(), trajs, style=style, frames=frames, fps=fps, dpi=dpi, step_values=_step_values(land),
                title=f"MNIST {land.model_name}, {land.plane_name}" + (f" ({land.epochs_text}, a point per {every:,} steps)" if every else ""))
    if a.n_frames != b.n_frames:
        raise OptvizError(f"internal: frame counts differ ({a.n_frames} vs {b.n_frames})")

    picks = sorted({0, a.n_frames // 2, a.n_frames - 1})
    path = Path(path)
    # one scene per side, built once; a frame is two blits side by side
    with a.scene(dpi) as left, b.scene(dpi) as right, atomic_path(path) as tmp:
        samples = [np.concatenate([left.blit(k).copy(), right.blit(k).copy()], axis=1) for k in picks]
        writer = GifWriter(tmp, fps, samples)
        try:
            for k in range(a.n_frames):
                writer.write(np.concatenate([left.blit(k), right.blit(k)], axis=1))
        except BaseException:
            writer.abort()
            raise
        writer.close()
    return path


# ==================================================================== one call


def _check_output(out, frames: int) -> Path:
    """The output of :func:`landscape_pipeline`, checked before any work: a figure file, an
    animation file (frame rate, memory) or a folder, each writable."""
    from ..io import check_output_dir, check_writable
    from ..views.animate import check_animation

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix in (".png", ".svg", ".pdf"):
        return check_writable(out)
    if suffix in (".gif", ".mp4", ".html"):
        return check_animation(out, frames, 12)
    if suffix:
        raise OptvizError(f"cannot write {str(out)!r}: give a folder, or a file ending in .png, .svg, .pdf, .gif, "
                          f".mp4 or .html")
    return check_output_dir(out)


def landscape_pipeline(run_dir, out_dir, plane: str = "pca", grid: int = 51, subset: int = 2000,
                       style: str = "slides", *, lecture: bool = False, animation: bool = True, frames: int = 120,
                       log: Optional[Callable[[str], None]] = None, **options) -> List[Path]:
    """Run folder -> figures in ``out_dir``: :func:`compute_landscape` then
    :func:`landscape_figures` (and, with ``lecture=True``, the lecture figure and GIF).
    ``out_dir`` may also be one file: a ``.png``/``.svg``/``.pdf`` gets the paths figure,
    a ``.gif``/``.mp4``/``.html`` the animation. Returns the files written."""
    from ..views.save import save_figure
    from ..views.style import STYLES

    if style not in STYLES:
        raise UnknownName("style", style, STYLES)
    out = _check_output(out_dir, frames)   # before the plane and the grid are computed
    land = compute_landscape(run_dir, plane=plane, grid=grid, subset=subset, log=log, **options)
    if log:
        log(land.summary())
    suffix = out.suffix.lower()
    if suffix in (".png", ".svg", ".pdf"):
        return [save_figure(paths_figure(land, style), out)]
    if suffix in (".gif", ".mp4", ".html"):
        from ..views.animate import animate

        n = max(len(p.steps) for p in land.paths)
        anim = animate(land.field(), land.trajectories(), style=style, frames=min(int(frames), n), title=land.title,
                       step_values=_step_values(land))
        return [anim.save(out, progress=False)]
    written = landscape_figures(land, out, style, animation=animation, frames=frames, log=log)
    if lecture:
        fig = lecture_figure(land, style)
        written.append(save_figure(fig, out / "lecture_rosenbrock_mnist.png"))
        if animation:
            written.append(lecture_animation(land, out / "lecture_rosenbrock_mnist.gif", style))
    return written
