"""The ``torch.optim`` algorithm behind each registered name, for side-by-side checks.

Used by the parity tests, the benchmarks and the MNIST harness (``--reference``)
to run the very same algorithm from torch itself. Lion has no torch counterpart.
"""
from __future__ import annotations

from typing import Callable, Dict

import torch

from ..errors import OptvizError
from . import registry

__all__ = ["torch_optimizer", "has_reference"]


def _betas(h):
    return {"betas": (h.pop("beta1", 0.9), h.pop("beta2", 0.999))}


_BUILDERS: Dict[str, Callable] = {
    "sgd": lambda p, h: torch.optim.SGD(p, **h),
    "momentum": lambda p, h: torch.optim.SGD(p, **h),
    "nesterov": lambda p, h: torch.optim.SGD(p, nesterov=True, **h),
    "adagrad": lambda p, h: torch.optim.Adagrad(p, **h),
    "adam": lambda p, h: torch.optim.Adam(p, **{**_betas(h), **h}),
    "amsgrad": lambda p, h: torch.optim.Adam(p, amsgrad=True, **{**_betas(h), **h}),
    "adamw": lambda p, h: torch.optim.AdamW(p, **{**_betas(h), **h}),
    "nadam": lambda p, h: torch.optim.NAdam(p, **{**_betas(h), **h}),
    "radam": lambda p, h: torch.optim.RAdam(p, **{**_betas(h), **h}),
    "rmsprop": lambda p, h: torch.optim.RMSprop(p, **h),
    "adadelta": lambda p, h: torch.optim.Adadelta(p, **h),
}

def has_reference(name: str) -> bool:
    return name in _BUILDERS


def torch_optimizer(params, name: str, foreach: bool = False, **hyperparams) -> torch.optim.Optimizer:
    """``torch.optim``'s version of registered optimizer ``name`` with the registry's
    defaults (e.g. ``momentum``'s gamma=0.9) and ``hyperparams`` on top."""
    info = registry.get(name)
    if name not in _BUILDERS:
        raise OptvizError(f"{name} has no torch.optim counterpart; those with one: {', '.join(_BUILDERS)}")
    h = dict(info.defaults, **hyperparams)
    if h.pop("eps_root", 0.0):
        raise OptvizError("torch.optim.Adam has no eps_root (epsilon inside the square root)")
    if name in ("momentum", "nesterov"):
        h.pop("nesterov", None)
    if name == "amsgrad":
        h.pop("amsgrad", None)
    h["foreach"] = foreach
    return _BUILDERS[name](params, h)
