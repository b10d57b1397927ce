"""The 2-D toolkit's commands: ``plot``, ``animate`` and ``demo``."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import InvalidValue
from ._common import (STYLE_HELP, arrow_kinds, check_extension, check_name, choice, complete_from, complete_functions,
                      complete_specs, complete_styles, figure_path, finite_nonneg, finite_positive, frame_schedules,
                      nonneg_int, parse_starts, plot_kinds, positive_int, styles)

ANIMATION_FORMATS = ("gif", "mp4", "html")


def _race_options(f):
    for option in reversed([
        click.argument("function", shell_complete=complete_functions),
        click.option("--opt", "opts", multiple=True, metavar="SPEC", shell_complete=complete_specs,
                     help="Optimizer with hyperparameters, repeatable: --opt sgd:lr=0.001 --opt adam:lr=0.05,beta1=0.8. "
                          "Also newton, damped_newton, saddle_free_newton; any torch.optim class "
                          "(torch:SGD:lr=0.01,momentum=0.9) or registry name (torch:adam); scipy.optimize methods "
                          "(scipy:BFGS, scipy:L-BFGS-B, scipy:Nelder-Mead, ...). "
                          "Default: the lecture's five, tuned per function."),
        click.option("--start", "starts", multiple=True, metavar="X,Y",
                     help="Start point, repeatable (write --start=-1.5,2 for negative x). Default: the function's lecture start."),
        click.option("--steps", type=int, default=None, callback=positive_int, help="Steps per optimizer."),
        click.option("--noise", type=float, default=0.0, show_default=True, callback=finite_nonneg,
                     help="Std of Gaussian noise added to every gradient (the stochastic setting)."),
        click.option("--seed", type=int, default=0, show_default=True, callback=nonneg_int,
                     help="Seed for the gradient noise (>= 0)."),
        click.option("--style", default=None, help=STYLE_HELP, shell_complete=complete_styles),
    ]):
        f = option(f)
    return f


def _run(function, opts, starts, steps, noise, seed):
    from .. import api
    from ..surfaces import get_surface

    surface = get_surface(function)
    paths = api.race(surface, list(opts) or None, starts=parse_starts(starts) or None, steps=steps,
                     noise=noise, seed=seed)
    return surface, paths


def _check_style(style, default):
    """``--style``, or the command's own default; checked in the command (its default differs)."""
    return check_name("style", style or default, styles())


@click.command("plot")
@_race_options
@click.option("--kind", default="contour", show_default=True, help="contour, surface3d, loss, gradient or dashboard.",
              shell_complete=complete_from(plot_kinds))
@click.option("-o", "--output", required=True, help="Output file: .png, .svg or .pdf.")
def plot_command(function, opts, starts, steps, noise, seed, style, kind, output):
    """Race optimizers across FUNCTION and draw a still figure.

    \b
    Examples:
      optviz plot rosenbrock -o rosen.png
      optviz plot beale --opt sgd:lr=1e-3 --opt adam:lr=0.05 --kind dashboard --style slides -o beale.pdf
    """
    from .. import api
    from ..views.save import save_figure

    style = _check_style(style, "paper")
    check_name("plot kind", kind, plot_kinds())
    path = figure_path(output)
    surface, paths = _run(function, opts, starts, steps, noise, seed)
    extra = {"title": _noisy_title(surface, noise, seed)} if noise and kind != "gradient" else {}
    fig = api.plot(surface, paths, kind=kind, style=style, **extra)
    save_figure(fig, path, style=style)
    _report(paths)
    click.echo(f"wrote {path}")


@click.command("animate")
@_race_options
@click.option("--frames", type=int, default=300, show_default=True, callback=positive_int,
              help="Frames (at most one per step).")
@click.option("--fps", type=float, default=30, show_default=True, callback=finite_positive, help="Frames per second.")
@click.option("--schedule", default="linear", show_default=True, **choice("frame schedule", frame_schedules),
              metavar="[linear|log|all]",
              help="How frames map to steps: evenly thinned, log-spaced (early steps dense), or every step.")
@click.option("--arrows", default="", metavar="KINDS",
              help="Comma-separated arrows at each point: grad, momentum, step.",
              shell_complete=complete_from(lambda: (*arrow_kinds(), "grad,momentum")))
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("-o", "--output", required=True, help="Output file: .gif, .mp4 or .html.")
def animate_command(function, opts, starts, steps, noise, seed, style, frames, fps, schedule, arrows,
                    no_progress, output):
    """Animate optimizers racing across FUNCTION.

    \b
    Examples:
      optviz animate rosenbrock -o rosen.gif
      optviz animate saddle --opt sgd:lr=0.01 --opt momentum:lr=0.01 --arrows grad,momentum -o saddle.mp4
    """
    from ..engine.presets import default_steps
    from ..surfaces import get_surface
    from ..views.animate import animate, check_animation

    style = _check_style(style, "slides")
    path = check_extension(output, ANIMATION_FORMATS)
    arrow_list = tuple(a.strip() for a in arrows.split(",") if a.strip())
    for kind in arrow_list:
        check_name("arrow kind", kind, arrow_kinds())
    n_steps = steps or default_steps(get_surface(function).name)
    # the format's frame rates, an HTML player's memory, and a real write probe of the path
    path = check_animation(path, n_steps + 1 if schedule == "all" else min(frames, n_steps + 1), fps)
    surface, paths = _run(function, opts, starts, steps, noise, seed)
    anim = animate(surface, paths, style=style, frames=frames, schedule=schedule, fps=fps, arrows=arrow_list,
                   title=_noisy_title(surface, noise, seed) if noise else None)
    anim.save(path, progress=not no_progress)
    _report(paths)
    click.echo(f"wrote {path} ({anim.n_frames} frames)")


@click.command("sweep")
@click.argument("function", shell_complete=complete_functions)
@click.option("--opt", "opts", multiple=True, metavar="SPEC", shell_complete=complete_specs,
              help="Optimizer (its lr is swept), repeatable: --opt momentum:momentum=0.5. Default: the lecture's five.")
@click.option("--lr-min", type=float, default=1e-5, show_default=True, callback=finite_positive,
              help="Smallest learning rate.")
@click.option("--lr-max", type=float, default=1.0, show_default=True, callback=finite_positive,
              help="Largest learning rate.")
@click.option("--num", type=int, default=41, show_default=True, callback=positive_int, help="Rates, log-spaced.")
@click.option("--starts", "n_starts", type=int, default=64, show_default=True, callback=positive_int,
              help="Random starts (seeded) per rate.")
@click.option("--steps", type=int, default=300, show_default=True, callback=positive_int, help="Steps per run.")
@click.option("--seed", type=int, default=0, show_default=True, callback=nonneg_int, help="Seed for the starts (>= 0).")
@click.option("--style", default=None, help=STYLE_HELP, shell_complete=complete_styles)
@click.option("-o", "--output", required=True, help="Output file: .png, .svg or .pdf.")
def sweep_command(function, opts, lr_min, lr_max, num, n_starts, steps, seed, style, output):
    """How much tuning matters: final loss against learning rate on FUNCTION.

    Every (rate, start) pair of an optimizer is one row of a single batched run.

    \b
    Example:
      optviz sweep rosenbrock -o tuning.png
    """
    import numpy as np

    from ..engine.sweep import lr_sweep, random_starts
    from ..optim import LECTURE_FIVE
    from ..surfaces import get_surface
    from ..views.save import save_figure
    from ..views.sensitivity import sensitivity_figure

    from ..engine.specs import parse_spec

    style = _check_style(style, "paper")
    if not 0 < lr_min < lr_max:
        raise InvalidValue(f"need 0 < --lr-min < --lr-max, got {lr_min:g} and {lr_max:g}")
    path = figure_path(output)
    surface = get_surface(function)
    specs = [parse_spec(o) for o in opts] or list(LECTURE_FIVE)
    result = lr_sweep(surface, specs, np.logspace(np.log10(lr_min), np.log10(lr_max), num),
                      random_starts(surface, n_starts, seed), steps)
    save_figure(sensitivity_figure(result, surface, style), path, style=style)
    for name, lr in result.best_lr().items():
        click.echo(f"  {name:<12} best lr {lr:.3g}")
    click.echo(f"wrote {path}")


@click.command("demo")
@click.option("-o", "--output", "out_dir", default="demo", show_default=True, help="Folder for the files.")
@click.option("--style", default="slides", show_default=True, help=STYLE_HELP, shell_complete=complete_styles)
@click.option("--frames", type=int, default=200, show_default=True, callback=positive_int,
              help="Frames per animation.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def demo_command(out_dir, style, frames, no_progress):
    """Render a lecture set: stills and animations on Rosenbrock, Beale and a saddle.

    \b
    Example:
      optviz demo -o demo/
    """
    from ..demo import render_demo
    from ..io import check_output_dir
    from ..views.animate import check_animation

    style = _check_style(style, "slides")
    out_dir = check_output_dir(out_dir)
    check_animation(out_dir / "demo.gif", frames, 30)
    for path in render_demo(Path(out_dir), style=style, frames=frames, progress=not no_progress):
        click.echo(f"wrote {path}")


def _noisy_title(surface, noise, seed) -> str:
    """The field's title, saying that the gradients were noisy (a figure must not hide it)."""
    from ..views.stills import field_title

    return f"{field_title(surface)}   (gradient noise σ={noise:g}, seed {seed})"


def _report(paths):
    for p in paths:
        status = f"diverged at step {p.diverged_at}" if p.diverged else f"loss {p.loss[-1]:.4g}"
        click.echo(f"  {p.label:<40} {p.n_steps:>5} steps  {status}")


COMMANDS = [plot_command, animate_command, sweep_command, demo_command]
