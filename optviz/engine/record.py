"""What one batched run leaves in memory, and the box a path must stay in.

Shared by the first-order loop (:mod:`~optviz.engine.race`), the Newton baselines
(:mod:`~optviz.engine.newton`) and the optimizers brought from torch and scipy
(:mod:`~optviz.engine.external`), so that none of them imports another's module for
it and the engine reads top to bottom: record <- newton, external <- race <- sweep.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from ..errors import InvalidValue
from ..memory import check_memory
from ..optim.state import leaf_paths, named_leaves, short_names

__all__ = ["BatchRecord", "BufferRecorder", "inside", "escape_box", "check_steps", "count_buffers", "record_bytes",
           "check_record_memory", "check_noise", "gradient_noise"]


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


def _index_paths(state, path: tuple = ()) -> List[tuple]:
    """Index paths to the leaves of a state, in :func:`~optviz.optim.state.leaf_paths`' order."""
    if isinstance(state, tuple):
        return [p for i, v in enumerate(state) for p in _index_paths(v, path + (i,))]
    return [path]


class BufferRecorder:
    """An optimizer's buffers (momentum, moments, ...) step by step: ``buffers[name]`` is a
    ``(length,) + shape`` array whose row ``t`` holds the leaf ``name`` of the state after
    step ``t`` (NaN where it was not an array of the parameters' shape). Leaves are named
    as :func:`~optviz.optim.state.named_leaves` names them."""

    def __init__(self, state, length: int):
        paths = leaf_paths(state)
        names = short_names(paths)
        # each leaf's name and index path, found once: walking the state by name at every
        # step was 40 % of the explorer's loop
        self._leaves = [(names[p], where) for p, where in zip(paths, _index_paths(state))]
        self.length = length
        self.buffers: Dict[str, np.ndarray] = {}

    def record(self, t: int, state, shape: tuple) -> None:
        """Copy the leaves of ``state`` that are arrays of ``shape`` into row ``t``."""
        for name, where in self._leaves:
            buf = state
            for i in where:
                buf = buf[i]
            if isinstance(buf, np.ndarray) and buf.shape == shape:
                if name not in self.buffers:
                    self.buffers[name] = np.full((self.length,) + shape, np.nan)
                self.buffers[name][t] = buf


def inside(x: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(B,) which rows of ``x`` (B, 2) are finite and inside ``box`` [[x0, x1], [y0, y1]]."""
    return (np.isfinite(x).all(axis=1) & (box[0, 0] <= x[:, 0]) & (x[:, 0] <= box[0, 1])
            & (box[1, 0] <= x[:, 1]) & (x[:, 1] <= box[1, 1]))


def escape_box(domain, margin: float = 2.0) -> np.ndarray:
    """The domain widened by ``margin`` times its size on every side: [[x0, x1], [y0, y1]]."""
    (x0, x1), (y0, y1) = domain
    w, h = x1 - x0, y1 - y0
    return np.array([[x0 - margin * w, x1 + margin * w], [y0 - margin * h, y1 + margin * h]])


def check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, float, np.integer, np.floating)) \
            or not np.isfinite(steps) or int(steps) != steps or steps <= 0:
        raise InvalidValue(f"steps must be a positive integer, got {steps!r}")
    return int(steps)


def count_buffers(state, shape: tuple) -> int:
    """How many leaves of an optimizer ``state`` have the parameters' ``shape``: the buffers
    (momentum, moments, ...) a run records at every step."""
    return sum(1 for b in named_leaves(state).values() if getattr(b, "shape", None) == shape)


def record_bytes(steps: int, rows: int, n_buffers: int = 0, record: bool = True) -> int:
    """Bytes a run of ``rows`` configurations for ``steps`` steps holds at its peak.

    Recorded: positions, gradients, updates and each (2,)-buffer per step and row
    (float64, 16 bytes a pair) plus the loss (8), and once more for the per-path copies
    a race keeps. Not recorded (sweeps): a few (rows, 2) working arrays per buffer.
    """
    per_row_step = 16 * (3 + n_buffers) + 8
    if record:
        return int(2 * (steps + 1) * rows * per_row_step)
    return int(rows * (16 * (10 + 2 * n_buffers) + 96))   # measured: 240-290 B a row (sgd, adam)


def check_record_memory(steps: int, rows: int, n_buffers: int, what: str, record: bool = True,
                        budget: Optional[int] = None) -> int:
    """:func:`record_bytes`, refused up front when it exceeds the memory budget."""
    hint = "use fewer --steps or fewer starts" if record else "use fewer learning rates (--num) or fewer --starts"
    return check_memory(record_bytes(steps, rows, n_buffers, record), what, hint, budget)


def check_noise(sigma, seed) -> None:
    """``sigma`` a finite number >= 0, ``seed`` an integer >= 0 (numpy's seeds are unsigned)."""
    try:
        bad_sigma = not (np.isfinite(float(sigma)) and float(sigma) >= 0)
    except (TypeError, ValueError):
        bad_sigma = True
    if bad_sigma:
        raise InvalidValue(f"the gradient noise must be a finite number >= 0, got {sigma!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise InvalidValue(f"a seed must be an integer >= 0, got {seed!r}")


def gradient_noise(sigma: float, seed, starts: np.ndarray, steps: int) -> Optional[np.ndarray]:
    """(steps, B, 2) seeded Gaussian noise of std ``sigma`` (None when ``sigma`` is 0).

    One stream per distinct start, keyed by the seed and the start's bytes: common
    random numbers, so every optimizer of a comparison (and every engine: the core,
    torch, scipy) sees the same noise from the same start.
    """
    check_noise(sigma, seed)
    if not sigma:
        return None
    out = np.empty((steps,) + starts.shape)
    for i, s in enumerate(starts):
        key = [int(seed or 0)] + [int(v) for v in np.frombuffer(s.tobytes(), dtype=np.uint32)]
        out[:, i] = sigma * np.random.default_rng(key).standard_normal((steps, 2))
    return out
