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
Specs this loop does not step (the Newton baselines) are handed to ``race()``.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional

import numpy as np

from .. import optim
from ..errors import OptvizError
from ..optim.state import leaf_paths, short_names
from .race import (BatchRecord, Spec, _check_steps, _noise, _trajectory,
                   escape_box, prepare_race, race as _race_one_by_one)
from .replay import value_and_grad
from .trajectory import Trajectory

__all__ = ["race", "run_lockstep"]


def _index_paths(state, path: tuple = ()) -> List[tuple]:
    """Index paths to the leaves of a state, in :func:`~optviz.optim.state.leaf_paths`' order."""
    if isinstance(state, tuple):
        return [p for i, v in enumerate(state) for p in _index_paths(v, path + (i,))]
    return [path]


class _Optimizer:
    """One optimizer config: its transform, its state, and the buffers race() records."""

    def __init__(self, name: str, hyper: dict, x: np.ndarray, length: int):
        B = len(x)
        hp = {k: (np.asarray(v, dtype=float).reshape(B, 1) if np.ndim(v) else v) for k, v in hyper.items()}
        self.tx = optim.create(name, batch_dims=1, **hp)
        self.state = self.tx.init(x)
        self.looks_ahead = self.tx.eval_point is not None
        self.buffers: Dict[str, np.ndarray] = {}
        self.length = length
        # the state's leaves, named as race() names them, found once: walking the state
        # by name at every step was 40 % of the loop
        paths = leaf_paths(self.state)
        names = short_names(paths)
        self.leaves = [(names[p], where) for p, where in zip(paths, _index_paths(self.state))]
        self.record_buffers(0, x.shape)

    def record_buffers(self, t: int, shape: tuple) -> None:
        """race()'s ``_record_buffers``: copy the (B, 2) buffers of the state into row ``t``."""
        for name, where in self.leaves:
            buf = self.state
            for i in where:
                buf = buf[i]
            if isinstance(buf, np.ndarray) and buf.shape == shape:
                if name not in self.buffers:
                    self.buffers[name] = np.full((self.length,) + shape, np.nan)
                self.buffers[name][t] = buf


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
    steps = _check_steps(steps)
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
    noise_seq = _noise(noise, seed, starts, steps)      # one stream per start, as race() draws it
    if noise_seq is not None:
        noise_seq = np.tile(noise_seq, (1, K, 1))      # (steps, R, 2): every config sees its start's stream
    box = escape_box(surface.domain)
    lo, hi = box[:, 0], box[:, 1]      # race()'s inside(): NaN and inf fail these comparisons too
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
            left = alive & ~((lo <= x_new) & (x_new <= hi)).all(axis=1)
            diverged_at[left] = t + 1
            alive &= ~left
            x = np.where(alive[:, None], x_new, x)
            losses[t], grads[t] = loss, g
            updates[t] = np.where(alive[:, None], u, 0.0)
            xs[t + 1] = x
            for o, r in zip(opts, rows):
                o.record_buffers(t + 1, (B, 2))
        losses[steps], grads[steps] = final_vg(x)
    return [BatchRecord(xs[:, r], losses[:, r], grads[:, r], updates[:, r], o.buffers, diverged_at[r])
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
    unbounded = getattr(surface, "minimum_value", 0.0) is None
    trajectories: List[Trajectory] = []
    for spec in parsed:
        if spec.kind != "optviz":     # Newton, torch.optim, scipy: methods with their own loops
            trajectories += _race_one_by_one(surface, [spec], starts=starts, steps=steps, noise=noise, seed=seed)
            continue
        rec = next(records)
        for b in range(len(starts)):
            trajectories.append(_trajectory(rec, b, spec.key, spec.hyper, spec.label))
            if unbounded and np.isfinite(rec.xy[-1, b]).all():
                trajectories[-1].exit = "escaped"
    return trajectories
