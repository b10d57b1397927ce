"""The notebook API: a figure or an animation in about three lines.

>>> import optviz
>>> paths = optviz.race("rosenbrock")                  # the lecture's five, tuned defaults
>>> optviz.plot("rosenbrock", paths)                   # a matplotlib Figure
>>> optviz.animate("rosenbrock", paths)                # shows inline in Jupyter; .save("rosen.gif")

Functions accept a surface name or a :class:`~optviz.surfaces.ScalarField2D`, and
optimizer specs as strings (``"adam:lr=0.05,beta1=0.8"``, ``"torch:SGD:lr=0.01"``,
``"scipy:BFGS"``), ``(name, dict)`` pairs, torch.optim classes or factories (see
:mod:`optviz.engine.specs`).
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence

from .engine import presets
from .engine.race import Spec, race as _race
from .engine.trajectory import Trajectory
from .errors import UnknownName
from .surfaces import ScalarField2D, get_surface

__all__ = ["race", "plot", "animate", "PLOT_KINDS", "field_of"]


def field_of(function) -> ScalarField2D:
    return get_surface(function) if isinstance(function, str) else function


def race(function, optimizers: Optional[Iterable[Spec]] = None, starts=None, steps: Optional[int] = None,
         noise: float = 0.0, seed: int = 0) -> List[Trajectory]:
    """Run ``optimizers`` (default: the lecture's five, tuned for ``function``) from
    ``starts`` (default: the surface's lecture start) for ``steps`` steps."""
    field = field_of(function)
    specs = list(optimizers) if optimizers else presets.lecture_specs(field.name)
    steps = presets.default_steps(field.name) if steps is None else steps
    return _race(field, specs, starts=starts, steps=steps, noise=noise, seed=seed)


def _plot_kinds():
    from .views import stills

    return {
        "contour": lambda f, p, style, **kw: stills.contour_figure(f, p, style, **kw),
        "surface3d": lambda f, p, style, **kw: stills.surface3d_figure(f, p, style, **kw),
        "loss": lambda f, p, style, **kw: stills.loss_figure(p, style, field=f, **kw),
        "gradient": lambda f, p, style, **kw: stills.gradient_field_figure(f, style, **kw),
        "dashboard": lambda f, p, style, **kw: stills.dashboard_figure(f, p, style, **kw),
    }


PLOT_KINDS = ("contour", "surface3d", "loss", "gradient", "dashboard")


def plot(function, paths: Optional[Sequence[Trajectory]] = None, kind: str = "contour", style: str = "paper",
         **kwargs):
    """A still figure of ``paths`` on ``function`` (kinds: contour, surface3d, loss,
    gradient, dashboard); returns the matplotlib Figure. In a notebook it shows as the
    cell's result, with no ``%matplotlib inline`` needed."""
    from .notebook import shown_inline

    field = field_of(function)
    kinds = _plot_kinds()
    if kind not in kinds:
        raise UnknownName("plot kind", kind, kinds)
    if paths is None and kind != "gradient":
        paths = race(field)
    return shown_inline(kinds[kind](field, paths or [], style, **kwargs))


def animate(function, paths: Optional[Sequence[Trajectory]] = None, style: str = "slides", **kwargs):
    """A :class:`~optviz.views.animate.RaceAnimation`: displays inline in Jupyter,
    ``.save("race.gif" | ".mp4" | ".html")`` writes it."""
    from .views.animate import animate as _animate

    field = field_of(function)
    return _animate(field, race(field) if paths is None else paths, style=style, **kwargs)
