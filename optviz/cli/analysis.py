"""Second order and stability: ``stability``, ``basins``, ``curvature``, ``sharpness`` and ``second-order``."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import InvalidValue, OptvizError
from ._common import STYLE_HELP, choice, figure_path, positive_int, styles

LOG_AXES = ("lr", "eps", "weight_decay", "eps_root")


def _grid(text: str):
    """``"120x80"`` -> (120, 80); ``"151"`` -> (151, 151)."""
    try:
        parts = [int(p) for p in text.lower().replace(" ", "").split("x")]
    except ValueError:
        raise InvalidValue(f"--grid takes N or NXxNY (e.g. 120x80), got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 2:
        raise InvalidValue(f"--grid takes N or NXxNY with at least 2 cells per side, got {text!r}")
    return tuple(parts)


def _axis(text: str, n: int):
    """``"lr=1e-4:1"`` -> an Axis (log for rates and epsilons, linear otherwise); ``"none"`` -> None."""
    from ..analysis.stability import Axis

    if text.strip().lower() == "none":
        return None
    name, eq, rng = text.partition("=")
    lo, colon, hi = rng.partition(":")
    try:
        lo_v, hi_v = float(lo), float(hi)
    except ValueError:
        raise InvalidValue(f"an axis is NAME=LO:HI (e.g. lr=1e-4:1 or momentum=0:0.99), got {text!r}") from None
    if not eq or not colon or not name.strip():
        raise InvalidValue(f"an axis is NAME=LO:HI (e.g. lr=1e-4:1 or momentum=0:0.99), got {text!r}")
    return Axis(name.strip(), lo_v, hi_v, n, name.strip() in LOG_AXES)


def _start(values):
    from ._common import parse_starts

    starts = parse_starts([values]) if values else []
    return starts[0] if starts else None


# ============================================================================ 2-D


@click.command("stability")
@click.argument("function")
@click.option("--opt", "opts", multiple=True, metavar="SPEC",
              help="Optimizer, repeatable; the two swept hyperparameters come from the axes, the rest are "
                   "held fixed: --opt adam:beta2=0.99. Default: momentum, nesterov, adam.")
@click.option("--x", "x_axis", default=None, metavar="NAME=LO:HI",
              help="Horizontal axis (log for lr and eps). Default: the learning rate around 2/λ_max.")
@click.option("--y", "y_axis", default=None, metavar="NAME=LO:HI|none",
              help="Vertical axis. Default: momentum (γ) or β₁, 0 to 0.99; 'none' for a one-row strip.")
@click.option("--grid", default="120x80", show_default=True, metavar="NXxNY", help="Cells per axis.")
@click.option("--steps", type=int, default=500, show_default=True, callback=positive_int, help="Steps per cell.")
@click.option("--start", default=None, metavar="X,Y", help="Start (write --start=-1.5,2). Default: the lecture start.")
@click.option("--metric", type=click.Choice(["gap", "steps"]), default="gap", show_default=True,
              help="Colour: final f - f*, or steps until f - f* <= tol (f(start) - f*).")
@click.option("--tol", type=float, default=1e-6, show_default=True, help="Tolerance of --metric steps.")
@click.option("--style", default="paper", show_default=True, **choice("style", styles), help=STYLE_HELP)
@click.option("-o", "--output", required=True, help="Output file: .png, .svg or .pdf.")
def stability_command(function, opts, x_axis, y_axis, grid, steps, start, metric, tol, style, output):
    """Where optimizers converge, over two hyperparameters, with the theoretical boundary.

    One batched engine run per optimizer: every cell of the grid is one configuration.
    On a quadratic (long_valley) the boundary is exact: η < 2/λ_max for gradient descent,
    η < 2(1+γ)/λ_max for heavy-ball momentum.

    \b
    Examples:
      optviz stability long_valley -o stability.png
      optviz stability rosenbrock --opt momentum --opt adam --metric steps --style slides -o rosen.png
      optviz stability booth --opt sgd --y none -o gd_strip.png
    """
    from ..analysis.stability import stability_map
    from ..surfaces import get_surface
    from ..views.save import save_figure
    from ..views.stability import stability_figure

    nx, ny = _grid(grid)
    path = figure_path(output)
    surface = get_surface(function)
    x = _axis(x_axis, nx) if x_axis else None
    y = "auto" if y_axis is None else _axis(y_axis, ny)
    maps = []
    for spec in opts or ("momentum", "nesterov", "adam"):
        m = stability_map(surface, spec, x=x, y=y, start=_start(start), steps=steps, nx=nx, ny=ny,
                          tol=tol if metric == "steps" else None)
        maps.append(m)
        line = f"  {m.label:<28} {m.cells:,} cells in {m.seconds:.2f} s; diverged {100 * m.diverged.mean():.0f}%"
        if m.boundary is not None:
            cells = _cells_off(m)
            line += f"; theory η < {m.rule.replace('η', 'λ_max')} (λ_max = {m.lam_max:.4g}): measured boundary " \
                    f"within one cell in {cells[0]}/{cells[1]} rows"
        click.echo(line)
    save_figure(stability_figure(maps, style, field=surface, metric=metric), path, style=style)
    click.echo(f"wrote {path}")


def _cells_off(m):
    """(rows whose measured boundary lies within one cell above the theory, rows with a boundary)."""
    import numpy as np

    measured, theory = m.measured_boundary(), m.boundary
    ok = np.isfinite(measured) & np.isfinite(theory)
    if m.x.log:
        off = np.log(measured[ok] / theory[ok]) / np.log(m.x.cell)
    else:
        off = (measured[ok] - theory[ok]) / m.x.cell
    return int(np.sum((off >= 0) & (off <= 1))), int(ok.sum())


@click.command("basins")
@click.argument("function")
@click.option("--opt", "opts", multiple=True, metavar="SPEC",
              help="Optimizer, repeatable (also newton, damped_newton, saddle_free_newton). "
                   "Default: the lecture's five, tuned for the function, and Newton.")
@click.option("--grid", type=int, default=151, show_default=True, callback=positive_int, help="Starts per side.")
@click.option("--steps", type=int, default=500, show_default=True, callback=positive_int, help="Steps per start.")
@click.option("--style", default="paper", show_default=True, **choice("style", styles), help=STYLE_HELP)
@click.option("-o", "--output", required=True, help="Output file: .png, .svg or .pdf.")
def basins_command(function, opts, grid, steps, style, output):
    """Which minimum (or saddle, or maximum, or nothing) each start leads to, per optimizer.

    \b
    Examples:
      optviz basins himmelblau -o basins.png
      optviz basins six_hump_camel --opt sgd:lr=0.05 --opt momentum:lr=0.01 --opt newton -o camel.png
    """
    from ..analysis.basins import basin_map
    from ..engine.presets import lecture_specs
    from ..surfaces import get_surface
    from ..views.basins import basins_figure
    from ..views.save import save_figure

    if grid < 2:
        raise InvalidValue(f"--grid must be >= 2, got {grid}")
    path = figure_path(output)
    surface = get_surface(function)
    maps = []
    for spec in opts or (*lecture_specs(surface.name), "newton"):
        m = basin_map(surface, spec, n=grid, steps=steps)
        maps.append(m)
        shares = ", ".join(f"{m.outcome_name(c) if c < 0 else 'minimum ' + str(c + 1)} {100 * s:.0f}%"
                           for c, s in sorted(m.shares().items(), key=lambda kv: -kv[1]))
        click.echo(f"  {m.label:<28} {m.outcome.size:,} starts in {m.seconds:.2f} s: {shares}")
    save_figure(basins_figure(maps, surface, style), path, style=style)
    click.echo(f"wrote {path}")


@click.command("curvature")
@click.argument("function")
@click.option("--opt", "opts", multiple=True, metavar="SPEC",
              help="Optimizer, repeatable. Default: the lecture's five, tuned for the function.")
@click.option("--start", default=None, metavar="X,Y", help="Start (write --start=-1.5,2). Default: the lecture start.")
@click.option("--steps", type=int, default=None, callback=positive_int, help="Steps per optimizer.")
@click.option("--style", default="paper", show_default=True, **choice("style", styles), help=STYLE_HELP)
@click.option("-o", "--output", required=True, help="Output file: .png, .svg or .pdf.")
def curvature_command(function, opts, start, steps, style, output):
    """The Hessian's top eigenvalue along each path, beside the optimizer's limit c/η.

    \b
    Example (gradient descent stops short of Rosenbrock's minimum, whose λ_max = 1002 > 2/η = 909):
      optviz curvature rosenbrock --opt sgd:lr=2.2e-3 --opt sgd:lr=1e-3 --opt momentum:lr=1e-3 --steps 4000 -o c.png
    """
    import numpy as np

    from .. import api
    from ..analysis.curvature import path_curvatures
    from ..surfaces import get_surface
    from ..views.curvature import path_curvature_figure
    from ..views.save import save_figure

    path = figure_path(output)
    surface = get_surface(function)
    if not hasattr(surface, "hessian"):
        raise OptvizError(f"{surface.name} has no Hessian formula")
    paths = api.race(surface, list(opts) or None, starts=[_start(start)] if start else None, steps=steps)
    curves = path_curvatures(surface, paths)
    for c in curves:
        s = c.sharpness
        limit = f"limit {c.limit.rule} = {c.limit.value:.4g}" if c.limit is not None else "no limit"
        of = "P⁻¹H" if c.limit is not None and c.limit.preconditioned else "H"
        click.echo(f"  {c.trajectory.label:<32} λ_max({of}) start {s[0]:.4g}, end {s[-1]:.4g}, "
                   f"max {np.nanmax(s):.4g}; {limit}")
    save_figure(path_curvature_figure(surface, curves, style), path, style=style)
    click.echo(f"wrote {path}")


# ============================================================================ MNIST


@click.command("sharpness")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--runs", default=None, metavar="A,B,...", help="Run labels (default: all with snapshots).")
@click.option("--images", type=int, default=2000, show_default=True, callback=positive_int,
              help="Training images the Hessian is taken on (the first N; the same for every snapshot).")
@click.option("--every", type=int, default=1, show_default=True, callback=positive_int, help="Use every k-th snapshot.")
@click.option("--max-points", type=int, default=40, show_default=True, callback=positive_int,
              help="At most this many snapshots per run (evenly spread; first and last kept).")
@click.option("--method", type=click.Choice(["lanczos", "power"]), default="lanczos", show_default=True,
              help="Top eigenvalue by Lanczos or by power iteration.")
@click.option("--iters", type=int, default=80, show_default=True, callback=positive_int,
              help="At most this many Hessian-vector products per eigenvalue.")
@click.option("--tol", type=float, default=1e-3, show_default=True, help="Relative residual to accept.")
@click.option("--no-precondition", is_flag=True,
              help="Skip the preconditioned sharpness of adaptive runs (it replays their training).")
@click.option("--x", "x_axis", type=click.Choice(["step", "epoch"]), default="step", show_default=True,
              help="Horizontal axis.")
@click.option("--no-cache", is_flag=True, help="Recompute even if RUN_DIR/analysis holds the result.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Data folder (default: the run's, else $OPTVIZ_DATA_DIR or the per-user cache).")
@click.option("--title", default=None, help="Figure title (the cost per eigenvalue is added to it).")
@click.option("--threads", type=int, default=1, show_default=True, callback=positive_int,
              help="torch threads (on a shared machine, more threads can be much slower).")
@click.option("--style", default="paper", show_default=True, **choice("style", styles), help=STYLE_HELP)
@click.option("-o", "--output", required=True, help="Figure: .png, .svg or .pdf (the numbers go beside it as .json).")
def sharpness_command(run_dir, runs, images, every, max_points, method, iters, tol, no_precondition, x_axis,
                      no_cache, data_dir, title, threads, style, output):
    """The top Hessian eigenvalue at each weight snapshot of RUN_DIR, against 2/η.

    Hessian-vector products (torch.func) on a fixed batch of training images, Lanczos
    for the top eigenvalue; for Adam, AdaGrad and RMSProp also the preconditioned
    sharpness λ_max(P⁻¹H) against their own limit (Adam: 2(1+β₁)/((1-β₁)η)).

    \b
    Examples:
      optviz sharpness runs/lecture -o sharpness.png
      optviz mnist --opt sgd:lr=0.07 --subset 2000 --batch-size 2000 --epochs 800 --snapshot-every 5 -o runs/gd
      optviz sharpness runs/gd --style slides -o edge_of_stability.png
    """
    from ..analysis.sharpness import run_sharpness
    from ..views.curvature import sharpness_figure
    from ..views.save import save_figure

    if not 0 < tol < 1:
        raise InvalidValue(f"--tol must be between 0 and 1, got {tol}")
    if max_points < 2:
        raise InvalidValue(f"--max-points must be >= 2, got {max_points}")
    if iters < 2:
        raise InvalidValue(f"--iters must be >= 2, got {iters}")
    path = figure_path(output)
    data = None
    if data_dir is not None:
        from ..mnist.dataset import MNISTData
        from ..mnist.results import RunDir

        c = RunDir.open(run_dir).config()
        data = MNISTData.load(c.get("dataset", "mnist"), data_dir, val_size=c.get("val_size", 10000),
                              split_seed=c.get("split_seed", 0))
    result = run_sharpness(run_dir, images=images, runs=[r.strip() for r in runs.split(",") if r.strip()] if runs
                           else None, every=every, max_points=max_points, method=method, max_iter=iters, tol=tol,
                           precondition=not no_precondition, data=data, cache=not no_cache, threads=threads,
                           log=lambda msg: click.echo(msg, err=True))
    save_figure(sharpness_figure(result, style, title, x=x_axis), path, style=style)
    result.save(path.with_suffix(".json"))
    mem = result.to_dict()["hessian_memory"]
    click.echo(f"  {result.eigenvalues} eigenvalues, {result.seconds_per_eigenvalue:.2f} s and "
               f"{result.products_per_eigenvalue:.0f} Hessian-vector products each (median), on {result.images:,} "
               f"images; the full Hessian would have {mem['entries']:,} entries ({mem['gigabytes']:g} GB in float32)")
    click.echo(f"wrote {path}")
    click.echo(f"wrote {path.with_suffix('.json')}")


@click.command("second-order")
@click.option("--opt", "opts", multiple=True, metavar="SPEC",
              help="Method, repeatable: a first-order optimizer (sgd:lr=0.01, batch=32 by default), "
                   "lbfgs[:history=20,iters=5,batch=0] or newton_cg[:damping=1,cg_iters=20,batch=10000,"
                   "curvature_batch=2000,curvature=gauss_newton|hessian]. Default: SGD, Momentum, Adam, "
                   "L-BFGS, Newton-CG.")
@click.option("--budget", type=float, default=60.0, show_default=True, callback=positive_int,
              help="Seconds of training per method (evaluations not counted).")
@click.option("--subset", type=int, default=None, callback=positive_int, help="Train on the first N images.")
@click.option("--val-images", type=int, default=10000, show_default=True, callback=positive_int,
              help="Validation images for the accuracy.")
@click.option("--val-size", type=int, default=10000, show_default=True, callback=positive_int,
              help="Training images held out for validation (the lecture's split).")
@click.option("--evals", type=int, default=30, show_default=True, callback=positive_int,
              help="Evaluation points per method (log-spaced in time).")
@click.option("--threads", type=int, default=1, show_default=True, callback=positive_int,
              help="torch threads, the same for every method.")
@click.option("--model", default="mlp", show_default=True, help="Network (mlp, deep_mlp, cnn).")
@click.option("--seed", type=int, default=0, show_default=True, help="Initial weights and batch order.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Data folder.")
@click.option("--from", "from_json", type=click.Path(path_type=Path), default=None,
              help="Redraw from a saved .json instead of training.")
@click.option("--style", default="paper", show_default=True, **choice("style", styles), help=STYLE_HELP)
@click.option("-o", "--output", required=True, help="Figure: .png, .svg or .pdf (the numbers go beside it as .json).")
def second_order_command(opts, budget, subset, val_images, val_size, evals, threads, model, seed, data_dir, from_json,
                         style, output):
    """Second-order methods (L-BFGS, Hessian-free Newton-CG) beside first-order ones on MNIST.

    Every method trains from the same initial weights for the same time budget in one loop,
    under one clock (evaluations excluded); the figure shows validation accuracy against
    seconds and against passes over the data, and the memory each method needs beside the
    full Hessian.

    \b
    Examples:
      optviz second-order -o second_order.png
      optviz second-order --budget 10 --opt sgd:lr=0.01 --opt lbfgs:history=10 -o quick.png
      optviz second-order --from second_order.json --style slides -o second_order_slides.png
    """
    from ..analysis.second_order import DEFAULT_METHODS, ComparisonResult, compare_second_order, parse_method
    from ..views.save import save_figure
    from ..views.second_order import format_bytes, second_order_figure

    path = figure_path(output)
    if from_json is not None:
        result = ComparisonResult.load(from_json)
    else:
        methods = list(opts) or list(DEFAULT_METHODS)
        for spec in methods:
            parse_method(spec)                       # bad specs fail before the data is loaded
        from ..mnist.dataset import MNISTData

        data = MNISTData.load(data_dir=data_dir, val_size=val_size, log=lambda msg: click.echo(msg, err=True))
        result = compare_second_order(methods, budget=budget, model=model, seed=seed, data=data, subset=subset,
                                      val_images=val_images, threads=threads, evals=evals,
                                      log=lambda msg: click.echo(msg, err=True))
        result.save(path.with_suffix(".json"))
    for t in result.traces:
        acc = 100 * t.val_acc[-1]
        click.echo(f"  {t.label:<52} {t.seconds[-1]:6.1f} s  {t.passes[-1]:7.2f} data passes  "
                   f"val acc {acc:6.2f}%  memory {format_bytes(4 * (result.num_params + t.state_floats))}")
    mem = result.memory
    click.echo(f"  full Hessian: {mem['parameters']:,}^2 = {mem['entries']:,} entries = {mem['gigabytes']:g} GB "
               f"in float32 ({mem['products_to_form']:,} Hessian-vector products to form it)")
    save_figure(second_order_figure(result, style), path, style=style)
    click.echo(f"wrote {path}")
    if from_json is None:
        click.echo(f"wrote {path.with_suffix('.json')}")


COMMANDS = [stability_command, basins_command, curvature_command, sharpness_command, second_order_command]
