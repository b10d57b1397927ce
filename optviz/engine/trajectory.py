"""What a run leaves behind: one :class:`Trajectory` per (optimizer config, start).

The views read trajectories and fields, never optimizers: a path across
Rosenbrock and a path projected onto MNIST's loss landscape are the same record.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

__all__ = ["Trajectory"]


@dataclass
class Trajectory:
    optimizer: str                 # registry name: the key of its colour
    hyperparams: Dict[str, object] # as given (defaults left out)
    label: str                     # legend text, e.g. "Adam (η=0.05)"
    xy: np.ndarray                 # (n + 1, 2) positions, start included, up to the end or divergence
    loss: np.ndarray               # (n + 1,) loss at each position
    grad: Optional[np.ndarray] = None    # (n + 1, 2) gradient at each position (where it was taken)
    step: Optional[np.ndarray] = None    # (n, 2) the update applied at each step (the effective step)
    state: Dict[str, np.ndarray] = field(default_factory=dict)  # buffers, (n + 1, 2) each (momentum, ...)
    diverged_at: Optional[int] = None    # the step at which it left (NaN, inf or out of the box)
    exit: str = "diverged"               # "escaped" where the surface is unbounded below and leaving is the point

    @property
    def start(self) -> np.ndarray:
        return self.xy[0]

    @property
    def n_steps(self) -> int:
        return len(self.xy) - 1

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def distance_to(self, points: np.ndarray) -> np.ndarray:
        """(n + 1,) distance from each position to the nearest of ``points`` (k, 2)."""
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        if len(points) == 0:
            return np.full(len(self.xy), np.nan)
        return np.min(np.linalg.norm(self.xy[:, None, :] - points[None, :, :], axis=-1), axis=1)
