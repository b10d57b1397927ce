"""How much tuning matters: a learning-rate sweep of several optimizers, batched.

For each optimizer, every (learning rate, start) pair is one row of a single
vectorised run (:func:`optviz.engine.race.run_batch` with ``record=False``), so
41 rates x 64 starts cost one loop of ``steps`` steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..errors import InvalidValue
from ..memory import check_memory
from ..optim import registry
from .race import run_batch
from .record import check_steps, record_bytes
from .specs import parse_spec

__all__ = ["SweepResult", "lr_sweep", "random_starts"]


@dataclass
class SweepResult:
    names: List[str]                 # optimizer names, in order
    labels: List[str]                # legend text (with fixed hyperparameters)
    lrs: np.ndarray                  # (L,) learning rates
    starts: np.ndarray               # (S, 2)
    final_loss: np.ndarray           # (N, L, S) loss after the last step (NaN where it diverged)
    diverged: np.ndarray             # (N, L, S) bool
    steps: int

    def best_lr(self) -> Dict[str, float]:
        """Per optimizer, the rate with the lowest median final loss over the starts."""
        with np.errstate(all="ignore"):
            med = np.nanmedian(np.where(self.diverged, np.inf, self.final_loss), axis=2)
        return {n: float(self.lrs[int(np.argmin(m))]) for n, m in zip(self.names, med)}


def random_starts(surface, n: int, seed: int = 0, shrink: float = 0.8) -> np.ndarray:
    """``n`` seeded starts, uniform over the central ``shrink`` part of the domain."""
    (x0, x1), (y0, y1) = surface.domain
    cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, shrink * (x1 - x0) / 2, shrink * (y1 - y0) / 2
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(cx - hx, cx + hx, n), rng.uniform(cy - hy, cy + hy, n)])


def lr_sweep(surface, specs: Sequence[str], lrs: Sequence[float], starts: np.ndarray, steps: int,
             extra: Optional[Mapping[str, Mapping[str, object]]] = None) -> SweepResult:
    """Final loss of each optimizer spec (``"momentum:momentum=0.9"``; its ``lr`` is swept)
    for every learning rate in ``lrs`` from every start."""
    steps = check_steps(steps)
    lrs = np.asarray(lrs, dtype=float)
    if lrs.ndim != 1 or len(lrs) == 0 or np.any(~np.isfinite(lrs)) or np.any(lrs <= 0):
        bad = lrs[~(np.isfinite(lrs) & (lrs > 0))] if lrs.ndim == 1 and len(lrs) else lrs
        raise InvalidValue(f"learning rates must be finite positive numbers, got {np.ravel(bad)[:3].tolist()}")
    starts = np.asarray(starts, dtype=float).reshape(-1, 2)
    L, S = len(lrs), len(starts)
    parsed = [parse_spec(s) for s in specs]
    for spec in parsed:
        if spec.kind != "optviz":
            raise InvalidValue(f"sweep runs the registry's optimizers, batched over learning rates; "
                               f"{spec.text or spec.label!r} is a {spec.kind} optimizer")
    # the rows of one optimizer are held at once; the others wait their turn
    check_memory(max(record_bytes(steps, L * S, s.buffers(), record=False) for s in parsed) if parsed else 0,
                 f"a sweep of {L:,} learning rates x {S:,} starts ({L * S:,} runs at once)",
                 "use fewer learning rates (--num) or fewer --starts")
    names, labels, losses, diverged = [], [], [], []
    for spec in parsed:
        name, hyper = spec.name, dict(spec.hyper)
        hyper.pop("lr", None)
        rows_lr = np.repeat(lrs, S)                              # (L*S,) rate of each row
        rows_start = np.tile(starts, (L, 1))                     # (L*S, 2)
        rec = run_batch(surface, name, {**hyper, "lr": rows_lr}, rows_start, steps, record=False)
        loss = rec.loss[0].reshape(L, S)
        gone = (rec.diverged_at >= 0).reshape(L, S)
        names.append(name)
        labels.append(registry.format_spec(name, hyper, lr=False))
        losses.append(np.where(gone, np.nan, loss))
        diverged.append(gone)
    return SweepResult(names, labels, lrs, starts, np.array(losses), np.array(diverged), steps)
