"""The demo set: what ``optviz demo`` renders (and the 2-D part of the gallery).

Each entry is one figure or animation made from the library's public functions;
nothing here draws by itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from . import api
from .engine.sweep import lr_sweep, random_starts
from .optim import LECTURE_FIVE
from .views.save import save_figure
from .views.sensitivity import sensitivity_figure

__all__ = ["render_demo"]

NEWTON_VS_SADDLE = ["sgd:lr=0.05", "momentum:lr=0.05,momentum=0.9", "adam:lr=0.05", "newton", "saddle_free_newton"]
#: The lecture's "next steps" beside Adam (rates from benchmarks/tune_presets.py; Adadelta at the paper's 1).
NEXT_STEPS = ["adam:lr=0.1", "rmsprop:lr=0.05", "adadelta:lr=1", "nadam:lr=0.1"]


def render_demo(out_dir: Path, style: str = "slides", frames: int = 200, progress: bool = True) -> Iterator[Path]:
    """Write the demo files into ``out_dir``, yielding each path as it is written."""
    from .views.animate import animate

    out_dir = Path(out_dir)
    for name in ("rosenbrock", "beale", "saddle"):
        paths = api.race(name)
        yield save_figure(api.plot(name, paths, kind="contour", style=style), out_dir / f"{name}.png", style=style)
        yield save_figure(api.plot(name, paths, kind="dashboard", style=style), out_dir / f"{name}_dashboard.png",
                          style=style)
        anim = animate(api.field_of(name), paths, style=style, frames=frames)
        yield anim.save(out_dir / f"{name}.gif", progress=progress)
    saddle = api.race("saddle", NEWTON_VS_SADDLE, starts=[(-1.5, 0.3)], steps=60)
    yield save_figure(api.plot("saddle", saddle, kind="contour", style=style), out_dir / "saddle_newton.png",
                      style=style)
    yield save_figure(api.plot("rosenbrock", kind="surface3d", style=style), out_dir / "rosenbrock_3d.png",
                      style=style)
    next_steps = api.race("rosenbrock", NEXT_STEPS, steps=400)
    yield save_figure(api.plot("rosenbrock", next_steps, kind="dashboard", style=style),
                      out_dir / "rosenbrock_next_steps.png", style=style)
    # the lecture's open questions: gradient clipping for momentum, and how much tuning matters
    yield save_figure(api.plot("cliff", kind="dashboard", style=style), out_dir / "cliff_clipping.png", style=style)
    surface = api.field_of("rosenbrock")
    result = lr_sweep(surface, list(LECTURE_FIVE), np.logspace(-5, 0, 41), random_starts(surface, 64), 300)
    yield save_figure(sensitivity_figure(result, surface, style), out_dir / "rosenbrock_tuning.png", style=style)
