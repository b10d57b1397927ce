"""The curvature along a 2-D path, beside the limit ``c / eta`` the optimizer can follow.

For each position of a :class:`~optviz.engine.Trajectory`, the Hessian's two
eigenvalues (autograd, exact) and, for adaptive methods, the top eigenvalue of the
preconditioned Hessian ``P^-1 H`` (``P`` from the optimizer state the engine
recorded). Where ``lambda_max`` stays below the limit, the optimizer can follow the
path's curvature; where the path would need more, it cannot settle there: gradient
descent at ``eta = 2.2e-3`` walks down Rosenbrock's valley until ``lambda_max``
reaches ``2 / eta = 909`` and then bounces across the valley short of the minimum,
whose ``lambda_max`` is 1001.6: the edge of stability, in two dimensions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from .thresholds import Limit, PRECONDITIONED, preconditioner, stability_limit

__all__ = ["PathCurvature", "path_curvature", "path_curvatures"]


@dataclass
class PathCurvature:
    """The curvature met along one path; arrays have one row per position (start included)."""

    trajectory: object                       # the Trajectory
    eigenvalues: np.ndarray                  # (n + 1, 2) of the Hessian, ascending
    preconditioned: Optional[np.ndarray]     # (n + 1,) top eigenvalue of P^-1 H (adaptive methods), NaN at step 0
    limit: Optional[Limit]                   # the optimizer's stability limit, if it has one

    @property
    def sharpness(self) -> np.ndarray:
        """(n + 1,) the eigenvalue the limit is about: of ``P^-1 H`` for adaptive methods, else of ``H``."""
        if self.limit is not None and self.limit.preconditioned and self.preconditioned is not None:
            return self.preconditioned
        return self.eigenvalues[:, -1]

    def first_over(self) -> Optional[int]:
        """The first step at which the sharpness exceeds the limit, or None."""
        if self.limit is None:
            return None
        over = np.where(np.isfinite(self.sharpness), self.sharpness > self.limit.value, False)
        return int(np.argmax(over)) if over.any() else None


def path_curvature(surface, trajectory) -> PathCurvature:
    """The :class:`PathCurvature` of ``trajectory`` on ``surface`` (an analytic surface)."""
    xy = np.asarray(trajectory.xy, dtype=float)
    with np.errstate(all="ignore"):
        H = surface.hessian(xy)                                     # (n + 1, 2, 2)
        eig = np.linalg.eigvalsh(np.where(np.isfinite(H), H, 0.0))
    limit = stability_limit(trajectory.optimizer, trajectory.hyperparams)
    pre = None
    name = trajectory.optimizer
    if name in PRECONDITIONED and trajectory.state:
        pre = np.full(len(xy), np.nan)
        for t in range(1, len(xy)):
            state = {k: v[t] for k, v in trajectory.state.items()}
            P = preconditioner(name, trajectory.hyperparams, state, t)
            if P is None or not np.all(P > 0):
                continue
            s = 1.0 / np.sqrt(P)
            pre[t] = np.linalg.eigvalsh(s[:, None] * H[t] * s[None, :])[-1]   # P^-1/2 H P^-1/2
    return PathCurvature(trajectory, eig, pre, limit)


def path_curvatures(surface, trajectories: Sequence) -> List[PathCurvature]:
    return [path_curvature(surface, t) for t in trajectories]
