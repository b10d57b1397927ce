"""Second-order baselines: Newton's method with the exact Hessian, and two repairs.

The lecture asks why second-order methods are rare. In 2-D the Hessian is free
(autograd gives it), so the figures can show the other half of the answer: plain
Newton jumps to the nearest stationary point, and on a saddle that is the saddle.

- ``newton``: ``theta <- theta - eta H^-1 g`` (eta = 1 is the classic method);
- ``damped_newton``: Levenberg-Marquardt, ``theta <- theta - eta (H + lambda I)^-1 g``;
  better conditioned, but still attracted to saddles while ``lambda`` is small;
- ``saddle_free_newton`` (Dauphin et al., 2014): ``theta <- theta - eta (|H| + lambda I)^-1 g``
  with ``|H|`` the Hessian with its eigenvalues made positive: it flees saddles.
"""
from __future__ import annotations

from typing import Dict, Mapping, Tuple

import numpy as np

from ..errors import InvalidValue, OptvizError, UnknownName
from ..optim.registry import split_options
from .record import BatchRecord, check_record_memory, check_steps, escape_box, inside

__all__ = ["METHODS", "run_batch", "parse_spec", "label"]

METHODS: Dict[str, Dict[str, float]] = {
    "newton": {"lr": 1.0},
    "damped_newton": {"lr": 1.0, "damping": 1.0},
    "saddle_free_newton": {"lr": 1.0, "damping": 1e-3},
}
_DISPLAY = {"newton": "Newton", "damped_newton": "Damped Newton", "saddle_free_newton": "Saddle-free Newton"}


def parse_spec(spec: str) -> Tuple[str, Dict[str, float]]:
    name, _, rest = spec.partition(":")
    name = name.strip()
    if name not in METHODS:
        raise UnknownName("second-order method", name, METHODS)
    hyper = {}
    for key, value in split_options(rest, spec):
        if key not in METHODS[name]:
            item = f"{key}={value}"
            raise OptvizError(f"malformed option {item!r} for {name}; valid: {', '.join(METHODS[name])}")
        try:
            hyper[key] = float(value)
        except ValueError:
            raise OptvizError(f"cannot read {value!r} as a number (option {key!r} of {spec!r})") from None
        if not (np.isfinite(hyper[key]) and hyper[key] >= 0):
            raise InvalidValue(f"invalid {key}={hyper[key]!r}: {key} must be a finite number >= 0")
    return name, hyper


def label(name: str, hyper: Mapping[str, float]) -> str:
    shown = {k: v for k, v in hyper.items() if METHODS[name].get(k) != v}
    body = ", ".join(f"{'η' if k == 'lr' else 'λ'}={v:g}" for k, v in shown.items())
    return f"{_DISPLAY[name]} ({body})" if body else _DISPLAY[name]


def _direction(name: str, H: np.ndarray, g: np.ndarray, damping: float) -> np.ndarray:
    if name == "saddle_free_newton":
        w, V = np.linalg.eigh(H)
        H = (V * (np.abs(w) + damping)[..., None, :]) @ np.swapaxes(V, -1, -2)
    elif name == "damped_newton":
        H = H + damping * np.eye(2)
    return np.linalg.solve(H, g[..., None])[..., 0]


def run_batch(surface, name: str, hyper: Mapping[str, float], starts, steps: int) -> BatchRecord:
    """Like :func:`optviz.engine.race.run_batch`, for the Newton variants (no noise)."""
    if not hasattr(surface, "hessian"):
        raise OptvizError(f"{name} needs the Hessian, and {surface.name} has no formula to differentiate")
    steps = check_steps(steps)
    p = dict(METHODS[name], **hyper)
    x = np.array(starts, dtype=float).reshape(-1, 2)
    B = len(x)
    check_record_memory(steps, B, 0, f"recording {steps:,} steps of {name} from {B:,} start(s)")
    box = escape_box(surface.domain)
    xs = np.empty((steps + 1, B, 2)); losses = np.empty((steps + 1, B)); grads = np.full((steps + 1, B, 2), np.nan)
    updates = np.zeros((steps, B, 2))
    xs[0] = x
    diverged_at = np.full(B, -1)
    alive = np.ones(B, dtype=bool)
    with np.errstate(all="ignore"):
        for t in range(steps):
            losses[t], g = surface.value_and_grad(x)
            try:
                u = -p["lr"] * _direction(name, surface.hessian(x), g, p.get("damping", 0.0))
            except np.linalg.LinAlgError:  # a singular Hessian somewhere in the batch
                u = np.full_like(x, np.nan)
            x_new = x + u
            left = alive & ~inside(x_new, box)
            diverged_at[left] = t + 1
            alive &= ~left
            x = np.where(alive[:, None], x_new, x)
            grads[t], updates[t] = g, np.where(alive[:, None], u, 0.0)
            xs[t + 1] = x
    losses[steps], grads[steps] = surface.value_and_grad(x)
    return BatchRecord(xs, losses, grads, updates, {}, diverged_at)
