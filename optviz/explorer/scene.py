"""What the page draws, made by the library: the race's paths and the contour image.

The page is a thin client. The server runs the engine (:func:`optviz.engine.lockstep.race`,
the same trajectories as ``optviz plot``), and hands the paths to the views' own
:class:`~optviz.views.animate.RaceAnimation`, which decides what an animation of them
shows: the loss panel's values, scale and limits, each path's end and divergence,
the compressed gradient and momentum arrows. The colours, markers and line styles
are :func:`~optviz.views.field.path_styles`', the sizes :func:`~optviz.views.field.decorations`',
and the contour image is :func:`~optviz.views.field.draw_field`'s. The page only
draws those numbers onto a canvas.

Arrays travel as base64 little-endian float64 (NaN and inf survive; the page reads
them with one ``Float64Array``), which keeps a 5 x 500-step scene near 100 kB and its
encoding under a millisecond.
"""
from __future__ import annotations

import base64
import io
from typing import List, Optional, Sequence

import numpy as np

from ..surfaces.field import ScalarField2D

__all__ = ["race_paths", "encode_scene", "field_png", "title_svg", "dash_pattern"]


def race_paths(scene):
    """``(surface, trajectories)`` of a :class:`~optviz.explorer.state.Scene`'s race."""
    from ..engine import lockstep
    from ..surfaces import get_surface

    surface = get_surface(scene.function)
    paths = lockstep.race(surface, list(scene.opts), starts=[scene.start], steps=scene.steps, noise=scene.noise,
                          seed=scene.seed)
    return surface, paths


def _b64(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def dash_pattern(linestyle, linewidth: float) -> List[float]:
    """A matplotlib linestyle as the on/off lengths it draws, in points (empty: solid)."""
    import matplotlib as mpl

    rc = mpl.rcParams
    if linestyle in ("-", "solid", None):
        return []
    named = {"--": "lines.dashed_pattern", "dashed": "lines.dashed_pattern", ":": "lines.dotted_pattern",
             "dotted": "lines.dotted_pattern", "-.": "lines.dashdot_pattern", "dashdot": "lines.dashdot_pattern"}
    base = rc[named[linestyle]] if linestyle in named else linestyle[1]
    scale = linewidth if rc["lines.scale_dashes"] else 1.0
    return [float(v) * scale for v in base]


def encode_scene(field, trajectories: Sequence, style: str, arrows: Sequence[str] = (),
                 step_values: Optional[Sequence[int]] = None) -> dict:
    """The page's data for ``trajectories`` on ``field`` in ``style`` (JSON-ready)."""
    from ..views.animate import _ARROW_WIDTH, RaceAnimation
    from ..views.field import decorations, default_markevery, diverged_label, path_styles
    from ..views.style import STYLES

    deco = decorations(style)
    out = {"style": style, "deco": deco, "font_size": STYLES[style]["font.size"], "paths": [],
           "arrow_width": {k: _ARROW_WIDTH[k] for k in arrows}, "n_steps": 0, "loss": None}
    trajectories = list(trajectories)
    if not trajectories:
        return out
    anim = RaceAnimation(field, trajectories, style=style, frames=2, schedule="all", arrows=tuple(arrows),
                         step_values=step_values)
    out["n_steps"] = int(anim.n_steps)
    out["step_values"] = _b64(anim.step_values)
    out["loss"] = {"scale": anim.yscale, "ylim": [float(v) for v in anim.ylim], "linthresh": float(anim.linthresh),
                   "ylabel": anim.ylabel}
    for j, (track, ps) in enumerate(zip(anim.tracks, path_styles(trajectories, style))):
        traj = track.traj
        label = ps.label
        if traj.diverged_at is not None and traj.exit not in label:
            label = diverged_label(label, traj.diverged_at, traj.exit)
        path = {"optimizer": traj.optimizer, "label": label, "colour": ps.colour, "marker": ps.marker,
                "dash": dash_pattern(ps.linestyle, deco["linewidth"]),
                "markevery": default_markevery(len(track.xy) - 1, deco["max_markers"]),
                # n: the rows to draw, at least one; the track ends before its first non-finite row
                "diverged_at": traj.diverged_at, "exit": traj.exit, "n": len(track.xy),
                "xy": _b64(track.xy), "y": _b64(track.y), "arrows": {}}
        for kind, (_, vec) in anim.arrows.items():
            path["arrows"][kind] = _b64(vec[:, j])
        out["paths"].append(path)
    return out


# ==================================================================== the contour image


class _Window(ScalarField2D):
    """An analytic field seen through a window of the plane: sampled there, with levels
    chosen for what the window shows (zooming in brings out the valley floor)."""

    def __init__(self, field, view):
        x0, x1, y0, y1 = view
        self.base = field
        self.domain = ((x0, x1), (y0, y1))
        for name in ("name", "title", "minima", "local_minima", "log_levels", "xlabel", "ylabel"):
            setattr(self, name, getattr(field, name))

    def value(self, xy):
        return self.base.value(xy)


def field_png(field, style: str, view, width: int, height: int) -> bytes:
    """The contour image of ``field`` over ``view`` (x0, x1, y0, y1), ``width`` x ``height``
    pixels, drawn by :func:`~optviz.views.field.draw_field` filling the whole image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..views.field import draw_field
    from ..views.style import style_context

    x0, x1, y0, y1 = view
    analytic = callable(getattr(field, "grad", None))
    import matplotlib as mpl

    # the presets crop to the content ("tight"); this image must be exactly the window
    with style_context(style), mpl.rc_context({"savefig.bbox": "standard"}):
        fig = Figure(figsize=(width / 100, height / 100), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        if analytic:
            # about one sample per 3 pixels, as the figures' 200 per axis at their size
            res = (int(np.clip(width // 3, 60, 320)), int(np.clip(height // 3, 60, 320)))
            draw_field(ax, _Window(field, view), style, resolution=res, labels=False, equal_aspect=False)
        else:                       # a sampled field: its own grid, seen through the window
            draw_field(ax, field, style, labels=False, equal_aspect=False)
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
        ax.set_axis_off()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, facecolor=fig.get_facecolor(),
                    metadata={"Software": "optviz (matplotlib)"})
    return buf.getvalue()


def title_svg(text: str, style: str, size: Optional[float] = None) -> str:
    """``text`` (with mathtext between dollars, as figure titles have it) as an SVG fragment."""
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    from ..views.style import STYLES, style_context

    rc = STYLES[style]
    with style_context(style):
        fig = Figure(figsize=(1, 1), dpi=72)
        FigureCanvasSVG(fig)
        fig.patch.set_alpha(0)
        fig.text(0, 0, text, fontsize=size or rc["axes.titlesize"], color=rc.get("text.color", "#1a1a1a"))
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.02, transparent=True)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]
