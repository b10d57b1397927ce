"""Render speed: optviz's blitting pipeline vs matplotlib's FuncAnimation + PillowWriter.

The lecture's default animation (Rosenbrock, the five optimizers with the settings
that show their character, 300 frames, slides style, GIF) is rendered twice in one
process from the SAME figure and the SAME frames:

- optviz: background drawn once and restored per frame, moving artists drawn with
  ``draw_artist``, the RGBA buffer quantized to a shared palette and streamed into
  the GIF (``RaceAnimation.save``);
- baseline: ``FuncAnimation(fig, update, frames, blit=True).save(path,
  writer=PillowWriter(fps))``, matplotlib's standard recipe (a full ``savefig`` per
  frame, Pillow's GIF encoder at the end), with the same ``update`` (``set_data`` only).

Targets: >= 5x faster, GIF <= 2 MB. Run: ``python benchmarks/render.py [--repeats 3]``.
The last two lines are ``speedup_vs_funcanimation: X`` and ``gif_megabytes: Y``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib

matplotlib.use("Agg")

from optviz.surfaces import get_surface  # noqa: E402
from optviz.views.animate import animate  # noqa: E402

LECTURE_FIVE = ["sgd:lr=2e-3", "momentum:lr=1e-3,momentum=0.9", "nesterov:lr=1e-3,momentum=0.9",
                "adagrad:lr=0.5", "adam:lr=0.1"]


def lecture_trajectories(surface, steps: int):
    """The five optimizers from the surface's default start (the engine's presets when present)."""
    from optviz.engine import race

    try:
        from optviz.engine.presets import lecture_specs
        specs = lecture_specs(surface.name)
    except ImportError:
        specs = LECTURE_FIVE
    return race(surface, specs, steps=steps)


def run_optviz(anim, path: Path) -> float:
    t = time.perf_counter()
    anim.save(path, progress=False)
    return time.perf_counter() - t


def run_funcanimation(anim, path: Path) -> float:
    from matplotlib.animation import FuncAnimation, PillowWriter

    t = time.perf_counter()
    with anim.scene() as scene:        # the same figure, artists and update function
        fa = FuncAnimation(scene.fig, scene.set_frame, frames=range(anim.n_frames), blit=True,
                           cache_frame_data=False)
        fa.save(path, writer=PillowWriter(fps=anim.fps), dpi=scene.fig.dpi)   # scene() holds the style
    return time.perf_counter() - t


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each pipeline (median reported)")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--style", default="slides")
    args = parser.parse_args(argv)

    surface = get_surface("rosenbrock")
    steps = 400
    try:
        from optviz.engine.presets import default_steps
        steps = default_steps("rosenbrock")
    except ImportError:
        pass
    trajectories = lecture_trajectories(surface, steps)
    anim = animate(surface, trajectories, style=args.style, frames=args.frames)

    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        ours_path, theirs_path = Path(tmp) / "optviz.gif", Path(tmp) / "funcanimation.gif"
        # ours is cheap: at least three runs; the baseline (minutes) runs --repeats times
        for i in range(max(3, args.repeats)):
            ours.append(run_optviz(anim, ours_path))
            if i < args.repeats:
                theirs.append(run_funcanimation(anim, theirs_path))
        ours_mb, theirs_mb = os.path.getsize(ours_path) / 1e6, os.path.getsize(theirs_path) / 1e6
        from PIL import Image

        with Image.open(ours_path) as im:
            size, n_ours = im.size, im.n_frames
        with Image.open(theirs_path) as im:
            n_theirs = im.n_frames

    t_ours, t_theirs = statistics.median(ours), statistics.median(theirs)
    print(f"animation: rosenbrock, {len(trajectories)} optimizers, {anim.n_frames} frames of {anim.n_steps} "
          f"steps ({anim.caption}), style {args.style}, {size[0]}x{size[1]} px, {anim.fps:g} fps, "
          f"medians of {len(ours)} optviz and {len(theirs)} FuncAnimation runs")
    print(f"{'pipeline':<34}{'seconds':>9}{'ms/frame':>10}{'frames':>8}{'GIF MB':>9}")
    print(f"{'optviz (blit + shared palette)':<34}{t_ours:>9.2f}{1e3 * t_ours / anim.n_frames:>10.1f}"
          f"{n_ours:>8}{ours_mb:>9.2f}")
    print(f"{'FuncAnimation + PillowWriter':<34}{t_theirs:>9.2f}{1e3 * t_theirs / anim.n_frames:>10.1f}"
          f"{n_theirs:>8}{theirs_mb:>9.2f}")
    print(f"speedup_vs_funcanimation: {t_theirs / t_ours:.2f}")
    print(f"gif_megabytes: {ours_mb:.2f}")


if __name__ == "__main__":
    main()
