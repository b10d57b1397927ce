"""M copies of one network as one batched model, and their optimizers as a few core transforms.

The runs of a comparison that share a model train together. They form a grid of
``S`` seeds x ``R`` settings (member ``(s, r)`` = setting ``r`` on seed ``s``):
runs of one seed see the same batches, so a layer whose input they share is one
GEMM for all ``R`` of them (``x @ [W_1 ... W_R]``), and every later layer is batched
(``bmm`` for linear layers, one grouped convolution for conv layers).

Parameters. Each parameter of the network is one leaf tensor of shape
``(S, R, *shape)``, so member ``(s, r)``'s weights ``P[s, r]`` have the values and the
layout of the sequential trainer's ``model.parameters()``.

Optimizers. Settings are ordered so that the runs of one optimizer (same name, same
structural options such as ``nesterov`` or clipping) are contiguous in ``R``. Each
such *group* is stepped by one core transform (:mod:`optviz.optim`) over the views
``P.view(S, R, -1)[:, a:b]`` of shape ``(S, g, n)``; hyperparameters that differ
between its settings are arrays of shape ``(1, g, 1)``, which the core broadcasts.
No Python loop runs over runs, or over the parameters of a run, on the hot path.
The learning rate is applied last, as ``p.add_(u, alpha=-lr)``, exactly as
:class:`~optviz.optim.TorchOptimizer` does, so a member's numbers equal the
sequential trainer's up to the order of the sums inside the GEMMs.

Frozen members. A member that diverged is frozen: its parameters, gradients and
optimizer state are zeroed, so every later update of it is exactly zero and finite
(a zero gradient on a zero state is a zero step for every registered optimizer).
Members never mix (every operation is per member), so its NaNs reach no one.

Example::

    members = [[build_model("mlp", seed=s) for _ in range(R)] for s in range(S)]
    net = StackedNetwork(members)
    logits = net.train_logits(x)         # x (S, B, 1, 28, 28) -> (S, R, B, 10)
    logits = net.eval_logits(x_val)      # x_val (B, 1, 28, 28) -> (S, R, B, 10)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import OptvizError
from ..optim import registry
from ..optim.base import GradientTransformation, split_learning_rate
from ..optim.ops import donate_state, end_donation
from ..optim.state import leaf_paths, map_leaves, short_names

__all__ = ["StackedNetwork", "OptimizerGroup", "group_key", "unsupported_reason", "make_groups",
           "state_buffers", "bytes_per_run"]


# ====================================================================== batched layers


class _SharedInputLinear(torch.autograd.Function):
    """``x (S, B, i)``, shared by the ``R`` members of each seed; ``W (S, R, o, i)``,
    ``b (S, R, o)`` -> ``(S, R, B, o)``: one GEMM per seed. The backward writes ``dW``
    in ``W``'s own layout (autograd's default for ``x @ W^T`` returns it transposed,
    and copying it back costs as much as the GEMM itself)."""

    @staticmethod
    def forward(ctx, x, W, b):
        S, R, o, i = W.shape
        y = torch.bmm(x, W.reshape(S, R * o, i).transpose(1, 2))           # (S, B, R*o)
        ctx.save_for_backward(x, W)
        return y.view(S, -1, R, o).permute(0, 2, 1, 3) + b[:, :, None, :]

    @staticmethod
    def backward(ctx, gy):                                                   # (S, R, B, o)
        x, W = ctx.saved_tensors
        S, R, o, i = W.shape
        g = gy.permute(0, 2, 1, 3).reshape(S, -1, R * o)                    # (S, B, R*o)
        gW = torch.bmm(g.transpose(1, 2), x).view(S, R, o, i)
        gx = torch.bmm(g, W.reshape(S, R * o, i)) if ctx.needs_input_grad[0] else None
        return gx, gW, gy.sum(2)


class _MemberLinear(torch.autograd.Function):
    """``x (S, R, B, i)``, ``W (S, R, o, i)``, ``b (S, R, o)`` -> ``(S, R, B, o)``; ``dW`` in ``W``'s layout."""

    @staticmethod
    def forward(ctx, x, W, b):
        ctx.save_for_backward(x, W)
        return torch.matmul(x, W.transpose(-1, -2)) + b[..., None, :]

    @staticmethod
    def backward(ctx, gy):
        x, W = ctx.saved_tensors
        gW = torch.matmul(gy.transpose(-1, -2), x)
        gx = torch.matmul(gy, W) if ctx.needs_input_grad[0] else None
        return gx, gW, gy.sum(-2)


_LAYERS = (nn.Flatten, nn.Linear, nn.ReLU, nn.Conv2d, nn.MaxPool2d)


def unsupported_reason(model: nn.Module) -> Optional[str]:
    """``None`` if :class:`StackedNetwork` can run ``model``, else why it cannot."""
    if not isinstance(model, nn.Sequential):
        return f"{type(model).__name__} is not an nn.Sequential"
    for layer in model:
        if not isinstance(layer, _LAYERS):
            return f"it has a {type(layer).__name__} layer"
        if isinstance(layer, nn.Flatten) and (layer.start_dim, layer.end_dim) != (1, -1):
            return "it flattens other than Flatten(1, -1)"
        if isinstance(layer, (nn.Linear, nn.Conv2d)) and layer.bias is None:
            return "a layer has no bias"
        if isinstance(layer, nn.Conv2d) and (layer.groups != 1 or layer.padding_mode != "zeros"):
            return "it has a grouped or non-zero-padded convolution"
    return None


# ====================================================================== the network


class StackedNetwork:
    """``S x R`` copies of one network with their own weights, run as one model.

    ``members[s][r]`` is the model of setting ``r`` on seed ``s`` (freshly built or
    restored); its weights are copied into the stacked leaves :attr:`params`. The
    network must be an ``nn.Sequential`` of Flatten, Linear, ReLU, Conv2d and
    MaxPool2d layers (every model of :data:`~optviz.mnist.models.MODELS`).
    """

    def __init__(self, members: Sequence[Sequence[nn.Module]], dtype=None, device=None):
        S, R = len(members), len(members[0]) if members else 0
        if S == 0 or R == 0 or any(len(row) != R for row in members):
            raise OptvizError("a stack needs a full grid of members: every seed with every setting")
        base = members[0][0]
        why = unsupported_reason(base)
        if why:
            raise OptvizError(f"this model cannot be stacked: {why}")
        self.layers = list(base)
        self.names = [n for n, _ in base.named_parameters()]
        self.shapes = [tuple(p.shape) for p in base.parameters()]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.S, self.R = S, R
        first = next(base.parameters())
        dtype, device = dtype or first.dtype, device or first.device
        with torch.no_grad():
            self.params = [torch.stack([torch.stack([dict(m.named_parameters())[name].detach() for m in row])
                                        for row in members]).to(device, dtype).contiguous().requires_grad_()
                           for name in self.names]
        self._where = []  # per layer: index of its weight in self.params, or None
        k = 0
        for layer in self.layers:
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                self._where.append(k)
                k += 2
            else:
                self._where.append(None)

    def train_logits(self, x: torch.Tensor) -> torch.Tensor:
        """One batch per seed, ``x (S, B, *input)`` -> logits ``(S, R, B, classes)``."""
        return self._forward(x, self.params, self.R)

    def eval_logits(self, x: torch.Tensor) -> torch.Tensor:
        """One batch for every member, ``x (B, *input)`` -> logits ``(S, R, B, classes)``: the
        stack runs as a single seed of ``S * R`` members, so a shared first layer is one GEMM."""
        S, R = self.S, self.R
        flat = [p.view(1, S * R, *p.shape[2:]) for p in self.params]
        out = self._forward(x[None], flat, S * R)
        return out.view(S, R, *out.shape[2:])

    def _forward(self, x, params, R):
        # Activations are "shared" (S, B, *features): one per seed, for all its members;
        # "members" (S, R, B, *features); or "conv" (S, B, R*C, H, W): members folded into
        # channels, so that a conv layer of all members is one grouped convolution.
        layout = "shared"
        for layer, k in zip(self.layers, self._where):
            if isinstance(layer, nn.Linear):
                W, b = params[k], params[k + 1]
                if layout == "shared":
                    x = _SharedInputLinear.apply(x, W, b)
                else:
                    if layout == "conv":
                        x = _unfold_members(x, R)
                    x = _MemberLinear.apply(x, W, b)
                layout = "members"
            elif isinstance(layer, nn.Conv2d):
                if layout == "members":
                    x = _fold_members(x)
                x = _conv(x, params[k], params[k + 1], layer, grouped=layout != "shared")
                layout = "conv"
            elif isinstance(layer, nn.ReLU):
                x = torch.relu(x)
            elif isinstance(layer, nn.MaxPool2d):
                if layout == "members":
                    x, layout = _fold_members(x), "conv"
                x = F.max_pool2d(x.flatten(0, 1), layer.kernel_size, layer.stride, layer.padding,
                                 layer.dilation, layer.ceil_mode).unflatten(0, x.shape[:2])
            else:  # Flatten(1, -1): flatten the features
                if layout == "conv":
                    x, layout = _unfold_members(x, R), "members"
                x = x.flatten(2 if layout == "shared" else 3)
        return x

    # -------------------------------------------------------------- members
    def flat_views(self) -> List[torch.Tensor]:
        """The leaves as ``(S, R, n)`` views (what the optimizer groups slice)."""
        return [p.view(self.S, self.R, -1) for p in self.params]

    def member_vectors(self) -> torch.Tensor:
        """Every member's parameters, flattened in ``model.parameters()`` order: ``(S, R, P)`` (a copy)."""
        return torch.cat([p.detach().reshape(self.S, self.R, -1) for p in self.params], dim=2)

    def member_state_dict(self, s: int, r: int) -> Dict[str, torch.Tensor]:
        """Member ``(s, r)`` as a ``model.state_dict()`` (copies)."""
        return {name: p[s, r].detach().clone() for name, p in zip(self.names, self.params)}


def _conv(x, W, b, layer: nn.Conv2d, grouped: bool):
    """``x`` "shared" (S, B, C, H, W) or "conv" (S, B, R*C, H, W); ``W (S, R, O, C, kh, kw)``
    -> "conv" (S, B, R*O, H', W'). A shared input is one conv with ``R*O`` filters per seed;
    a per-member input one grouped conv (one group per member)."""
    S, R, O = W.shape[:3]
    kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=R if grouped else 1)
    return torch.stack([F.conv2d(x[s], W[s].reshape(R * O, *W.shape[3:]), b[s].reshape(-1), **kw)
                        for s in range(S)])  # S, the seeds of a stack, is small


def _fold_members(x):
    """(S, R, B, C, H, W) -> (S, B, R*C, H, W)."""
    S, R, B, C = x.shape[:4]
    return x.transpose(1, 2).reshape(S, B, R * C, *x.shape[4:])


def _unfold_members(x, R):
    """(S, B, R*C, H, W) -> (S, R, B, C, H, W)."""
    S, B = x.shape[:2]
    return x.reshape(S, B, R, -1, *x.shape[3:]).transpose(1, 2)


# ====================================================================== the optimizers


def group_key(entry) -> tuple:
    """Settings with equal keys step as one transform: the optimizer, its clipping, and its
    non-numeric options (``nesterov``, ``amsgrad``, ``centered``, ...). Numeric
    hyperparameters may differ: they become arrays over the group's settings."""
    fixed = tuple(sorted((k, v) for k, v in entry.full_hyper.items()
                         if isinstance(v, bool) or not isinstance(v, (int, float))))
    return (entry.optimizer, entry.clip_norm, entry.clip_value, fixed)


def state_buffers(optimizer: str, hyper: dict) -> int:
    """How many parameter-sized buffers the optimizer ``optimizer`` (a registry name) with the
    hyperparameters ``hyper`` keeps (for memory estimates)."""
    tx = registry.create(optimizer, **hyper)
    state = tx.init([torch.zeros(1)])
    count = []
    map_leaves(state, lambda path, v, per_param: count.append(1) if per_param else None)
    return len(count)


@dataclass
class OptimizerGroup:
    """The settings ``first .. first + size - 1`` of a stack, stepped by one core transform.

    ``lr`` is the learning rate of each setting (float, or an array ``(1, g, 1)``) or a
    function ``step -> lr`` of that kind (a schedule); it is applied last, as
    ``p.add_(u, alpha=-lr)``; ``None`` when the transform applies it itself (look-ahead
    Nesterov, whose rate comes before its velocity).
    """

    optimizer: str
    first: int
    size: int
    tx: GradientTransformation        # the optimizer without its final learning-rate scaling
    lr: Any
    clip_norm: Optional[float]
    clip_value: Optional[float]
    state: Any = None
    step: int = 0                     # updates applied (equal for every member of the group)
    names: Dict[tuple, str] = field(default_factory=dict)
    compiled: Any = None              # a CompiledStep of ``tx`` (which then applies the rate itself)
    lr_in: Any = None                 # ... the rate's tensor that it reads, set before each step

    @property
    def settings(self) -> slice:
        return slice(self.first, self.first + self.size)

    def views(self, leaves: List[torch.Tensor]) -> List[torch.Tensor]:
        """This group's part ``(S, g, n)`` of each ``(S, R, n)`` leaf."""
        return [leaf[:, self.settings] for leaf in leaves]

    def init(self, params: List[torch.Tensor]) -> None:
        self.state = (self.compiled or self.tx).init(self.views(params))
        self.names = short_names(leaf_paths(self.state))

    def learning_rate(self):
        return self.lr(self.step) if callable(self.lr) else self.lr

    def update(self, params: List[torch.Tensor], grads: List[torch.Tensor],
               norms: Optional[torch.Tensor]) -> None:
        """One step of every member: clip ``grads`` (and record each member's norm before
        clipping into ``norms[:, settings]``), compute the direction, apply ``-lr`` times it."""
        p, g = self.views(params), self.views(grads)
        if self.clip_value is not None:
            for x in g:
                x.clamp_(-self.clip_value, self.clip_value)
        if self.clip_norm is not None:  # torch.nn.utils.clip_grad_norm_, per member
            total = torch.stack([x.pow(2).sum(-1) for x in g]).sum(0).sqrt()       # (S, g)
            if norms is not None:
                norms[:, self.settings] = total
            coef = (self.clip_norm / (total + 1e-6)).clamp(max=1.0)[..., None]
            for x in g:
                x.mul_(coef)
        if self.compiled is not None:  # one fused loop: direction, rate and the update of the parameters
            if self.lr_in is not None:
                self.lr_in.copy_(torch.as_tensor(self.learning_rate(), dtype=self.lr_in.dtype))
            self.state = self.compiled(p, g, self.state)
            self.step += 1
            return
        token = donate_state()  # the old state is dropped at once: let the transforms update it in place
        try:
            u, self.state = self.tx.update(g, self.state, p)
        finally:
            end_donation(token)
        lr = self.learning_rate()
        if lr is None:      # the transform applied the rate itself
            for x, d in zip(p, u):
                x.add_(d)
        elif isinstance(lr, (int, float)):
            for x, d in zip(p, u):
                x.add_(d, alpha=-lr)
        else:
            neg = -lr
            for x, d in zip(p, u):
                x.addcmul_(d, neg)
        self.step += 1

    def eval_points(self, params: List[torch.Tensor]):
        """Where the transform wants the next gradient (look-ahead Nesterov), or ``None``."""
        if self.tx.eval_point is None:
            return None
        return self.tx.eval_point(self.views(params), self.state)

    # -------------------------------------------------------------- state per member
    def zero_member(self, s: int, j: int) -> None:
        """Zero member ``(s, first + j)``'s optimizer state (it is being frozen)."""
        def zero(path, v, per_param):
            if per_param:
                for x in v:
                    x[s, j].zero_()
            return v
        map_leaves(self.state, zero)

    def member_state(self, s: int, j: int, shapes: Sequence[tuple]) -> dict:
        """Member ``(s, first + j)``'s optimizer state as a ``torch.optim`` ``state_dict``
        (torch's buffer names: ``exp_avg``, ``momentum_buffer``, ...)."""
        per_param: Dict[int, Dict[str, Any]] = {k: {} for k in range(len(shapes))}

        def take(path, v, per):
            name = self.names[path]
            for k, shape in enumerate(shapes):
                if per:
                    per_param[k][name] = v[k][s, j].detach().reshape(shape).clone()
                else:
                    per_param[k][name] = _member_value(v, j)
            return v
        map_leaves(self.state, take)
        return {"state": per_param, "param_groups": [{"params": list(range(len(shapes)))}]}

    def load_member(self, s: int, j: int, saved: dict) -> None:
        """Restore member ``(s, first + j)``'s optimizer state from :meth:`member_state`'s form
        (also what :class:`~optviz.optim.TorchOptimizer` saves)."""
        state = saved.get("state", {})
        first_key = next(iter(state), None)

        def put(path, v, per):
            name = self.names[path]
            if per:
                for k, x in enumerate(v):
                    entry = state.get(k, state.get(str(k), {}))
                    if name in entry:
                        x[s, j].copy_(torch.as_tensor(entry[name]).reshape(-1))
                return v
            if first_key is None or name not in state[first_key]:
                return v
            value = state[first_key][name]
            if isinstance(v, int):
                return int(value.item()) if torch.is_tensor(value) else int(value)
            if torch.is_tensor(v) and v.dim() == 3:     # (1, g, 1): one value per setting
                v = v.clone()
                v[0, j, 0] = torch.as_tensor(value).reshape(())
                return v
            return value.item() if torch.is_tensor(value) and value.dim() == 0 and not torch.is_tensor(v) else value
        self.state = map_leaves(self.state, put)
        steps = [v for path, v in _shared_leaves(self.state) if path[-1] == "step"]
        if steps:
            self.step = int(steps[0])


def _member_value(v, j):
    if torch.is_tensor(v) and v.dim() == 3:
        return v[0, j, 0].detach().clone()
    return v


def _shared_leaves(state):
    out = []
    map_leaves(state, lambda path, v, per: out.append((path, v)) if not per else None)
    return out


def make_groups(entries: Sequence, make_lr: Callable[[Any, Any], Any], dtype, device,
                compile=False) -> List[OptimizerGroup]:
    """One :class:`OptimizerGroup` per run of equal :func:`group_key` in ``entries`` (already
    ordered so that equal keys are contiguous). ``make_lr(lr, entry)`` turns the group's
    learning rate (a float or a ``(1, g, 1)`` tensor) into what the group applies (the same,
    or a schedule).

    ``compile`` (``True``, ``"auto"``): each group's whole step (the direction, the rate,
    the update of the parameters) is one ``torch.compile``d function
    (:func:`optviz.optim.compiled.compile_step`); the rate is then a tensor input that the
    group sets before each step, so a schedule never recompiles, and groups of one
    structure share their compiled code."""
    from ..optim.compiled import available, compile_step

    use_compiler = compile is True or (compile == "auto" and available(str(device))[0])
    groups: List[OptimizerGroup] = []
    i = 0
    while i < len(entries):
        key = group_key(entries[i])
        j = i
        while j < len(entries) and group_key(entries[j]) == key:
            j += 1
        members = entries[i:j]
        full = [e.full_hyper for e in members]
        hyper = {}
        for k in full[0]:
            values = [f[k] for f in full]
            if isinstance(values[0], bool) or not isinstance(values[0], (int, float)) or len(set(values)) == 1:
                hyper[k] = values[0]
            else:
                hyper[k] = torch.tensor(values, dtype=dtype, device=device).view(1, -1, 1)
        base_lr = hyper.pop("lr", None)
        lr = make_lr(base_lr, members[0])
        name = members[0].optimizer
        if use_compiler:
            lr_in = torch.zeros((1, j - i, 1), dtype=dtype, device=device)
            tx = registry.create(name, lr=lr_in, **hyper)
            step = compile_step(tx, share=(name, group_key(members[0]), tuple(hyper)), device=str(device))
            groups.append(OptimizerGroup(name, i, j - i, tx, lr, members[0].clip_norm, members[0].clip_value,
                                         compiled=step, lr_in=lr_in))
            i = j
            continue
        tx = registry.create(name, lr=lambda step: 1.0, **hyper)
        direction, rate = split_learning_rate(tx)
        if rate is None:  # the rate is not the last step (look-ahead Nesterov scales before its velocity)
            direction, lr = registry.create(name, lr=lr, **hyper), None
        groups.append(OptimizerGroup(name, i, j - i, direction, lr, members[0].clip_norm, members[0].clip_value))
        i = j
    return groups


# ====================================================================== memory


def bytes_per_member(model: nn.Module, input_shape, batch: int, eval_images: int, buffers: int,
                     itemsize: int = 4) -> int:
    """About how many bytes one member of a stack needs: its parameters, gradients, ``buffers``
    optimizer buffers and a copy (snapshots, checkpoints), plus the activations of a training
    batch (kept for the backward pass) and of an evaluation pass of ``eval_images`` images."""
    P = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        h = torch.zeros(1, *input_shape)
        acts = 0
        for layer in model:
            h = layer(h)
            acts += h.numel()
    return int(itemsize * (P * (3 + buffers) + acts * (3 * batch + eval_images)))


def bytes_per_run(model: str, settings: Sequence, batch_size: int, eval_batch_size: int, n_runs: int,
                  itemsize: int, input_shape=(1, 28, 28)) -> int:
    """About how many bytes each run of a stack of ``n_runs`` needs (:func:`bytes_per_member`),
    for the model named ``model`` and the optimizer that keeps the most buffers among
    ``settings`` (anything with ``optimizer`` and ``hyper``: entries of a comparison, settings
    of a study)."""
    from .models import build_model

    buffers = max(state_buffers(s.optimizer, s.hyper) for s in settings)
    return bytes_per_member(build_model(model), input_shape, batch_size, eval_chunk(n_runs, eval_batch_size),
                            buffers, itemsize)


def eval_chunk(members: int, eval_batch_size: int) -> int:
    """Images per evaluation pass of a stack of ``members``: the activations of all members
    together stay about those of ``4 * eval_batch_size`` images of one network."""
    return max(16, 4 * eval_batch_size // max(members, 1))
