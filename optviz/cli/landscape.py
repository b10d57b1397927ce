"""``optviz landscape``: a run's training paths on a 2-D slice of MNIST's real loss landscape."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import InvalidValue
from ._common import STYLE_HELP, choice, nonneg_int, planes, styles


def _at_least(low):
    def callback(ctx, param, value):
        if value is not None and value < low:
            raise InvalidValue(f"--{param.name.replace('_', '-')} must be >= {low}, got {value}")
        return value
    return callback


def _memory(ctx, param, value):
    if value is None:
        return None
    from ..landscape.grid import parse_bytes

    return parse_bytes(value)


@click.command("landscape")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--plane", default="pca", show_default=True, **choice("plane", planes), metavar="[pca|random|points]",
              help="pca: the two principal directions of all snapshots; random: filter-normalised random "
                   "directions (Li et al. 2018); points: the plane through three points (--points).")
@click.option("--points", default=None, metavar="A,B,C",
              help="For --plane points: each 'init', a run label (its final weights, e.g. adam-s0 or adam) or "
                   "RUN@STEP. Default: init, the first and the last run's final weights.")
@click.option("--centre", "--center", "centre", default=None, metavar="WHERE",
              help="PCA: start (default: the shared initial weights) or mean. Random: a run (its final weights; "
                   "default the first run), start or mean.")
@click.option("--seed", type=int, default=0, show_default=True, callback=nonneg_int,
              help="Seed of the random directions (>= 0).")
@click.option("--grid", type=int, default=51, show_default=True, callback=_at_least(3), help="Grid points per axis.")
@click.option("--subset", type=int, default=2000, show_default=True, callback=_at_least(1),
              help="Validation images the loss is evaluated on (a fixed, seeded sample).")
@click.option("--margin", type=float, default=0.25, show_default=True,
              help="Grid margin around the paths, as a fraction of their span on each side.")
@click.option("--max-points", type=int, default=200, show_default=True, callback=_at_least(2),
              help="Snapshots drawn per path (evenly thinned; residuals use all).")
@click.option("--memory", default=None, callback=_memory, metavar="SIZE",
              help="Memory budget for the grid, e.g. 4GB (default: half the available memory). A grid that "
                   "does not fit is refused before any work, with the estimate.")
@click.option("--style", default="slides", show_default=True, **choice("style", styles), help=STYLE_HELP)
@click.option("--frames", type=int, default=120, show_default=True, callback=_at_least(2),
              help="Animation frames (at most one per drawn snapshot).")
@click.option("--no-animation", is_flag=True, help="Skip the GIF.")
@click.option("--lecture", is_flag=True,
              help="Also the lecture figure: the five optimizers on Rosenbrock beside MNIST (PNG and GIF).")
@click.option("--no-cache", is_flag=True, help="Recompute even if RUN_DIR/landscape holds the result.")
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path),
              help="A folder (all figures, landscape.json) or one file: .png/.svg/.pdf (paths on the plane "
                   "beside true vs. plane loss) or .gif/.mp4/.html (the animation).")
def landscape(run_dir, plane, points, centre, seed, grid, subset, margin, max_points, memory, style, frames,
              no_animation, lecture, no_cache, output):
    """Draw the training paths of RUN_DIR (an `optviz mnist` run folder) on a 2-D slice
    of the network's loss landscape, with the same views that draw Rosenbrock.

    One plane is shared by all optimizers of the run; its axis labels give the share of
    the motion each axis shows, and each path's off-plane residual is reported. The
    loss grid is cached in RUN_DIR/landscape, so redrawing costs nothing.

    \b
    Examples:
      optviz landscape runs/lecture -o out/landscape/
      optviz landscape runs/lecture --plane points --points init,sgd,adam -o plane.png
      optviz landscape runs/lecture --lecture -o gallery/landscape/
    """
    from ..landscape import landscape_pipeline

    if points is not None and plane != "points":
        raise InvalidValue("--points needs --plane points")
    written = landscape_pipeline(run_dir, output, plane=plane, grid=grid, subset=subset, style=style,
                                 lecture=lecture, animation=not no_animation, frames=frames,
                                 log=lambda msg: click.echo(msg, err=True), points=points, centre=centre, seed=seed,
                                 margin=margin, max_points=max_points, memory_budget=memory, cache=not no_cache)
    for path in written:
        click.echo(str(path))


COMMANDS = [landscape]
