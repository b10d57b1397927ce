"""Stability maps: how an optimizer ends up over a grid of two hyperparameters, batched.

For each optimizer, every cell of an ``ny x nx`` grid over two hyperparameters
(default: the learning rate, log-spaced, against the momentum or ``beta1``) is one
row of a single vectorised run of the 2-D engine
(:func:`optviz.engine.race.run_batch` with array-valued hyperparameters), all from
one start: 9,600 cells of 500 steps take about a third of a second.

Each cell records the final ``f - f*``, whether the run left the engine's box
(diverged, and at which step) and, on request, the first step at which ``f - f*``
fell below ``tol`` times its starting value. Where the optimizer has a stability
limit on a quadratic (:mod:`optviz.analysis.thresholds`), the theoretical boundary
``eta = c(gamma) / lambda_max`` is computed from the Hessian's eigenvalues at the
minimum the start is nearest to; on a quadratic it is exact, elsewhere it holds near
that minimum.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..engine.race import _check_starts, _check_steps, run_batch
from ..engine.specs import parse_spec
from ..errors import InvalidValue, OptvizError
from ..optim import registry
from .thresholds import stability_limit

__all__ = ["Axis", "StabilityMap", "stability_map", "stability_maps", "default_axes", "SECOND_AXIS",
           "curvature_at_minimum", "listed_minima"]

#: The hyperparameter each optimizer's map puts on its vertical axis by default.
SECOND_AXIS = {"sgd": "momentum", "momentum": "momentum", "nesterov": "momentum", "nesterov_lookahead": "momentum",
               "adam": "beta1", "adamw": "beta1", "amsgrad": "beta1", "nadam": "beta1", "radam": "beta1",
               "lion": "beta1", "rmsprop": "alpha", "adadelta": "rho"}
_LINEAR_RANGES = {"momentum": (0.0, 0.99), "beta1": (0.0, 0.99), "alpha": (0.5, 0.999), "rho": (0.5, 0.999),
                  "beta2": (0.9, 0.9999), "dampening": (0.0, 0.9)}


@dataclass(frozen=True)
class Axis:
    """One axis of a map: a hyperparameter over ``[lo, hi]``, ``n`` cells, log or linear.

    The values are the cell centres, so a cell never sits exactly on an end
    (momentum 0 or 1 would be a different method, or none).
    """

    name: str
    lo: float
    hi: float
    n: int
    log: bool

    def __post_init__(self):
        if int(self.n) != self.n or self.n < 1:
            raise InvalidValue(f"cells on the {self.name} axis must be a positive integer, got {self.n!r}")
        if not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.lo < self.hi):
            raise InvalidValue(f"the {self.name} axis needs lo < hi, got {self.lo:g} and {self.hi:g}")
        if self.log and self.lo <= 0:
            raise InvalidValue(f"a log axis needs positive values; {self.name} starts at {self.lo:g}")

    @property
    def edges(self) -> np.ndarray:
        """(n + 1,) cell edges."""
        if self.log:
            return np.logspace(np.log10(self.lo), np.log10(self.hi), self.n + 1)
        return np.linspace(self.lo, self.hi, self.n + 1)

    @property
    def values(self) -> np.ndarray:
        """(n,) cell centres (geometric on a log axis)."""
        e = self.edges
        return np.sqrt(e[:-1] * e[1:]) if self.log else 0.5 * (e[:-1] + e[1:])

    @property
    def cell(self) -> float:
        """The width of one cell: a ratio on a log axis, a difference on a linear one."""
        return (self.hi / self.lo) ** (1 / self.n) if self.log else (self.hi - self.lo) / self.n


@dataclass
class StabilityMap:
    """One optimizer's map. Arrays are (ny, nx): row i is ``y.values[i]``, column j ``x.values[j]``."""

    optimizer: str                   # registry name: the key of its colour
    label: str                       # legend text with the fixed hyperparameters, "Adam (β₂=0.99)"
    fixed: Dict[str, object]         # the hyperparameters held fixed
    x: Axis
    y: Optional[Axis]                # None: a one-row strip (an optimizer with no second hyperparameter)
    start: np.ndarray                # (2,)
    steps: int
    minimum: np.ndarray              # (2,) the minimum the boundary refers to (nearest the start)
    minimum_value: float             # f*
    hessian_eigenvalues: np.ndarray  # (2,) at that minimum, ascending
    initial_gap: float               # f(start) - f*
    gap: np.ndarray                  # final f - f*, NaN where diverged
    diverged_at: np.ndarray          # int, step at which the run left the box, -1 if never
    tol: Optional[float] = None      # steps_to_tol counts steps until gap <= tol * initial_gap
    steps_to_tol: Optional[np.ndarray] = None  # NaN where never (or diverged)
    boundary: Optional[np.ndarray] = None      # (ny,) theoretical largest stable x at each y, or None
    rule: str = ""                   # the theory behind ``boundary``: "2(1+γ)/η"
    seconds: float = 0.0             # the engine's time for the whole map
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def diverged(self) -> np.ndarray:
        return self.diverged_at >= 0

    @property
    def unstable(self) -> np.ndarray:
        """Cells that diverged or ended further from the minimum (in ``f``) than they started."""
        with np.errstate(invalid="ignore"):
            return self.diverged | ~(self.gap <= self.initial_gap)

    @property
    def lam_max(self) -> float:
        return float(self.hessian_eigenvalues[-1])

    def measured_boundary(self) -> np.ndarray:
        """(ny,) per row, the first x value (from small to large) whose cell is unstable,
        NaN when none is. Compare with :attr:`boundary`."""
        out = np.full(self.gap.shape[0], np.nan)
        for i, row in enumerate(self.unstable):
            if row.any():
                out[i] = self.x.values[int(np.argmax(row))]
        return out

    @property
    def cells(self) -> int:
        return int(self.gap.size)


def listed_minima(surface) -> Tuple[np.ndarray, int]:
    """The surface's listed minima (k, 2), its global ones first, and how many are global."""
    glob = np.asarray(getattr(surface, "minima", np.zeros((0, 2))), dtype=float).reshape(-1, 2)
    local = np.asarray(getattr(surface, "local_minima", np.zeros((0, 2))), dtype=float).reshape(-1, 2)
    return np.vstack([glob, local]), len(glob)


def curvature_at_minimum(surface, start) -> Tuple[np.ndarray, np.ndarray]:
    """The listed minimum nearest ``start`` and the Hessian's eigenvalues there (ascending)."""
    everything, _ = listed_minima(surface)
    if len(everything) == 0 or getattr(surface, "minimum_value", None) is None:
        raise OptvizError(f"a stability map measures convergence to a minimum, and {surface.name} has none; "
                          "try long_valley, rosenbrock, booth or himmelblau")
    m = everything[int(np.argmin(np.linalg.norm(everything - np.asarray(start, float), axis=1)))]
    return m, np.linalg.eigvalsh(surface.hessian(m))


def default_axes(surface, name: str, start, nx: int = 120, ny: int = 80, y_name: Optional[str] = "auto",
                 fixed: Optional[Mapping[str, object]] = None) -> Tuple[Axis, Optional[Axis]]:
    """The learning rate (log) against the optimizer's second hyperparameter (linear).

    For a method with a stability limit the rates run from 1/100 to 4 times the plain
    limit ``2 / lambda_max`` at the minimum (so the heavy-ball boundary at gamma = 0.99,
    ``3.98 / lambda_max``, is inside); for adaptive methods, whose steps are measured in
    the parameters' units, from ``1e-4`` to ``1`` times half the domain's smaller side.
    """
    _, eig = curvature_at_minimum(surface, start)
    return _default_axes(surface, name, eig[-1], nx, ny, y_name, fixed)


def _default_axes(surface, name, lam_max, nx, ny, y_name, fixed) -> Tuple[Axis, Optional[Axis]]:
    """:func:`default_axes` for the largest Hessian eigenvalue ``lam_max`` at the minimum."""
    info = registry.get(name)
    if y_name == "auto":
        y_name = SECOND_AXIS.get(name)
    if y_name is not None and y_name not in info.defaults:
        raise InvalidValue(f"{name} has no hyperparameter {y_name!r}; valid: {', '.join(info.defaults)}")
    limit = stability_limit(name, dict(fixed or {}, lr=1.0))
    if limit is not None and not limit.preconditioned and lam_max > 0:
        base = 2.0 / lam_max
        x = Axis("lr", base / 100, base * 4, nx, True)
    else:
        (x0, x1), (y0, y1) = surface.domain
        half = 0.5 * min(x1 - x0, y1 - y0)
        x = Axis("lr", 1e-4 * half, 1.0 * half, nx, True)
    if y_name is None:
        return x, None
    lo, hi = _LINEAR_RANGES.get(y_name, (0.0, 1.0))
    return x, Axis(y_name, lo, hi, ny, False)


def stability_map(surface, spec, x: Optional[Axis] = None, y: Optional[Axis] | str = "auto", *, start=None,
                  steps: int = 500, tol: Optional[float] = None, nx: int = 120, ny: int = 80,
                  chunk: int = 1_000_000) -> StabilityMap:
    """The stability map of one optimizer ``spec`` (``"adam:beta2=0.99"``; the two swept
    hyperparameters are taken from the axes, the rest are held fixed).

    ``x``/``y`` default to :func:`default_axes`; pass ``y=None`` for a one-row strip.
    ``tol`` also records the steps to reach ``f - f* <= tol (f(start) - f*)`` (the engine
    then records every step, in row chunks of at most ``chunk`` cells x steps).
    """
    import time

    steps = _check_steps(steps)
    parsed = parse_spec(spec)
    if parsed.kind != "optviz":
        raise InvalidValue(f"stability maps are batched runs of the core's optimizers; "
                           f"{parsed.text or parsed.name} is a {parsed.kind} method")
    name, hyper = parsed.name, dict(parsed.hyper)
    start = _check_starts(surface, surface.default_start if start is None else start)[0]
    minimum, eig = curvature_at_minimum(surface, start)
    if x is None or (isinstance(y, str) and y == "auto"):
        dx, dy = _default_axes(surface, name, eig[-1], nx, ny, "auto" if isinstance(y, str) else None, hyper)
        x = x or dx
        y = dy if isinstance(y, str) else y
    if y is not None and y.name == x.name:
        raise InvalidValue(f"the two axes of a stability map must differ, both are {x.name!r}")
    for axis in (x, y):
        if axis is not None and axis.name not in registry.get(name).defaults:
            raise InvalidValue(f"{name} has no hyperparameter {axis.name!r}; "
                               f"valid: {', '.join(registry.get(name).defaults)}")
    if tol is not None and not (0 < tol < 1):
        raise InvalidValue(f"tol must be between 0 and 1 (a fraction of the starting gap), got {tol!r}")
    fixed = {k: v for k, v in hyper.items() if k not in (x.name, getattr(y, "name", None))}
    ys = y.values if y is not None else np.zeros(1)
    nrow, ncol = len(ys), x.n
    cols = np.tile(x.values, nrow)                    # (ny * nx,), row-major: row i is y.values[i]
    rows = np.repeat(ys, ncol)
    swept = {x.name: cols}
    if y is not None:
        swept[y.name] = rows
    registry.create(name, **{**fixed, **{k: v[:1] for k, v in swept.items()}})  # bad settings fail before the run
    f_star = float(surface.minimum_value)
    gap0 = float(surface.value(start)) - f_star
    t0 = time.perf_counter()
    starts = np.tile(start, (nrow * ncol, 1))
    rec = run_batch(surface, name, {**fixed, **swept}, starts, steps, record=False)
    gap = np.where(rec.diverged_at >= 0, np.nan, rec.loss[0] - f_star).reshape(nrow, ncol)
    to_tol = None
    if tol is not None:
        to_tol = _steps_to_tol(surface, name, fixed, swept, starts, steps, f_star + tol * gap0, chunk).reshape(nrow, ncol)
    seconds = time.perf_counter() - t0
    boundary, rule = _theory(name, fixed, x, y, ys, eig[-1])
    label = registry.format_spec(name, fixed, lr="lr" in fixed)
    return StabilityMap(optimizer=name, label=label, fixed=fixed, x=x, y=y, start=np.asarray(start, float),
                        steps=steps, minimum=minimum, minimum_value=f_star, hessian_eigenvalues=eig,
                        initial_gap=gap0, gap=gap, diverged_at=rec.diverged_at.reshape(nrow, ncol), tol=tol,
                        steps_to_tol=to_tol, boundary=boundary, rule=rule, seconds=seconds)


def _steps_to_tol(surface, name, fixed, swept, starts, steps, target, chunk) -> np.ndarray:
    """(B,) first step with f <= target, NaN if never or diverged; rows in chunks."""
    B = len(starts)
    out = np.full(B, np.nan)
    per = max(1, int(chunk // (steps + 1)))
    for lo in range(0, B, per):
        hi = min(B, lo + per)
        rec = run_batch(surface, name, {**fixed, **{k: v[lo:hi] for k, v in swept.items()}}, starts[lo:hi], steps)
        hit = rec.loss <= target                                  # (T + 1, b); frozen rows after divergence
        ok = hit.any(axis=0) & (rec.diverged_at < 0)
        out[lo:hi] = np.where(ok, np.argmax(hit, axis=0), np.nan)
    return out


def _theory(name, fixed, x: Axis, y: Optional[Axis], ys, lam_max) -> Tuple[Optional[np.ndarray], str]:
    """The largest stable learning rate at each row, where the theory applies (x is lr)."""
    if x.name != "lr" or lam_max <= 0:
        return None, ""
    bound = []
    rule = ""
    for v in ys:
        limit = stability_limit(name, {**fixed, "lr": 1.0, **({y.name: float(v)} if y is not None else {})})
        if limit is None or limit.preconditioned:
            return None, ""
        bound.append(limit.lr_for(lam_max))
        rule = limit.rule
    return np.array(bound), rule


def stability_maps(surface, specs: Sequence, **kwargs) -> List[StabilityMap]:
    """:func:`stability_map` for each spec, the same start and options."""
    return [stability_map(surface, spec, **kwargs) for spec in specs]

