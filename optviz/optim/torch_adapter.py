"""Any core optimizer as a ``torch.optim.Optimizer``, with torch's conventions.

    opt = TorchOptimizer(model.parameters(), "adam", lr=1e-3, betas=(0.9, 0.999))
    for x, y in batches:
        opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()

The core computes the updates (pure functions, under ``no_grad``); this class is
the only place where parameters are changed in place. It behaves as the matching
``torch.optim`` class does, step for step (checked in float64 by
``tests/test_optim_parity.py``):

- **param_groups** hold every hyperparameter under torch's names: ``betas=(b1, b2)``
  for the Adam family (``beta1=`` / ``beta2=``, the registry's names, are accepted in
  the constructor and in ``add_param_group``), plus ``maximize`` and torch's
  implementation flags. Every value is read at every step, so
  ``torch.optim.lr_scheduler`` drives ``lr``, and ``OneCycleLR`` / ``CyclicLR`` with
  ``cycle_momentum=True`` drive ``betas`` (or ``momentum``).
- **One step count per parameter**, as torch: a parameter without a gradient at a
  step (an unused branch, ``zero_grad(set_to_none=True)``) does not advance, and
  one that gets its first gradient late starts at 1 (its momentum buffer is a
  copy of that gradient). Parameters of a group whose counts agree step together
  in one call of the core, which is the rule; global-norm clipping
  (``clip_norm=``) always sees every parameter of the group that has a gradient.
- ``state[p]`` uses torch's names (``step``, ``exp_avg``, ``momentum_buffer``, ...),
  so ``state_dict()`` loads into the matching ``torch.optim`` class and a torch
  state_dict loads here; either way the run continues exactly. Like torch's
  ``SGD``, SGD with momentum keeps no ``step``. A pickled optimizer unpickles and steps.
- **Complex parameters** are treated as torch treats them, as pairs of reals
  (``torch.view_as_real``); their state is complex, as torch's.
- Flags: ``maximize`` is honoured; ``foreach`` is accepted and changes nothing
  (it picks between two torch kernels of one algorithm); ``fused``, ``capturable``
  and ``differentiable`` are refused when true, with the reason (a torch
  state_dict that carries them loads; they are reset).
- ``compile``: ``False`` (eager updates), ``True`` (``torch.compile``d updates: one
  fused loop per step, see :mod:`optviz.optim.compiled`; falls back to eager with
  one warning if compiling is impossible), or ``"auto"`` (compiled where a compiler
  is available, silently eager elsewhere). ``None`` reads ``$OPTVIZ_COMPILE``
  (``0``, ``1`` or ``auto``; default ``0``): compiled numbers differ from eager ones
  by rounding, and the first compile on a machine takes about 30 s.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from ..errors import InvalidValue, OptvizError
from . import compiled, registry
from .base import EmptyState, GradientTransformation, chain, split_learning_rate
from .ops import donate_state, end_donation
from .state import leaf_paths, map_leaves, short_names
from .torch_reference import COUNTERPARTS, EAGER_STATE
from .transforms import TraceState, scale

__all__ = ["TorchOptimizer"]

#: torch's implementation flags: (name, default, the values accepted, why others are refused)
_FLAGS = {
    "maximize": (False, None, None),
    "foreach": (None, None, None),
    "fused": (None, (None, False), "torch's fused kernels belong to torch.optim; the adapter computes "
                                   "its own updates (for one fused loop per step use compile=True)"),
    "capturable": (False, (False,), "CUDA graph capture needs step counts on the device; the adapter keeps "
                                    "them on the host"),
    "differentiable": (False, (False,), "the adapter updates parameters and buffers in place under no_grad, "
                                        "so no graph runs through a step"),
}


# --- the state of one group: how the core's state maps onto state[p] --------------------

@dataclass
class _Leaf:
    index: Tuple[int, ...]   # position in the core state (walked at every step)
    path: tuple              # the same as state.map_leaves names it: ("1", "mu")
    name: str                # key in state[p]
    kind: str                # "buffer" (one per parameter), "step", "step_read", "hidden", "scalar"
    node: int                # which transform's state it belongs to


@dataclass
class _Plan:
    """How one group steps while its hyperparameters and its set of parameters with a
    gradient stay the same (the usual case: built once, reused every step)."""

    key: tuple
    params: Tuple[torch.Tensor, ...]   # the parameters with a gradient, in group order
    views: List[torch.Tensor]          # the same, complex ones viewed as real
    complex_: Tuple[bool, ...]
    any_complex: bool
    lr_inside: bool                    # the chain applies the learning rate itself (look-ahead)
    tx: GradientTransformation         # the whole chain (less its learning rate), with rest's state
    prefix: Optional[GradientTransformation]  # its stateless head (maximize, clipping, L2), if any
    rest: GradientTransformation       # the rest
    leaves: List[_Leaf]                # of rest's state
    cohorts: List[Tuple[List[int], Any]]  # (indices into params, core state): one per step count
    stepper: Any = None                # a CompiledStep, when compiled
    cells: Dict[str, torch.Tensor] = field(default_factory=dict)  # hyperparameters as 0-d tensors
    values: tuple = ()                 # the values last written into the cells
    raw: tuple = ()                    # the group's values (but lr) this plan was last checked against


class TorchOptimizer(torch.optim.Optimizer):
    """Run the registered optimizer ``name`` with ``hyperparams`` (defaults: the registry's),
    as a ``torch.optim.Optimizer``. See the module's documentation for the conventions."""

    def __init__(self, params, name: str = "sgd", *, compile=None, **hyperparams):
        info = registry.get(name)  # unknown names fail here, clearly
        self.optimizer_name = name
        self._compile = compiled.compile_setting(compile)
        self._setup_names()
        self._plans: Dict[int, _Plan] = {}
        base = dict(info.defaults)
        if self._has_betas:
            base["betas"] = (base.pop("beta1"), base.pop("beta2"))
        for flag, (default, _, _) in _FLAGS.items():
            base[flag] = default
        base.update(self._fixed)
        super().__init__(params, self._apply(base, hyperparams, strict=True))
        self._set_key_names()

    def _setup_names(self) -> None:
        info = registry.get(self.optimizer_name)
        self._factory_names = tuple(info.defaults)
        self._core_names = self._factory_names + registry.CLIP_OPTIONS
        self._has_betas = "beta1" in info.defaults and "beta2" in info.defaults
        self._torch_cls, self._fixed = COUNTERPARTS.get(self.optimizer_name, (None, {}))
        # whether it wants its gradient at a look-ahead point is the algorithm's (nesterov_lookahead)
        # whatever its settings; that point needs step(closure), and the rate applied inside its chain
        self._looks_ahead = registry.create(self.optimizer_name).eval_point is not None

    def _set_key_names(self) -> None:
        # the group's values that a plan is checked against at each step (lr is read anyway)
        self._key_names = tuple(k for k in self.defaults if k != "lr") + \
            tuple(c for c in registry.CLIP_OPTIONS if c not in self.defaults)

    # -- names: the registry's <-> torch's -------------------------------------------------
    def _apply(self, base: dict, given: dict, strict: bool) -> dict:
        """``base`` (torch's names) updated with ``given`` (either naming), checked.
        ``strict``: unknown keys are errors (a constructor's); a param group, as in
        torch, may carry keys of its own."""
        out, given = dict(base), dict(given)
        if self._has_betas and any(k in given for k in ("betas", "beta1", "beta2")):
            b1, b2 = out.get("betas", (0.9, 0.999))
            if "betas" in given:
                if "beta1" in given or "beta2" in given:
                    raise InvalidValue("give betas=(beta1, beta2) or beta1=/beta2=, not both")
                betas = given.pop("betas")
                if not isinstance(betas, (tuple, list)) or len(betas) != 2:
                    raise InvalidValue(f"invalid betas={betas!r}: betas must be a pair (beta1, beta2)")
                b1, b2 = betas
            out["betas"] = (given.pop("beta1", b1), given.pop("beta2", b2))
        unknown = set(given) - set(out) - set(self._core_names)
        if strict and unknown:
            valid = [k for k in out if k not in self._fixed] + list(registry.CLIP_OPTIONS)
            raise InvalidValue(f"{self.optimizer_name} has no hyperparameter {', '.join(sorted(unknown))}; "
                               f"valid: {', '.join(valid)}")
        out.update(given)
        self._check_group(out)
        return out

    def _check_group(self, group: dict) -> None:
        for flag, (_, accepted, why) in _FLAGS.items():
            if accepted is not None and group.get(flag) not in accepted:
                raise InvalidValue(f"{flag}={group.get(flag)!r} is not supported: {why}")
        for key, value in self._fixed.items():
            if key in group and group[key] != value:
                raise InvalidValue(f"{self.optimizer_name} has {key}={value!r}, not {group[key]!r}"
                                   + _which_instead(self._torch_cls, key, group[key]))
        registry.create(self.optimizer_name, **self._core_hyper(group))  # bad values fail here

    def _core_hyper(self, group: dict) -> dict:
        """The registry's hyperparameters from a group (torch's names), as numbers."""
        hyper = {k: _number(group[k]) for k in self._core_names if k in group}
        if self._has_betas and "betas" in group:
            hyper["beta1"], hyper["beta2"] = (_number(b) for b in group["betas"])
        return hyper

    def add_param_group(self, param_group: dict) -> None:
        group = dict(param_group)
        params = group.pop("params")
        own = {k: group.pop(k) for k in list(group) if k in self.defaults or k in self._core_names
               or k in ("beta1", "beta2")}
        resolved = self._apply(self.defaults, own, strict=False)
        super().add_param_group({"params": params, **group, **resolved})
        if self._torch_cls in EAGER_STATE:  # torch's Adagrad creates its state up front
            g = self.param_groups[-1]
            for p in g["params"]:
                if not self.state.get(p):
                    init = _number(g["initial_accumulator_value"])
                    init = complex(init, init) if p.is_complex() else init  # a pair of reals, as torch
                    self.state[p].update(step=0, sum=torch.full_like(p, init, memory_format=torch.preserve_format))

    # -- stepping ---------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None):
        """One update of every parameter that has a gradient; returns the closure's loss."""
        loss = None
        if closure is not None and self._looks_ahead:
            loss = self._closure_at_eval_points(closure)
        elif closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if self._looks_ahead and closure is None:
                raise OptvizError(f"{self.optimizer_name} evaluates the gradient at a look-ahead point: "
                                  "call step(closure) with a closure that recomputes the loss and gradients")
            plan = self._plan_for(group, params)
            grads = [p.grad for p in params]
            if plan.any_complex:
                grads = [torch.view_as_real(g) if c else g for g, c in zip(grads, plan.complex_)]
            if len(plan.cohorts) != 1:
                self._step_cohorts(plan, grads, group)
            elif plan.stepper is not None:
                self._step_compiled(plan, grads, group)
            else:  # the hot path: one call of the core for the whole group
                idx, state = plan.cohorts[0]
                token = donate_state()  # the old state is dropped below: let its buffers be reused in place
                try:
                    updates, state = plan.tx.update(grads, state, plan.views)
                finally:
                    end_donation(token)
                alpha = 1.0 if plan.lr_inside else -_number(group["lr"])
                for x, u in zip(plan.views, updates):
                    x.add_(u, alpha=alpha)
                plan.cohorts[0] = (idx, state)
                self._scatter(plan, idx, state)
        return loss

    def _step_cohorts(self, plan: _Plan, grads, group) -> None:
        """Parameters at different step counts: the stateless head (clipping) sees all of
        them, then each cohort steps with its own count."""
        params = plan.views
        if plan.prefix is not None:
            grads, _ = plan.prefix.update(grads, plan.prefix.init(params), params)
        alpha = 1.0 if plan.lr_inside else -_number(group["lr"])
        for n, (idx, state) in enumerate(plan.cohorts):
            p = [params[i] for i in idx]
            token = donate_state()
            try:
                updates, state = plan.rest.update([grads[i] for i in idx], state, p)
            finally:
                end_donation(token)
            for x, u in zip(p, updates):
                x.add_(u, alpha=alpha)
            plan.cohorts[n] = (idx, state)
            self._scatter(plan, idx, state)

    def _sync_cells(self, plan: _Plan, group) -> None:
        hyper = self._core_hyper(group)
        values = tuple(hyper[k] for k in plan.cells)
        if values != plan.values:  # a scheduler moved betas / momentum: new input values, same graph
            self._check_group(group)
            for cell, value in zip(plan.cells.values(), values):
                cell.fill_(value)
            plan.values = values

    def _step_compiled(self, plan: _Plan, grads, group) -> None:
        idx, state = plan.cohorts[0]
        state = plan.stepper(plan.views, grads, state, scale=-_number(group["lr"]))
        plan.cohorts[0] = (idx, state)
        self._scatter(plan, idx, state)
        if not plan.stepper.is_compiled:  # it fell back (a failed compile): eager from the next step on
            self._compile = False
            self._plans.clear()

    def _closure_at_eval_points(self, closure):
        """The closure's loss, run with the parameters where the look-ahead wants its
        gradient; the parameters are moved back afterwards."""
        saved = []
        for group in self.param_groups:
            if not group["params"]:
                continue
            plan = self._plan_for(group, list(group["params"]))  # all: the closure sets their gradients
            if len(plan.cohorts) != 1:
                continue
            for v, e in zip(plan.views, plan.tx.eval_point(plan.views, plan.cohorts[0][1])):
                if e is not v:
                    saved.append((v, v.clone()))
                    v.copy_(e)
        try:
            with torch.enable_grad():
                return closure()
        finally:
            for v, original in saved:
                v.copy_(original)

    # -- the core state behind each group ------------------------------------------------
    def _plan_for(self, group: dict, params: List[torch.Tensor]) -> _Plan:
        raw = tuple(map(group.get, self._key_names))   # lr is read at each step
        plan = self._plans.get(id(group))
        same_params = plan is not None and len(plan.params) == len(params) \
            and all(map(operator.is_, plan.params, params))
        if same_params and plan.raw == raw:
            return plan   # the hot path: nothing changed
        if same_params and plan.stepper is not None and plan.key == self._structure_key(group):
            self._sync_cells(plan, group)   # compiled: only values moved (a scheduler's betas)
            plan.raw = raw
            return plan
        plan = self._build_plan(group, params)
        plan.raw = raw
        self._plans[id(group)] = plan
        return plan

    def _structure_key(self, group: dict) -> tuple:
        """What decides a compiled group's graph: flags, and which numbers are zero
        (a zero switches a transform off); the numbers themselves are inputs."""
        return tuple((k, _is_zero(group[k]) if k in self._factory_names or k == "betas" else _freeze(group.get(k)))
                     for k in self._key_names)

    def _build_plan(self, group, params) -> _Plan:
        if any(p.grad is not None and p.grad.is_sparse for p in params):
            raise OptvizError(f"{self.optimizer_name}: sparse gradients are not supported")
        self._check_group(group)
        hyper = self._core_hyper(group)
        hyper.pop("lr", None)
        complex_ = tuple(p.is_complex() for p in params)
        views = [torch.view_as_real(p) if c else p for p, c in zip(params, complex_)]
        lr_inside = self._looks_ahead
        # compiled where asked for and possible; a look-ahead needs its closure between steps: eager
        compiling = self._compile is not False and not lr_inside and self._can_compile(params)
        cells: Dict[str, torch.Tensor] = {}
        if compiling:  # nonzero numbers become 0-d tensors: a new value is an input, not a new graph
            for k in self._factory_names:
                v = hyper.get(k)
                if k != "lr" and isinstance(v, (int, float)) and not isinstance(v, bool) and v != 0:
                    cells[k] = hyper[k] = torch.tensor(float(v), dtype=torch.float64)
        if lr_inside:  # the learning rate stays inside, read from the group at each step
            tx = registry.create(self.optimizer_name, lr=lambda step, g=group: _number(g["lr"]), **hyper)
        else:  # applied as p.add_(u, alpha=-lr), torch's own arithmetic
            tx, _ = split_learning_rate(registry.create(self.optimizer_name, lr=1.0, **hyper))
        if group.get("maximize"):
            tx = chain(scale(-1.0), tx)
        parts = tx.parts or (tx,)
        n_free = 0
        while n_free < len(parts) and isinstance(parts[n_free].init(views[:1]), EmptyState):
            n_free += 1
        prefix = chain(*parts[:n_free]) if n_free else None
        rest = chain(*parts[n_free:])
        whole = _then(prefix, rest) if prefix is not None else rest
        template = rest.init([])
        leaves = _leaves(template)
        cohorts = self._gather(rest, template, leaves, params, views, complex_)
        key = self._structure_key(group) if compiling else None
        plan = _Plan(key, tuple(params), views, complex_, any(complex_), lr_inside, whole, prefix, rest,
                     leaves, cohorts)
        if compiling:
            plan.stepper = compiled.compile_step(whole, share=("TorchOptimizer", self.optimizer_name, key, complex_),
                                        device=str(params[0].device))
            plan.cells = cells
            plan.values = tuple(float(c) for c in cells.values())
            plan.cohorts = [(idx, compiled.scalars_to_tensors(state)) for idx, state in cohorts]
        return plan

    def _can_compile(self, params) -> bool:
        ok, why = compiled.available(str(params[0].device))
        if not ok:
            if self._compile is True:
                compiled._warn_once(f"optviz: compile=True, but updates run eagerly: {why}")
            self._compile = False
        return ok

    def _gather(self, rest, template, leaves: List[_Leaf], params, views, complex_) -> List[Tuple[List[int], Any]]:
        """The core state for ``params`` from ``self.state`` (fresh where nothing is
        saved), split into cohorts of parameters whose counts agree. ``template``: ``rest``'s
        state for no parameters."""
        nodes = sorted({leaf.node for leaf in leaves})
        buffers = {n: [l.name for l in leaves if l.node == n and l.kind == "buffer"] for n in nodes}
        signatures, values = [], []
        for i, p in enumerate(params):
            saved = self.state.get(p, {})
            fresh = None  # this parameter's initial state, made only if some buffer is missing
            started = {n: any(b in saved for b in buffers[n]) if buffers[n] else bool(saved) for n in nodes}
            sig, vals = [], {}
            for leaf in leaves:
                if leaf.kind == "buffer":
                    value = saved.get(leaf.name) if started[leaf.node] else None
                    if value is None:  # on the real view: torch's Adagrad also starts (init, init) pairs
                        fresh = rest.init([views[i]]) if fresh is None else fresh
                        value = _at(fresh, leaf.index)[0]
                    elif complex_[i]:
                        value = torch.view_as_real(value)
                    vals[leaf.path] = value
                    continue
                default = _at(template, leaf.index)
                if leaf.kind == "hidden":   # SGD's count: torch keeps none; only "has a buffer" matters
                    value = int(started[leaf.node])
                elif not started[leaf.node]:
                    value = default
                elif leaf.kind in ("step", "step_read"):
                    if "step" not in saved:
                        raise InvalidValue(f"the state of parameter {i} of a group has "
                                           f"{', '.join(b for b in buffers[leaf.node] if b in saved)} "
                                           "but no 'step'")
                    value = int(_number(saved["step"]))
                else:
                    value = _number(saved[leaf.name]) if leaf.name in saved else default
                sig.append(value)
                vals[leaf.path] = value
            signatures.append(tuple(sig))
            values.append(vals)
        cohorts: Dict[tuple, List[int]] = {}
        for i, sig in enumerate(signatures):
            cohorts.setdefault(sig, []).append(i)
        return [(idx, map_leaves(template, lambda path, _, per_param, idx=idx:
                                 [values[i][path] for i in idx] if per_param else values[idx[0]][path]))
                for idx in cohorts.values()]

    def _scatter(self, plan: _Plan, idx, state) -> None:
        """Write the core state into ``self.state[p]`` under torch's names (cheap: the
        leaf positions were worked out once, in :meth:`_build_plan`)."""
        whole = len(idx) == len(plan.params)
        params = plan.params if whole else [plan.params[i] for i in idx]
        complex_ = plan.complex_ if whole else [plan.complex_[i] for i in idx]
        dicts = [self.state[p] for p in params]
        for leaf in plan.leaves:
            if leaf.kind in ("hidden", "step_read"):
                continue
            value = _at(state, leaf.index)
            if leaf.kind == "buffer":
                if plan.any_complex:
                    value = [torch.view_as_complex(v) if c else v for v, c in zip(value, complex_)]
                for d, v in zip(dicts, value):
                    d[leaf.name] = v
            else:
                value = _number(value)
                if leaf.kind == "step":
                    value = int(value)
                for d in dicts:
                    d[leaf.name] = value

    # -- checkpoints ------------------------------------------------------------------
    def load_state_dict(self, state_dict):
        """Load a state_dict of this class, or of the matching ``torch.optim`` class
        (torch's names; its implementation flags fused/capturable/differentiable are reset)."""
        state_dict = dict(state_dict)
        groups = []
        for g in state_dict["param_groups"]:
            g = dict(g)
            if self._has_betas and ("beta1" in g or "beta2" in g):   # saved by an older optviz
                g["betas"] = (g.pop("beta1", 0.9), g.pop("beta2", 0.999))
            for key in ("fused", "capturable", "differentiable"):   # how torch ran, not what it computed
                g[key] = _FLAGS[key][0]
            self._refuse_foreign(g)
            self._check_group({**self.defaults, **{k: v for k, v in g.items() if k != "params"}})
            groups.append(g)
        state_dict["param_groups"] = groups
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            for k, v in self.defaults.items():
                group.setdefault(k, v)
        for s in self.state.values():
            if "step" in s:
                s["step"] = int(_number(s["step"]))
            if "mu_product" in s:
                s["mu_product"] = _number(s["mu_product"])
        self._plans.clear()  # rebuilt from self.state at the next step

    def _refuse_foreign(self, group: dict) -> None:
        """A group saved by another algorithm (AdamW's into Adam, SGD with Nesterov into
        plain momentum) would load and silently compute something else: refuse it."""
        own = set(self.defaults) | {"lr"}
        for key, value in group.items():
            if key in own or not value or key in _SCHEDULER_KEYS:
                continue
            owners = [n for n, (_, fixed) in COUNTERPARTS.items() if fixed.get(key) == value] or \
                [n for n in registry.names() if key in registry.get(n).defaults
                 or (key == "betas" and "beta1" in registry.get(n).defaults)]
            if owners:
                raise InvalidValue(f"this state_dict has {key}={value!r}, which {self.optimizer_name} does not "
                                   f"have: load it into TorchOptimizer(..., {owners[0]!r})")

    def __getstate__(self):
        state = super().__getstate__()
        state.update(optimizer_name=self.optimizer_name, _compile=self._compile)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "optimizer_name" in self.__dict__:  # unpickling (load_state_dict passes state and groups only)
            self._setup_names()
            self._set_key_names()
            self.__dict__.setdefault("_compile", False)
        self._plans = {}

    def __repr__(self):
        return f"TorchOptimizer[{self.optimizer_name}]" + super().__repr__()[len(type(self).__name__):]


def _then(prefix: GradientTransformation, rest: GradientTransformation) -> GradientTransformation:
    """``prefix`` (stateless) then ``rest``, with ``rest``'s state."""
    empty = prefix.init(None)

    def update(u, state, params=None):
        u, _ = prefix.update(u, empty, params)
        return rest.update(u, state, params)

    return GradientTransformation(rest.init, update, rest.eval_point)


# Keys torch's schedulers add to a group; never hyperparameters of an algorithm.
_SCHEDULER_KEYS = {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum", "base_lr", "param_names"}


# --- helpers ------------------------------------------------------------------------------

def _number(x):
    """A Python number from a number or a one-element tensor (torch allows tensor lr / betas)."""
    if isinstance(x, (int, float)):
        return x
    if isinstance(x, torch.Tensor):
        return x.item()
    return x


def _is_zero(x) -> Any:
    if isinstance(x, tuple):
        return tuple(_is_zero(v) for v in x)
    return _number(x) == 0


def _freeze(x):
    if isinstance(x, list):
        return tuple(_freeze(v) for v in x)
    if isinstance(x, torch.Tensor):
        return ("tensor", x.item()) if x.numel() == 1 else id(x)
    return x


def _which_instead(torch_cls, key, value) -> str:
    for name, (cls, fixed) in COUNTERPARTS.items():
        if cls == torch_cls and fixed.get(key, _MISSING) == value:
            return f" (that is {name!r})"
    return ""


_MISSING = object()


def _at(state, index):
    for i in index:
        state = state[i]
    return state


def _leaves(template) -> List[_Leaf]:
    """Where each leaf of a core state goes in ``state[p]``: buffers and scalars under
    torch's names; every transform's count under ``step``, except the momentum
    trace's (torch's SGD keeps none: whether its buffer exists is all it needs)."""
    paths = leaf_paths(template)
    names = short_names(paths)
    out: List[_Leaf] = []
    nodes: Dict[tuple, int] = {}
    step_named = False

    def walk(state, index, path):
        nonlocal step_named
        if isinstance(state, tuple) and hasattr(state, "_fields"):
            node = nodes.setdefault(index, len(nodes))
            for i, (f, v) in enumerate(zip(state._fields, state)):
                sub = (*index, i)
                if isinstance(v, tuple):
                    walk(v, sub, path + (f,))  # () of a switched-off buffer: nothing
                elif isinstance(v, list):
                    out.append(_Leaf(sub, path + (f,), names[path + (f,)], "buffer", node))
                elif f == "step":
                    if isinstance(state, TraceState):
                        out.append(_Leaf(sub, path + (f,), "step", "hidden", node))
                    else:  # a second counter equals the first once both have started: read only
                        out.append(_Leaf(sub, path + (f,), "step", "step_read" if step_named else "step", node))
                        step_named = True
                else:
                    out.append(_Leaf(sub, path + (f,), names[path + (f,)], "scalar", node))
        elif isinstance(state, tuple):
            for i, v in enumerate(state):
                walk(v, (*index, i), path + (str(i),))

    walk(template, (), ())
    return out
