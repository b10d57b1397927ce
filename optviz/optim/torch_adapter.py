"""Any core optimizer as a ``torch.optim.Optimizer``.

    opt = TorchOptimizer(model.parameters(), "adam", lr=1e-3)
    for x, y in batches:
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()

The core computes the updates (pure functions, under ``no_grad``); this class is
the only place where parameters are changed in place. It keeps what torch users
rely on:

- ``param_groups`` with every hyperparameter of the optimizer; ``group["lr"]`` is
  read at every step, so ``torch.optim.lr_scheduler`` drives it;
- ``state[p]`` per parameter, with torch's names (``step``, ``exp_avg``, ...), so
  ``state_dict()`` / ``load_state_dict()`` round-trip (also through ``torch.save``);
- ``step(closure)``, and ``torch.nn.utils.clip_grad_norm_`` beside it.

Each group's optimizer runs on the group's whole list of parameters at once, so
transforms that look at all of them (global-norm clipping) see all of them.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import torch

from ..errors import OptvizError
from . import registry
from .base import GradientTransformation

__all__ = ["TorchOptimizer"]


class _GroupCore(NamedTuple):
    key: tuple                 # hyperparameters (all but lr) the transform was built with
    tx: GradientTransformation
    param_ids: Tuple[int, ...]
    names: Dict[tuple, str]    # state path -> key in state[p]
    state: Any                 # the core state for this group's parameter list


class TorchOptimizer(torch.optim.Optimizer):
    """Run the registered optimizer ``name`` with ``hyperparams`` (defaults: the registry's)."""

    def __init__(self, params, name: str = "sgd", **hyperparams):
        registry.create(name, **hyperparams)  # unknown names and bad values fail here, clearly
        self.optimizer_name = name
        defaults = dict(registry.get(name).defaults, **hyperparams)
        super().__init__(params, defaults)
        self._cores: Dict[int, _GroupCore] = {}

    # -- stepping ---------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None):
        """One update of every parameter that has a gradient; returns the closure's loss."""
        active = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None or closure is not None]
            if params:
                active.append((group, params, self._core_for(group, params)))
        looks_ahead = any(core.tx.eval_point is not None for _, _, core in active)

        loss = None
        if looks_ahead:
            if closure is None:
                raise OptvizError(f"{self.optimizer_name} evaluates the gradient at a look-ahead point: "
                                  "call step(closure) with a closure that recomputes the loss and gradients")
            loss = self._closure_at_eval_points(closure, active)
        elif closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group, params, core in active:
            params = [p for p in params if p.grad is not None]
            if len(params) != len(core.param_ids):
                core = self._core_for(group, params)
            updates, new_state = core.tx.update([p.grad for p in params], core.state, params)
            for p, u in zip(params, updates):
                p.add_(u)
            self._cores[id(group)] = core._replace(state=new_state)
            self._scatter(core.names, new_state, params)
        return loss

    def _closure_at_eval_points(self, closure, active):
        saved = []
        for _, params, core in active:
            for p, e in zip(params, core.tx.eval_point(params, core.state) if core.tx.eval_point else params):
                if e is not p:
                    saved.append((p, p.clone()))
                    p.copy_(e)
        try:
            with torch.enable_grad():
                return closure()
        finally:
            for p, original in saved:
                p.copy_(original)

    # -- the core state behind each group ------------------------------------------------
    def _core_for(self, group: dict, params: List[torch.Tensor]) -> _GroupCore:
        names = registry.get(self.optimizer_name).defaults
        key = tuple((k, _hashable(group[k])) for k in names if k != "lr")
        ids = tuple(id(p) for p in params)
        core = self._cores.get(id(group))
        if core is not None and core.key == key and core.param_ids == ids:
            return core
        hyper = {k: group[k] for k in names if k != "lr"}
        # lr is read from the group at every step: torch's schedulers write it there.
        tx = registry.create(self.optimizer_name, lr=lambda step, g=group: g["lr"], **hyper)
        template = tx.init(params)
        paths = _leaf_paths(template)
        state_names = _short_names(paths)
        state = self._gather(template, state_names, params)
        core = _GroupCore(key, tx, ids, state_names, state)
        self._cores[id(group)] = core
        return core

    def _gather(self, template, state_names, params):
        """The core state for ``params``, from ``self.state`` where saved, else fresh."""
        def leaf(path, value, per_param):
            name = state_names[path]
            if per_param:
                return [self.state[p].get(name, v) if p in self.state else v for p, v in zip(params, value)]
            saved = self.state[params[0]].get(name) if params[0] in self.state else None
            return value if saved is None else saved
        return _map_leaves(template, leaf)

    def _scatter(self, state_names, state, params) -> None:
        """Write the core state into ``self.state[p]`` under torch-style names."""
        def leaf(path, value, per_param):
            name = state_names[path]
            for i, p in enumerate(params):
                self.state[p][name] = value[i] if per_param else value
            return value
        _map_leaves(state, leaf)

    # -- checkpoints ------------------------------------------------------------------
    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._cores.clear()  # rebuilt from self.state at the next step

    def add_param_group(self, param_group):
        super().add_param_group(param_group)

    def __repr__(self):
        return f"TorchOptimizer[{self.optimizer_name}]" + super().__repr__()[len(type(self).__name__):]


# -- walking a core state: NamedTuples and chain tuples down to leaves -----------------
# A list is the per-parameter part of a state (the group's parameters are passed as a
# list); anything else at a leaf (a step count, NAdam's mu product) is shared.

def _map_leaves(state, fn, path=()):
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(_map_leaves(v, fn, path + (f,)) for f, v in zip(state._fields, state)))
    if isinstance(state, tuple):
        return tuple(_map_leaves(v, fn, path + (str(i),)) for i, v in enumerate(state))
    return fn(path, state, isinstance(state, list))


def _leaf_paths(state) -> List[tuple]:
    paths: List[tuple] = []
    _map_leaves(state, lambda path, v, per_param: paths.append(path))
    return paths


def _short_names(paths: List[tuple]) -> Dict[tuple, str]:
    """The field name where it is unique (``exp_avg``); the first ``step`` keeps the
    short name, later ones get their full path (``2.step``)."""
    names: Dict[tuple, str] = {}
    taken = set()
    for path in paths:
        short = path[-1]
        names[path] = short if short not in taken else ".".join(path)
        taken.add(short)
    return names


def _hashable(value):
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)
