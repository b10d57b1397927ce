"""Learning-rate schedules: pure functions ``step -> eta``.

``step`` counts the updates applied so far (0 for the first). Each factory
returns a plain function, so a schedule can be plotted, tested against
``torch.optim.lr_scheduler``, or passed as ``lr=`` to any optimizer::

    adam(lr=cosine_decay(1e-3, total_steps=1000))

Values may be arrays (one rate per configuration of a batched run).
"""
from __future__ import annotations

import math
from typing import Callable

from ..errors import InvalidValue

Schedule = Callable[[int], float]

__all__ = ["Schedule", "constant", "step_decay", "exponential_decay", "cosine_decay",
           "warmup_cosine", "one_cycle", "SCHEDULES"]


def _positive_int(name: str, value) -> int:
    if int(value) != value or value <= 0:
        raise InvalidValue(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def constant(lr: float) -> Schedule:
    """``eta_t = eta``."""
    return lambda step: lr


def step_decay(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """``eta_t = eta * gamma^floor(t / step_size)`` (torch's ``StepLR``)."""
    step_size = _positive_int("step_size", step_size)
    return lambda step: lr * gamma ** (step // step_size)


def exponential_decay(lr: float, gamma: float) -> Schedule:
    """``eta_t = eta * gamma^t`` (torch's ``ExponentialLR``)."""
    return lambda step: lr * gamma ** step


def cosine_decay(lr: float, total_steps: int, lr_min: float = 0.0) -> Schedule:
    """``eta_t = eta_min + (eta - eta_min) (1 + cos(pi t / T)) / 2`` for ``t <= T``, then
    ``eta_min`` (torch's ``CosineAnnealingLR`` over one half period)."""
    total_steps = _positive_int("total_steps", total_steps)

    def schedule(step):
        t = min(step, total_steps)
        return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * t / total_steps)) / 2

    return schedule


def warmup_cosine(lr: float, warmup_steps: int, total_steps: int, lr_min: float = 0.0,
                  start_factor: float = 0.0) -> Schedule:
    """Linear warm-up from ``start_factor * eta`` to ``eta`` over ``warmup_steps``, then
    cosine decay to ``lr_min`` at ``total_steps``."""
    total_steps = _positive_int("total_steps", total_steps)
    if not 0 <= warmup_steps < total_steps:
        raise InvalidValue(f"warmup_steps must be in [0, total_steps), got {warmup_steps!r}")
    decay = cosine_decay(lr, total_steps - warmup_steps, lr_min)

    def schedule(step):
        if step < warmup_steps:
            return lr * (start_factor + (1 - start_factor) * step / warmup_steps)
        return decay(step - warmup_steps)

    return schedule


def one_cycle(lr: float, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
              final_div_factor: float = 1e4) -> Schedule:
    """Smith's one-cycle policy, as torch's ``OneCycleLR`` (cosine annealing, two phases):
    from ``eta / div_factor`` up to ``eta`` over ``pct_start`` of the run, then down to
    ``eta / (div_factor * final_div_factor)`` at the last step."""
    total_steps = _positive_int("total_steps", total_steps)
    if not 0 < pct_start < 1:
        raise InvalidValue(f"pct_start must be in (0, 1), got {pct_start!r}")
    initial = lr / div_factor
    final = initial / final_div_factor
    peak_step = float(pct_start * total_steps) - 1
    end_step = float(total_steps) - 1

    def cos_anneal(start, end, frac):
        return end + (start - end) / 2.0 * (math.cos(math.pi * frac) + 1)

    def schedule(step):
        if step <= peak_step:
            return cos_anneal(initial, lr, step / peak_step)
        return cos_anneal(lr, final, min(1.0, (step - peak_step) / (end_step - peak_step)))

    return schedule


SCHEDULES = {f.__name__: f for f in (constant, step_decay, exponential_decay, cosine_decay,
                                      warmup_cosine, one_cycle)}
