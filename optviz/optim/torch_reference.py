"""The ``torch.optim`` algorithm behind each registered name, for side-by-side checks.

Used by the parity tests, the benchmarks and the MNIST harness (``--reference``)
to run the very same algorithm from torch itself. Lion has no torch counterpart.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import torch

from ..errors import OptvizError
from . import registry

__all__ = ["torch_optimizer", "has_reference", "COUNTERPARTS", "EAGER_STATE"]


#: registry name -> (torch.optim class, what that class must be told to run it: the
#: group keys whose value is fixed by the name). The torch adapter writes the fixed
#: keys into its param_groups too, so its state_dict loads into torch and back.
COUNTERPARTS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"nesterov": False}),
    "nesterov": ("SGD", {"nesterov": True, "dampening": 0.0}),
    "adagrad": ("Adagrad", {}),
    "adam": ("Adam", {}),
    "amsgrad": ("Adam", {"amsgrad": True}),
    "adamw": ("AdamW", {"decoupled_weight_decay": True}),
    "nadam": ("NAdam", {}),
    "radam": ("RAdam", {}),
    "rmsprop": ("RMSprop", {}),
    "adadelta": ("Adadelta", {}),
}

#: torch.optim classes that create their state for every parameter at construction
#: (the others create it at a parameter's first step).
EAGER_STATE = {"Adagrad"}

# Keys torch's classes take as constructor arguments (AdamW fixes decoupled_weight_decay itself).
_CONSTRUCTOR_FIXED = {"nesterov", "amsgrad"}


def has_reference(name: str) -> bool:
    return name in COUNTERPARTS


def torch_optimizer(params, name: str, foreach: bool = False, fused: bool = False,
                    **hyperparams) -> torch.optim.Optimizer:
    """``torch.optim``'s version of registered optimizer ``name`` with the registry's
    defaults (e.g. ``momentum``'s gamma=0.9) and ``hyperparams`` on top; ``fused``
    selects torch's fused kernels (SGD, Adagrad, Adam and AdamW have them on CPU)."""
    info = registry.get(name)
    if name not in COUNTERPARTS:
        raise OptvizError(f"{name} has no torch.optim counterpart; those with one: {', '.join(COUNTERPARTS)}")
    cls, fixed = COUNTERPARTS[name]
    h = dict(info.defaults, **hyperparams)
    if h.pop("eps_root", 0.0):
        raise OptvizError("torch.optim.Adam has no eps_root (epsilon inside the square root)")
    if "beta1" in h or "beta2" in h:
        h["betas"] = (h.pop("beta1", 0.9), h.pop("beta2", 0.999))
    h.update({k: v for k, v in fixed.items() if k in _CONSTRUCTOR_FIXED})
    if fused:
        h["fused"] = True
    else:
        h["foreach"] = foreach
    return getattr(torch.optim, cls)(params, **h)
