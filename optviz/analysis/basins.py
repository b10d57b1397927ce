"""Basins of attraction: from a grid of starts, where does each optimizer end up?

Every start of an ``n x n`` grid over the surface's domain is one row of a single
batched run of the 2-D engine (first-order methods: :func:`optviz.engine.race.run_batch`;
Newton's method and its repairs: :func:`optviz.engine.newton.run_batch`). The end point
of each run is classified:

- the listed minimum (global or local) it converged to, or is heading for (within
  ``radius`` of it);
- another stationary point (``|grad f|`` below ``gtol``): a **saddle** (Hessian
  indefinite), a **maximum** (negative definite) or an unlisted minimum;
- **diverged** (the engine's event: NaN, inf or out of its box);
- **not converged**: none of the above after ``steps`` steps.

On Himmelblau's function every first-order method finds all four minima, with
borders that differ per method, while plain Newton also converges to the saddles
and to the maximum: the basin picture of "why second-order methods are rare".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..engine import newton
from ..engine.race import _check_steps, parse_specs, run_batch
from ..errors import InvalidValue
from .stability import listed_minima

__all__ = ["BasinMap", "basin_map", "basin_maps", "DIVERGED", "SADDLE", "MAXIMUM", "OTHER_MINIMUM",
           "NOT_CONVERGED", "OUTCOME_NAMES"]

DIVERGED, SADDLE, MAXIMUM, OTHER_MINIMUM, NOT_CONVERGED = -1, -2, -3, -4, -5
#: Text for the negative outcome codes.
OUTCOME_NAMES = {DIVERGED: "diverged", SADDLE: "saddle point", MAXIMUM: "maximum",
                 OTHER_MINIMUM: "unlisted minimum", NOT_CONVERGED: "not converged"}


@dataclass
class BasinMap:
    """One optimizer's basins. ``outcome[i, j]`` is the fate of the start ``(xs[j], ys[i])``."""

    optimizer: str             # registry name (or a Newton variant): the key of its colour
    label: str                 # legend text, "Adam (η=0.5)"
    hyperparams: Dict[str, object]
    xs: np.ndarray             # (nx,) start x values (cell centres)
    ys: np.ndarray             # (ny,) start y values
    outcome: np.ndarray        # (ny, nx) int: >= 0 index into ``attractors``, else one of the codes above
    final: np.ndarray          # (ny, nx, 2) where each run ended (last point inside, if it diverged)
    attractors: np.ndarray     # (k, 2) the listed minima, global ones first
    n_global: int              # how many of ``attractors`` are global minima
    steps: int
    radius: float              # "heading for a minimum": ended within this distance of it
    gtol: float                # "stationary": |grad f| below this
    seconds: float = 0.0

    def shares(self) -> Dict[int, float]:
        """Outcome code -> share of the starts (only outcomes that occur)."""
        codes, counts = np.unique(self.outcome, return_counts=True)
        return {int(c): n / self.outcome.size for c, n in zip(codes, counts)}

    def found(self) -> List[int]:
        """Indices of the listed minima that some start reaches."""
        return sorted(int(c) for c in np.unique(self.outcome) if c >= 0)

    def outcome_name(self, code: int) -> str:
        if code >= 0:
            kind = "global" if code < self.n_global else "local"
            x, y = self.attractors[code]
            return f"{kind} minimum ({x:.2f}, {y:.2f})"
        return OUTCOME_NAMES[code]


def _grid(domain, n: int):
    (x0, x1), (y0, y1) = domain
    ex, ey = np.linspace(x0, x1, n + 1), np.linspace(y0, y1, n + 1)
    return 0.5 * (ex[:-1] + ex[1:]), 0.5 * (ey[:-1] + ey[1:])


def classify(surface, final: np.ndarray, diverged: np.ndarray, attractors: np.ndarray, radius: float,
             gtol: float) -> np.ndarray:
    """(B,) outcome code of each end point ``final`` (B, 2), as the module docstring says."""
    B = len(final)
    out = np.full(B, NOT_CONVERGED)
    with np.errstate(all="ignore"):
        grad = np.linalg.norm(surface.grad(final), axis=1)
        if len(attractors):
            dist = np.linalg.norm(final[:, None, :] - attractors[None, :, :], axis=2)   # (B, k)
            nearest, d = np.argmin(dist, axis=1), np.min(dist, axis=1)
        else:
            nearest, d = np.zeros(B, int), np.full(B, np.inf)
        stationary = np.isfinite(grad) & (grad <= gtol)
        near = d <= radius
        out[near] = nearest[near]
        other = stationary & ~near
        if other.any():
            eig = np.linalg.eigvalsh(surface.hessian(final[other]))                       # (b, 2) ascending
            scale = max(1e-12, float(np.max(np.abs(eig))))
            tiny = 1e-9 * scale
            kinds = np.where(eig[:, 0] > tiny, OTHER_MINIMUM, np.where(eig[:, 1] < -tiny, MAXIMUM, SADDLE))
            out[other] = kinds
    out[diverged] = DIVERGED
    return out


def basin_map(surface, spec, n: int = 151, steps: int = 500, radius: Optional[float] = None,
              gtol: Optional[float] = None) -> BasinMap:
    """The basins of one optimizer ``spec`` (``"momentum:lr=0.01"``, or ``"newton"``) on an
    ``n x n`` grid of starts.

    ``radius`` defaults to 2 % of the domain's diagonal; ``gtol`` to 1e-4 times the median
    gradient norm over the starts (a scale of the surface's own slopes).
    """
    import time

    steps = _check_steps(steps)
    if int(n) != n or n < 2:
        raise InvalidValue(f"the grid needs at least 2 starts per side, got {n!r}")
    n = int(n)
    (parsed,) = parse_specs([spec])
    if parsed.kind not in ("optviz", "newton"):
        raise InvalidValue(f"basins are batched runs of the core's optimizers or Newton's; "
                           f"{parsed.text or parsed.name} is a {parsed.kind} method")
    name, hyper = parsed.name, parsed.hyper
    xs, ys = _grid(surface.domain, n)
    X, Y = np.meshgrid(xs, ys)
    starts = np.column_stack([X.ravel(), Y.ravel()])
    (x0, x1), (y0, y1) = surface.domain
    radius = 0.02 * float(np.hypot(x1 - x0, y1 - y0)) if radius is None else float(radius)
    if gtol is None:
        gtol = 1e-4 * float(np.median(np.linalg.norm(surface.grad(starts), axis=1)))
    t0 = time.perf_counter()
    if name in newton.METHODS:
        rec = newton.run_batch(surface, name, hyper, starts, steps)
        final = rec.xy[-1]
    else:
        rec = run_batch(surface, name, hyper, starts, steps, record=False)
        final = rec.xy[0]     # record=False keeps the final positions only
    label = parsed.label
    seconds = time.perf_counter() - t0
    attractors, n_global = listed_minima(surface)
    outcome = classify(surface, final, rec.diverged_at >= 0, attractors, radius, gtol)
    return BasinMap(optimizer=name, label=label, hyperparams=dict(hyper), xs=xs, ys=ys,
                    outcome=outcome.reshape(n, n), final=final.reshape(n, n, 2), attractors=attractors,
                    n_global=n_global, steps=steps, radius=radius, gtol=float(gtol), seconds=seconds)


def basin_maps(surface, specs: Sequence, **kwargs) -> List[BasinMap]:
    """:func:`basin_map` for each spec, with the same grid and options."""
    return [basin_map(surface, spec, **kwargs) for spec in specs]
