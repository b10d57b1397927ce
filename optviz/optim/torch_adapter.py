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
transforms that look at all of them (global-norm clipping) see all of them. One
consequence: the step count is shared by a group (torch keeps one per
parameter). They differ only for a parameter whose first gradient arrives after
the others have stepped; its bias correction then starts at the group's count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from ..errors import OptvizError
from . import registry
from .base import GradientTransformation, split_learning_rate
from .ops import donate_state, end_donation
from .state import leaf_paths, map_leaves, short_names

__all__ = ["TorchOptimizer"]


@dataclass
class _GroupCore:
    key: tuple                 # hyperparameters (all but lr) the transform was built with
    tx: GradientTransformation # the optimizer, less its final learning-rate scaling if fused
    fused_lr: bool             # apply as p.add_(u, alpha=-group["lr"])
    params: Tuple[torch.Tensor, ...]
    leaves: tuple              # (index path into the state, name in state[p], per parameter?)
    state: Any                 # the core state for this group's parameter list (replaced each step)


class TorchOptimizer(torch.optim.Optimizer):
    """Run the registered optimizer ``name`` with ``hyperparams`` (defaults: the registry's)."""

    def __init__(self, params, name: str = "sgd", **hyperparams):
        registry.create(name, **hyperparams)  # unknown names and bad values fail here, clearly
        self.optimizer_name = name
        defaults = dict(registry.get(name).defaults, **hyperparams)
        self._hyper_names = tuple(k for k in defaults if k != "lr")
        super().__init__(params, defaults)
        self._cores: Dict[int, _GroupCore] = {}

    # -- stepping ---------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None):
        """One update of every parameter that has a gradient; returns the closure's loss."""
        active = []
        looks_ahead = False
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None or closure is not None]
            if params:
                core = self._core_for(group, params)
                looks_ahead |= core.tx.eval_point is not None
                active.append((group, params, core))

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
            if closure is None and any(p.grad.is_sparse for p in params):
                raise OptvizError(f"{self.optimizer_name}: sparse gradients are not supported")
            if closure is not None:  # the closure may have left some gradients unset
                params = [p for p in params if p.grad is not None]
                core = self._core_for(group, params)
            token = donate_state()  # the old state is dropped below: let its buffers be reused in place
            try:
                updates, new_state = core.tx.update([p.grad for p in params], core.state, params)
            finally:
                end_donation(token)
            if core.fused_lr:
                alpha = -group["lr"]
                for p, u in zip(params, updates):
                    p.add_(u, alpha=alpha)
            else:
                for p, u in zip(params, updates):
                    p.add_(u)
            core.state = new_state
            self._scatter(core, new_state)
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
        key = tuple(group[k] for k in self._hyper_names)
        core = self._cores.get(id(group))
        if core is not None and core.key == key and len(core.params) == len(params) \
                and all(a is b for a, b in zip(core.params, params)):
            return core
        hyper = dict(zip(self._hyper_names, key))
        # lr is read from the group at every step: torch's schedulers write it there.
        tx = registry.create(self.optimizer_name, lr=lambda step, g=group: g["lr"], **hyper)
        # Torch's own optimizers end with p.add_(u, alpha=-lr): one pass over memory. Do the same.
        direction, rate = split_learning_rate(tx)
        fused = rate is not None
        tx = direction if fused else tx
        template = tx.init(params)
        names = short_names(leaf_paths(template))
        leaves = []
        map_leaves(template, lambda path, v, per_param: leaves.append((_index_path(template, path), names[path], per_param)))
        state = self._gather(template, names, params)
        core = _GroupCore(key, tx, fused, tuple(params), tuple(leaves), state)
        self._cores[id(group)] = core
        return core

    def _gather(self, template, names, params):
        """The core state for ``params``, from ``self.state`` where saved, else fresh."""
        def leaf(path, value, per_param):
            name = names[path]
            if per_param:
                return [self.state[p].get(name, v) if p in self.state else v for p, v in zip(params, value)]
            # a shared value (the step count): from any parameter that has one, so a
            # parameter whose gradient appears late does not reset the group's count
            saved = next((self.state[p][name] for p in params if p in self.state and name in self.state[p]), None)
            return value if saved is None else saved
        return map_leaves(template, leaf)

    def _scatter(self, core: _GroupCore, state) -> None:
        """Write the core state into ``self.state[p]`` under torch-style names (cheap:
        the leaf positions were worked out once, in :meth:`_core_for`)."""
        dicts = [self.state[p] for p in core.params]
        for index, name, per_param in core.leaves:
            value = state
            for i in index:
                value = value[i]
            if per_param:
                for d, v in zip(dicts, value):
                    d[name] = v
            else:
                for d in dicts:
                    d[name] = value

    # -- checkpoints ------------------------------------------------------------------
    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._cores.clear()  # rebuilt from self.state at the next step

    def __repr__(self):
        return f"TorchOptimizer[{self.optimizer_name}]" + super().__repr__()[len(type(self).__name__):]


def _index_path(state, path: tuple) -> Tuple[int, ...]:
    """Positional indices for a path of field names / tuple positions."""
    out = []
    for part in path:
        i = state._fields.index(part) if hasattr(state, "_fields") else int(part)
        out.append(i)
        state = state[i]
    return tuple(out)
