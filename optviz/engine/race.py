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

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np

from .. import optim
from ..errors import InvalidValue
from ..optim import registry
from ..optim.state import named_leaves
from .trajectory import Trajectory

__all__ = ["BatchRecord", "run_batch", "race", "parse_specs", "Spec", "escape_box"]

Spec = Union[str, Tuple[str, Mapping[str, object]]]


@dataclass
class BatchRecord:
    """Arrays of one batched run; B = number of configurations, T = steps."""
    xy: np.ndarray            # (T + 1, B, 2); after divergence frozen at the last point inside
    loss: np.ndarray          # (T + 1, B)
    grad: np.ndarray          # (T + 1, B, 2) gradient where it was taken (the look-ahead point for NAG)
    step: np.ndarray          # (T, B, 2) the update applied
    state: Dict[str, np.ndarray]  # name -> (T + 1, B, 2) optimizer buffers
    diverged_at: np.ndarray   # (B,) step at which each left, -1 if it never did

    def final(self) -> np.ndarray:
        return self.xy[-1]


def inside(x: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(B,) which rows of ``x`` (B, 2) are finite and inside ``box`` [[x0, x1], [y0, y1]]."""
    return (np.isfinite(x).all(axis=1) & (box[0, 0] <= x[:, 0]) & (x[:, 0] <= box[0, 1])
            & (box[1, 0] <= x[:, 1]) & (x[:, 1] <= box[1, 1]))


def escape_box(domain, margin: float = 2.0) -> np.ndarray:
    """The domain widened by ``margin`` times its size on every side: [[x0, x1], [y0, y1]]."""
    (x0, x1), (y0, y1) = domain
    w, h = x1 - x0, y1 - y0
    return np.array([[x0 - margin * w, x1 + margin * w], [y0 - margin * h, y1 + margin * h]])


def _check_steps(steps) -> int:
    if int(steps) != steps or steps <= 0:
        raise InvalidValue(f"steps must be a positive integer, got {steps!r}")
    return int(steps)


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
    hyper = {k: (np.asarray(v, dtype=float).reshape(B, 1) if np.ndim(v) else v) for k, v in hyperparams.items()}
    tx = optim.create(name, batch_dims=1, **hyper)  # rows are independent configurations
    state = tx.init(x)
    box = escape_box(surface.domain) if box is None else box
    noise_seq = _noise(noise, seed, x, steps)

    T1 = steps + 1 if record else 1
    xs = np.empty((T1, B, 2)); losses = np.empty((T1, B)); grads = np.full((T1, B, 2), np.nan)
    updates = np.zeros((max(T1 - 1, 0), B, 2))
    buffers: Dict[str, np.ndarray] = {}
    xs[0] = x
    diverged_at = np.full(B, -1)
    alive = np.ones(B, dtype=bool)
    if record:
        _record_buffers(buffers, state, x.shape, T1, 0)

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
                _record_buffers(buffers, state, x.shape, T1, t + 1)
    if record:
        losses[steps], grads[steps] = surface.value_and_grad(x)
    else:
        xs[0], losses[0] = x, surface.value(x)
    return BatchRecord(xs, losses, grads, updates, buffers, diverged_at)


def _record_buffers(buffers, state, shape, length, t) -> None:
    """Copy the optimizer's (B, 2) buffers (momentum, moments, ...) into row ``t``."""
    for key, buf in named_leaves(state).items():
        if isinstance(buf, np.ndarray) and buf.shape == shape:
            buffers.setdefault(key, np.full((length,) + shape, np.nan))[t] = buf


def _noise(sigma: float, seed, starts: np.ndarray, steps: int) -> Optional[np.ndarray]:
    if not sigma:
        return None
    if sigma < 0:
        raise InvalidValue(f"noise must be >= 0, got {sigma!r}")
    # One stream per distinct start: common random numbers across optimizers.
    out = np.empty((steps,) + starts.shape)
    for i, s in enumerate(starts):
        key = [int(seed or 0)] + [int(v) for v in np.frombuffer(s.tobytes(), dtype=np.uint32)]
        out[:, i] = sigma * np.random.default_rng(key).standard_normal((steps, 2))
    return out


def parse_specs(specs: Iterable[Spec]) -> List[Tuple[str, Dict[str, object]]]:
    """``"adam:lr=0.05"`` or ``("adam", {"lr": 0.05})`` -> checked ``(name, hyperparams)`` pairs."""
    from . import newton

    out = []
    for spec in specs:
        if isinstance(spec, str):
            name = spec.split(":", 1)[0].strip()
            out.append(newton.parse_spec(spec) if name in newton.METHODS else registry.parse_spec(spec))
        else:
            name, hyper = spec
            if name in newton.METHODS:
                out.append(newton.parse_spec(name + ":" + ",".join(f"{k}={v}" for k, v in hyper.items())))
            else:
                registry.create(name, **hyper)
                out.append((name, dict(hyper)))
    return out


def race(surface, specs: Iterable[Spec], starts=None, steps: int = 300, noise: float = 0.0,
         seed: Optional[int] = 0) -> List[Trajectory]:
    """Run each optimizer spec from each start; one :class:`Trajectory` per (spec, start).

    >>> from optviz.surfaces import get_surface
    >>> paths = race(get_surface("rosenbrock"), ["sgd:lr=1e-3", "adam:lr=0.05"], steps=200)
    """
    from . import newton

    steps = _check_steps(steps)
    starts = _check_starts(surface, surface.starts[:1] if starts is None else starts)
    trajectories = []
    for name, hyper in parse_specs(specs):
        if name in newton.METHODS:
            rec = newton.run_batch(surface, name, hyper, starts, steps)
            label = newton.label(name, hyper)
        else:
            rec = run_batch(surface, name, hyper, starts, steps, noise=noise, seed=seed)
            label = registry.format_spec(name, hyper)
        for b in range(len(starts)):
            trajectories.append(_trajectory(rec, b, name, hyper, label))
            if getattr(surface, "minimum_value", 0.0) is None and np.isfinite(rec.xy[-1, b]).all():
                trajectories[-1].exit = "escaped"
    return trajectories


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
