"""The shared optimizer core: pure transforms over numpy arrays and torch tensors.

>>> import numpy as np
>>> from optviz import optim
>>> opt = optim.adam(lr=0.1)
>>> params = np.array([1.0, -2.0])
>>> state = opt.init(params)
>>> updates, state = opt.update(2 * params, state, params)   # gradient of |x|^2
>>> params = optim.apply_updates(params, updates)

``optim.create(name, **hyperparams)`` builds any registered optimizer;
``optim.registry`` holds their names, defaults, rules and colours;
``optim.TorchOptimizer`` runs any of them as a ``torch.optim.Optimizer`` (torch's
conventions, step for step); ``optviz.optim.compiled`` runs any transform's update
through ``torch.compile`` (the adapter's ``compile=True``, stacks of runs).
"""
from . import registry, schedules, transforms
from .base import EmptyState, GradientTransformation, apply_updates, chain, evaluation_point, per_leaf
from .optimizers import (adadelta, adagrad, adam, adamw, amsgrad, lion, momentum, nadam, nesterov,
                         nesterov_lookahead, radam, rmsprop, sgd)
from .registry import LECTURE_FIVE, create, parse_spec
from .tree import tree_leaves, tree_map

__all__ = [
    "GradientTransformation", "EmptyState", "chain", "per_leaf", "apply_updates", "evaluation_point",
    "create", "parse_spec", "registry", "schedules", "transforms", "LECTURE_FIVE",
    "tree_map", "tree_leaves", "TorchOptimizer",
    "sgd", "momentum", "nesterov", "nesterov_lookahead", "adagrad", "adam", "adamw", "amsgrad",
    "nadam", "radam", "rmsprop", "adadelta", "lion",
]


def __getattr__(name):
    # The adapter imports torch; load it only when asked for.
    if name == "TorchOptimizer":
        from .torch_adapter import TorchOptimizer
        return TorchOptimizer
    raise AttributeError(name)
