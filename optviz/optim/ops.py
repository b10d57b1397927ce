"""The few elementwise kernels the transforms are made of, for numpy and torch.

Each is one formula, computed with as few passes and allocations as the backend
allows (torch: ``lerp``, ``addcmul_`` on a fresh tensor; numpy: in-place
arithmetic on a fresh array). Inputs are never modified: in-place operations
only touch the new array being built, so the transforms stay pure.
With array-valued hyperparameters (a batch of configurations) they fall back to
plain broadcasting arithmetic.
"""
from __future__ import annotations

from .tree import is_torch, namespace

__all__ = ["ema", "ema_square", "scaled_ratio"]


def _scalar(x) -> bool:
    return isinstance(x, (int, float))


def ema(avg, x, decay):
    """``decay * avg + (1 - decay) * x`` (computed as ``avg + (1 - decay)(x - avg)``, torch's lerp)."""
    if is_torch(x) and _scalar(decay):
        return namespace(x).lerp(avg, x, 1.0 - decay)
    return avg + (1 - decay) * (x - avg)


def ema_square(avg, x, decay):
    """``decay * avg + (1 - decay) * x^2``."""
    if is_torch(x) and _scalar(decay):
        out = avg * decay
        return out.addcmul_(x, x, value=1.0 - decay)
    out = x * x
    out *= (1 - decay)
    out += decay * avg
    return out


def scaled_ratio(num, sq, root_scale=1.0, eps=0.0, out_scale=1.0):
    """``out_scale * num / (sqrt(sq) * root_scale + eps)`` — the adaptive step of
    AdaGrad, RMSProp and Adam (``root_scale`` = 1/sqrt(bias correction))."""
    if is_torch(num) and _scalar(root_scale) and _scalar(eps) and _scalar(out_scale):
        d = sq.sqrt()
        if root_scale != 1.0:
            d.mul_(root_scale)
        d.add_(eps)
        out = num / d
        return out.mul_(out_scale) if out_scale != 1.0 else out
    d = namespace(sq).sqrt(sq)
    d = d * root_scale + eps
    return num / d * out_scale if not _scalar(out_scale) or out_scale != 1.0 else num / d
