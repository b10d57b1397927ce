"""The 2-D engine: step optimizers across a surface, batched, and record everything.

The engine owns the loop; optimizers are stepped. One call steps a whole batch of
configurations at once: parameters are an array of shape (B, 2) and every
hyperparameter may be an array of shape (B,), so a learning-rate sweep over
10,000 starts is one vectorised run, not 10,000 loops.

Divergence (NaN, inf, or leaving a generous box around the domain) is an event,
never a crash: the path ends at the last point inside, and the step it left at is
recorded.
"""
from __future__ import annotations

from typing import Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np

from .. import optim
from ..errors import InvalidValue
from ..memory import check_memory
from ..optim.base import GradientTransformation
from . import external, newton
from .record import (BatchRecord, BufferRecorder, check_record_memory, check_noise, check_steps as _check_steps,
                     count_buffers, escape_box, gradient_noise as _noise, inside, record_bytes)
from .specs import OptimizerSpec, parse_specs
from .trajectory import Trajectory

__all__ = ["BatchRecord", "run_batch", "race", "parse_specs", "Spec", "escape_box", "inside"]

#: An optimizer as race() takes it: "adam:lr=0.05", ("adam", {"lr": 0.05}), "torch:SGD:lr=0.01",
#: "scipy:BFGS", a torch.optim.Optimizer class or factory, or an OptimizerSpec (see engine.specs).
Spec = Union[str, Tuple[str, Mapping[str, object]], OptimizerSpec, object]


def run_batch(surface, name: str, hyperparams: Mapping[str, object], starts: np.ndarray, steps: int,
              noise: float = 0.0, seed: Optional[int] = 0, record: bool = True,
              box: Optional[np.ndarray] = None) -> BatchRecord:
    """Step ``B = len(starts)`` copies of optimizer ``name`` in one vectorised loop.

    ``hyperparams`` values are scalars or arrays of shape (B,) (one per row).
    ``noise`` adds seeded Gaussian noise of that standard deviation to every
    gradient (the stochastic setting); the noise depends on the seed and the row's
    start only, so all optimizers of a comparison see the same noise.
    ``record=False`` keeps only the final positions and divergence (for sweeps).
    """
    steps = _check_steps(steps)
    x = np.array(starts, dtype=float).reshape(-1, 2)
    B = len(x)
    tx = create_batched(name, hyperparams, B)
    state = tx.init(x)
    check_record_memory(steps, B, count_buffers(state, x.shape) + bool(noise),
                        f"{steps:,} steps of {name} for {B:,} configuration(s)", record=record)
    box = escape_box(surface.domain) if box is None else box
    noise_seq = _noise(noise, seed, x, steps)

    T1 = steps + 1 if record else 1
    xs = np.empty((T1, B, 2)); losses = np.empty((T1, B)); grads = np.full((T1, B, 2), np.nan)
    updates = np.zeros((max(T1 - 1, 0), B, 2))
    buffers = BufferRecorder(state, T1)
    xs[0] = x
    diverged_at = np.full(B, -1)
    alive = np.ones(B, dtype=bool)
    if record:
        buffers.record(0, state, x.shape)

    with np.errstate(all="ignore"):  # diverging rows overflow; they are caught below
        for t in range(steps):
            point = optim.evaluation_point(tx, x, state)
            if point is x:  # the gradient is taken where we stand: loss and gradient in one pass
                loss, g = surface.value_and_grad(x)
            else:           # look-ahead: the gradient elsewhere, the loss (if recorded) here
                loss, g = (surface.value(x) if record else None), surface.grad(point)
            if noise_seq is not None:
                g = g + noise_seq[t]
            u, state = tx.update(g, state, x)
            x_new = x + u
            left = alive & ~inside(x_new, box)
            diverged_at[left] = t + 1
            alive &= ~left
            x = np.where(alive[:, None], x_new, x)
            if record:
                losses[t], grads[t] = loss, g
                updates[t] = np.where(alive[:, None], u, 0.0)
                xs[t + 1] = x
                buffers.record(t + 1, state, x.shape)
    if record:
        losses[steps], grads[steps] = surface.value_and_grad(x)
    else:
        xs[0], losses[0] = x, surface.value(x)
    return BatchRecord(xs, losses, grads, updates, buffers.buffers, diverged_at)


def create_batched(name: str, hyperparams: Mapping[str, object], rows: int) -> GradientTransformation:
    """Optimizer ``name`` for ``rows`` independent configurations (the engine's batch):
    a hyperparameter given as an array, one value per row, becomes a (rows, 1) column."""
    hyper = {k: (np.asarray(v, dtype=float).reshape(rows, 1) if np.ndim(v) else v) for k, v in hyperparams.items()}
    return optim.create(name, batch_dims=1, **hyper)


def race(surface, specs: Iterable[Spec], starts=None, steps: int = 300, noise: float = 0.0,
         seed: Optional[int] = 0) -> List[Trajectory]:
    """Run each optimizer spec from each start; one :class:`Trajectory` per (spec, start).

    Specs of every kind (:mod:`optviz.engine.specs`) race side by side: the core's
    optimizers, Newton's baselines, torch.optim's and scipy.optimize's. Everything is
    checked (specs, starts, noise, the memory the paths need) before anything runs.

    >>> from optviz.surfaces import get_surface
    >>> paths = race(get_surface("rosenbrock"), ["sgd:lr=1e-3", "adam:lr=0.05"], steps=200)
    """
    steps, starts, parsed = prepare_race(surface, specs, starts, steps, noise, seed)
    return [path for spec in parsed for path in run_spec(surface, spec, starts, steps, noise, seed)]


def run_spec(surface, spec: OptimizerSpec, starts: np.ndarray, steps: int, noise: float = 0.0,
             seed: Optional[int] = 0) -> List[Trajectory]:
    """The paths of one parsed spec, one per start, as :func:`race` makes them; the
    arguments are taken as :func:`prepare_race` returns them, checked."""
    if spec.kind == "torch":
        return _mark_escaped(surface, external.run_torch(surface, spec, starts, steps, noise=noise, seed=seed))
    if spec.kind == "scipy":
        return _mark_escaped(surface, external.run_scipy(surface, spec, starts, steps, noise=noise))
    if spec.kind == "newton":
        rec = newton.run_batch(surface, spec.name, spec.hyper, starts, steps)
    else:
        rec = run_batch(surface, spec.name, spec.hyper, starts, steps, noise=noise, seed=seed)
    return trajectories_of(surface, spec, rec)


def trajectories_of(surface, spec: OptimizerSpec, rec: BatchRecord) -> List[Trajectory]:
    """One :class:`Trajectory` per row of ``rec``, a batched run of ``spec`` on ``surface``."""
    return _mark_escaped(surface, [_trajectory(rec, b, spec.key, spec.hyper, spec.label)
                                   for b in range(len(rec.diverged_at))])


def _mark_escaped(surface, paths: List[Trajectory]) -> List[Trajectory]:
    """On a surface unbounded below (``minimum_value`` None) a path that ends at a finite
    point has escaped, not diverged: leaving is the point there."""
    if getattr(surface, "minimum_value", 0.0) is None:
        for path in paths:
            if np.isfinite(path.xy[-1]).all():
                path.exit = "escaped"
    return paths


def prepare_race(surface, specs: Iterable[Spec], starts, steps: int, noise: float, seed):
    """``(steps, starts, parsed specs)`` of a race, every one checked, and the memory its
    recorded paths need checked against the budget, before anything runs."""
    steps = _check_steps(steps)
    starts = _check_starts(surface, surface.starts[:1] if starts is None else starts)
    check_noise(noise, seed)
    parsed = parse_specs(specs)
    check_memory(sum(record_bytes(steps, len(starts), s.buffers() + bool(noise)) for s in parsed),
                 f"racing {len(parsed)} optimizer(s) for {steps:,} steps from {len(starts)} start(s)",
                 "use fewer --steps or fewer starts")
    return steps, starts, parsed


def _trajectory(rec: BatchRecord, b: int, name: str, hyper, label: str) -> Trajectory:
    k = int(rec.diverged_at[b])
    end = len(rec.xy) if k < 0 else k  # positions 0 .. k-1 are the ones inside
    return Trajectory(
        optimizer=name, hyperparams=dict(hyper), label=label,
        xy=rec.xy[:end, b].copy(), loss=rec.loss[:end, b].copy(), grad=rec.grad[:end, b].copy(),
        step=rec.step[:end - 1, b].copy(),
        state={key: v[:end, b].copy() for key, v in rec.state.items()},
        diverged_at=None if k < 0 else k,
    )


def _check_starts(surface, starts) -> np.ndarray:
    try:
        starts = np.array(starts, dtype=float).reshape(-1, 2)
    except (TypeError, ValueError):
        raise InvalidValue(f"a start must be a pair of numbers x,y, got {starts!r}") from None
    (x0, x1), (y0, y1) = surface.domain
    for s in starts:
        if not (np.isfinite(s).all() and x0 <= s[0] <= x1 and y0 <= s[1] <= y1):
            raise InvalidValue(f"start ({s[0]:g}, {s[1]:g}) is outside the domain of {surface.name}: "
                               f"x in [{x0:g}, {x1:g}], y in [{y0:g}, {y1:g}]")
    return starts
