"""The few elementwise kernels the transforms are made of, for numpy and torch.

Each is one formula, computed with as few passes and allocations as the backend
allows (torch: ``lerp``, ``addcmul_`` on a fresh tensor; numpy: in-place
arithmetic on a fresh array). Inputs are never modified: in-place operations
only touch the new array being built, so the transforms stay pure.
With array-valued hyperparameters (a batch of configurations) they fall back to
plain broadcasting arithmetic. Arrays go on the left of ``*``: ``tensor * 0.9``
takes torch's C path, ``0.9 * tensor`` a Python wrapper that costs microseconds.
"""
from __future__ import annotations

import contextlib
import contextvars

from .tree import is_torch, namespace

__all__ = ["ema", "ema_square", "add_square", "add_scaled", "momentum_sum", "scaled_ratio", "copy", "donating",
           "donate_state", "end_donation", "hoist", "begin_hoisting", "end_hoisting"]

_DONATE = contextvars.ContextVar("optviz_donate_state", default=False)


@contextlib.contextmanager
def donating():
    """Let torch state buffers be updated in place inside this block (buffer donation).

    The transforms stay pure in meaning: ``new = ema(old, g, beta)``. A caller that
    owns the state and drops the old one right away (the torch adapter) may donate
    it, so ``new`` *is* ``old``, updated in place: torch's own for-loop arithmetic,
    without a fresh allocation and a cold-cache write per buffer per step.
    """
    token = _DONATE.set(True)
    try:
        yield
    finally:
        _DONATE.reset(token)


def donate_state():
    """The context-manager-free form of :func:`donating` for hot loops: returns a token
    for :func:`end_donation`."""
    return _DONATE.set(True)


def end_donation(token) -> None:
    _DONATE.reset(token)


def hoist(*scalars):
    """Mark per-update scalars (bias corrections, rectifiers: functions of the step
    count and the hyperparameters, never of the arrays) to be computed once per
    update, not once per element. Returns them as a tuple, unchanged.

    Eagerly they are Python floats (or small hyperparameter arrays) and nothing
    happens. A compiled update (:mod:`optviz.optim.compiled`), where the step count
    is a 0-d tensor, collects them and returns them from its graph: inductor then
    computes each once, into a buffer, instead of inlining ``beta ** t`` into the
    elementwise loop, where it would call ``pow`` once per vector of every
    parameter (which doubles the cost of a compiled Adam step).
    """
    if _HOISTED is not None:
        _HOISTED.extend(x for x in scalars if is_torch(x))
    return scalars


_HOISTED = None  # a list while a compiled update is being traced


def begin_hoisting() -> list:
    """Start collecting :func:`hoist`'s tensors (compiled updates only); returns the list."""
    global _HOISTED
    _HOISTED = []
    return _HOISTED


def end_hoisting() -> None:
    global _HOISTED
    _HOISTED = None


def copy(x):
    """A copy that shares no memory with ``x`` (state must never alias a gradient)."""
    return x.clone() if is_torch(x) else x.copy()


def _scalar(x) -> bool:
    return isinstance(x, (int, float))


def ema(avg, x, decay):
    """``decay * avg + (1 - decay) * x`` (computed as ``avg + (1 - decay)(x - avg)``, torch's lerp)."""
    if is_torch(x) and _scalar(decay):
        return avg.lerp_(x, 1.0 - decay) if _DONATE.get() else namespace(x).lerp(avg, x, 1.0 - decay)
    return avg + (x - avg) * (1 - decay)


def ema_square(avg, x, decay):
    """``decay * avg + (1 - decay) * x^2``."""
    if is_torch(x) and _scalar(decay):
        out = avg.mul_(decay) if _DONATE.get() else avg * decay
        return out.addcmul_(x, x, value=1.0 - decay)
    out = x * x
    out *= (1 - decay)
    out += avg * decay
    return out


def add_square(acc, x):
    """``acc + x^2`` (AdaGrad's accumulator)."""
    if is_torch(x):
        return acc.addcmul_(x, x) if _DONATE.get() else namespace(x).addcmul(acc, x, x)
    out = x * x
    out += acc
    return out


def add_scaled(x, y, alpha):
    """``x + alpha * y`` in one pass (torch's ``add(..., alpha=)``)."""
    if is_torch(x) and _scalar(alpha):
        return x.add(y, alpha=alpha)
    return x + y * alpha


def momentum_sum(buf, x, momentum, dampening=0.0):
    """``momentum * buf + (1 - dampening) * x`` (the heavy-ball buffer)."""
    if is_torch(x) and _scalar(momentum) and _scalar(dampening):
        out = buf.mul_(momentum) if _DONATE.get() else buf * momentum
        return out.add_(x, alpha=1 - dampening)
    return buf * momentum + x * (1 - dampening)


def scaled_ratio(num, sq, root_scale=1.0, eps=0.0, out_scale=1.0):
    """``out_scale * num / (sqrt(sq) * root_scale + eps)`` — the adaptive step of
    AdaGrad, RMSProp and Adam (``root_scale`` = 1/sqrt(bias correction))."""
    if is_torch(num) and _scalar(root_scale) and _scalar(eps) and _scalar(out_scale):
        d = sq.sqrt()
        if root_scale != 1.0:
            d.mul_(root_scale)
        d.add_(eps)
        out = namespace(num).div(num, d, out=d)  # into d's fresh memory: one allocation, not two
        return out.mul_(out_scale) if out_scale != 1.0 else out
    d = namespace(sq).sqrt(sq)
    d = d * root_scale + eps
    return num / d * out_scale if not _scalar(out_scale) or out_scale != 1.0 else num / d
