"""A race in lockstep: all optimizers take step t together, from one gradient call.

:func:`optviz.engine.race.race` runs one optimizer after another, each with its own
loop, so the lecture's five x 500 steps cost 2,505 calls of ``value_and_grad`` (about
430 ms). The explorer redraws a race while a slider moves, with a budget of 50 ms.
Here the loop runs once: at step t the points of every optimizer (and every start)
are stacked into one array, one gradient call serves them all, and each optimizer
takes its step from its rows. With the gradient replayed instead of retraced
(:mod:`optviz.engine.replay`) the five x 500 steps take about 20 ms.

The result is the same list of :class:`~optviz.engine.Trajectory` as ``race()``'s,
equal to the last bit (a test checks it on every surface): the optimizers, the noise
(one stream per start, shared by all optimizers), the divergence rule and the records
are race()'s own; stacking rows changes nothing, because a surface is elementwise.
Specs this loop does not step (Newton's baselines, torch's, scipy's) run as in ``race()``.
"""
from __future__ import annotations

from typing import Iterable, List, Optional

import numpy as np

from .. import optim
from ..errors import OptvizError
from .race import Spec, create_batched, prepare_race, run_spec, trajectories_of
from .record import BatchRecord, BufferRecorder, check_steps, escape_box, gradient_noise, inside
from .replay import value_and_grad
from .trajectory import Trajectory

__all__ = ["race", "run_lockstep"]


class _Optimizer:
    """One optimizer config: its transform, its state, and the buffers race() records."""

    def __init__(self, name: str, hyper: dict, x: np.ndarray, length: int):
        self.tx = create_batched(name, hyper, len(x))
        self.state = self.tx.init(x)
        self.looks_ahead = self.tx.eval_point is not None
        self.buffers = BufferRecorder(self.state, length)
        self.buffers.record(0, self.state, x.shape)


def run_lockstep(surface, configs, starts: np.ndarray, steps: int, noise: float = 0.0,
                 seed: Optional[int] = 0) -> List[BatchRecord]:
    """One :class:`~optviz.engine.race.BatchRecord` per ``(name, hyperparams)`` config,
    each equal to ``run_batch(surface, name, hyperparams, starts, steps, noise, seed)``,
    computed in one loop with one gradient call per step.

    The rows of all configs are stacked, config after config (``K`` configs x ``B`` starts):
    the positions, the divergence bookkeeping and the records are one array each, so
    that part of a step costs the same for one optimizer as for ten; only ``update``
    runs per config, on its rows.
    """
    steps = check_steps(steps)
    if not hasattr(surface, "value_and_grad"):
        raise OptvizError(f"{getattr(surface, 'name', 'this field')} has no gradient: optimizers cannot run on it")
    starts = np.array(starts, dtype=float).reshape(-1, 2)
    B, K = len(starts), len(configs)
    if K == 0:
        return []
    R = K * B
    rows = [slice(k * B, (k + 1) * B) for k in range(K)]
    opts = [_Optimizer(name, hyper, starts, steps + 1) for name, hyper in configs]
    ahead = [k for k, o in enumerate(opts) if o.looks_ahead]
    noise_seq = gradient_noise(noise, seed, starts, steps)   # one stream per start, as race() draws it
    if noise_seq is not None:
        noise_seq = np.tile(noise_seq, (1, K, 1))      # (steps, R, 2): every config sees its start's stream
    box = escape_box(surface.domain)
    vg = value_and_grad(surface, R + B * len(ahead))   # look-ahead configs add rows: the loss where they stand
    final_vg = value_and_grad(surface, R)

    x = np.tile(starts, (K, 1))                         # (R, 2)
    xs = np.empty((steps + 1, R, 2)); losses = np.empty((steps + 1, R))
    grads = np.full((steps + 1, R, 2), np.nan); updates = np.zeros((steps, R, 2))
    xs[0] = x
    diverged_at = np.full(R, -1)
    alive = np.ones(R, dtype=bool)
    with np.errstate(all="ignore"):                 # diverging rows overflow; they are caught as in race()
        for t in range(steps):
            if ahead:
                points = x.copy()
                for k in ahead:
                    points[rows[k]] = optim.evaluation_point(opts[k].tx, x[rows[k]], opts[k].state)
                value, g = vg(np.concatenate([points] + [x[rows[k]] for k in ahead]))
                loss, g = value[:R].copy(), g[:R]
                for i, k in enumerate(ahead):       # the loss where the config stands, not where it looked
                    loss[rows[k]] = value[R + i * B: R + (i + 1) * B]
            else:
                loss, g = vg(x)
            if noise_seq is not None:
                g = g + noise_seq[t]
            u = np.empty_like(x)
            for o, r in zip(opts, rows):
                u[r], o.state = o.tx.update(g[r], o.state, x[r])
            x_new = x + u
            left = alive & ~inside(x_new, box)
            diverged_at[left] = t + 1
            alive &= ~left
            x = np.where(alive[:, None], x_new, x)
            losses[t], grads[t] = loss, g
            updates[t] = np.where(alive[:, None], u, 0.0)
            xs[t + 1] = x
            for o in opts:
                o.buffers.record(t + 1, o.state, (B, 2))
        losses[steps], grads[steps] = final_vg(x)
    return [BatchRecord(xs[:, r], losses[:, r], grads[:, r], updates[:, r], o.buffers.buffers, diverged_at[r])
            for o, r in zip(opts, rows)]


def race(surface, specs: Iterable[Spec], starts=None, steps: int = 300, noise: float = 0.0,
         seed: Optional[int] = 0) -> List[Trajectory]:
    """:func:`optviz.engine.race.race`, computed in lockstep: the same trajectories, in the same order.

    >>> from optviz.surfaces import get_surface
    >>> paths = race(get_surface("rosenbrock"), ["sgd:lr=1e-3", "adam:lr=0.05"], steps=200)
    """
    steps, starts, parsed = prepare_race(surface, specs, starts, steps, noise, seed)
    mine = [(s.name, s.hyper) for s in parsed if s.kind == "optviz"]
    records = iter(run_lockstep(surface, mine, starts, steps, noise=noise, seed=seed))
    trajectories: List[Trajectory] = []
    for spec in parsed:
        if spec.kind == "optviz":
            trajectories += trajectories_of(surface, spec, next(records))
        else:     # Newton, torch.optim, scipy: methods with their own loops
            trajectories += run_spec(surface, spec, starts, steps, noise, seed)
    return trajectories
