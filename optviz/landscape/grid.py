"""The loss and accuracy of a network on a grid over a plane, many grid points per forward pass.

A grid point ``(a, b)`` of a :class:`~optviz.landscape.plane.Plane` is the network with
weights ``origin + a * d1 + b * d2``; its loss on an evaluation set ``(x, y)`` is
one full forward pass. A 51 x 51 grid is 2,601 of them. Two batched evaluators:

- ``"linear"`` (the fast path): the first layer with weights (a ``Linear`` or
  ``Conv2d``, after parameter-free layers such as ``Flatten``) is linear in its
  weights and bias, so on the plane its output is ``Z0 + a * Z1 + b * Z2``, where
  ``Z0, Z1, Z2`` are that layer's outputs with the origin's and the two directions'
  slices of its parameters. They are computed once; a chunk of ``C`` grid points is
  then one matrix product ``[1, a, b] @ [Z0; Z1; Z2]`` (no per-point copy of the
  largest weight matrix, no per-point first layer: for the lecture MLP that is 98 %
  of the work), and the remaining layers run for all ``C`` points at once with
  ``torch.func.vmap`` over ``torch.func.functional_call`` with per-point weights
  ``[1, a, b] @ [origin; d1; d2]``.
- ``"vmap"`` (any model): the whole forward pass under ``vmap`` over per-point weights.

Memory is estimated before anything is computed: a one-image probe forward pass
records every layer's output size, which gives the bytes one grid point needs
(its activations on all images and its weights) and the fixed part (the
evaluation set, ``Z0, Z1, Z2``, the result arrays). Chunks are sized to a budget
(default half the available memory) and kept small enough that one pass's largest
activation stays in the CPU's cache (:data:`CACHE_TARGET`); the first layer's
output goes into one buffer reused by every chunk. When even one grid point does not fit,
:class:`GridTooLarge` (an :class:`~optviz.errors.OptvizError`) says so, with the
estimate, before any work is done.

:func:`pointwise_losses` is the plain loop (set the weights, forward, repeat): the
reference for the tests and the benchmark. :func:`evaluate_weights` gives the loss
at arbitrary weight vectors (the snapshots of a path), batched the same way.

Cache helpers (:func:`cache_key`, :func:`save_arrays`, :func:`load_arrays`) store
results as ``.npz`` files written atomically, so redrawing costs nothing.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..errors import InvalidValue, OptvizError, UnknownName
from ..io import atomic_path
from ..memory import default_memory_budget, format_bytes, parse_bytes  # noqa: F401  (re-exported)

__all__ = ["METHODS", "GridTooLarge", "MemoryEstimate", "PlaneEvaluator", "GridResult", "loss_grid",
           "pointwise_losses", "evaluate_weights", "default_memory_budget", "parse_bytes", "format_bytes",
           "grid_axes", "cache_key", "save_arrays", "load_arrays"]

METHODS = ("auto", "linear", "vmap")
MAX_CHUNK = 512          # grid points per pass, at most
CACHE_TARGET = 32 * 10 ** 6   # bytes of the largest activation of one pass: passes that stay in the CPU's
                              # cache run 2-3x faster than huge ones (lecture MLP, 2,000 images: 32 points)
_SAFETY = 1.25           # headroom for temporaries the probe does not see


class GridTooLarge(OptvizError):
    """The grid would not fit in the memory budget (raised before computing anything)."""


# --- the model, cut after its first layer ---------------------------------------------------------


def _param_layout(model):
    """[(name, shape, offset)] in ``model.parameters()`` order (the flat vector's order)."""
    out, offset = [], 0
    for name, p in model.named_parameters():
        out.append((name, tuple(p.shape), offset))
        offset += p.numel()
    return out, offset


def _split_linear_first(model):
    """``(prefix, index, first, rest)`` when the model is ``nn.Sequential`` whose first layer
    with parameters is a ``Linear`` or ``Conv2d`` preceded only by parameter- and buffer-free
    layers; else None. ``rest`` keeps the original child names, so parameter names match."""
    from torch import nn

    if not isinstance(model, nn.Sequential):
        return None
    children = list(model.named_children())
    for i, (name, child) in enumerate(children):
        if any(True for _ in child.parameters()):
            if type(child) not in (nn.Linear, nn.Conv2d):
                return None
            if any(True for _, c in children[:i] for _ in list(c.parameters()) + list(c.buffers())):
                return None
            prefix = nn.Sequential(collections.OrderedDict(children[:i]))
            rest = nn.Sequential(collections.OrderedDict(children[i + 1:]))
            return prefix, name, child, rest
    return None


def _probe_numels(module, sample) -> Tuple[list, object]:
    """Output numel per sample of every leaf module of ``module`` run on ``sample`` (1, ...)."""
    import torch

    sizes, hooks = [], []
    for m in module.modules():
        if not list(m.children()):
            hooks.append(m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel())))
    try:
        with torch.inference_mode():
            out = module(sample)
    finally:
        for h in hooks:
            h.remove()
    return sizes, out


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a grid evaluation needs: ``fixed + chunk * per_point``."""

    method: str
    n_points: int
    n_images: int
    fixed: int            # evaluation set, Z0/Z1/Z2, results
    per_point: int        # activations on all images + weights, for one grid point
    budget: int
    chunk: int            # grid points per pass (0: does not fit)

    @property
    def peak(self) -> int:
        return self.fixed + max(self.chunk, 1) * self.per_point

    @property
    def fits(self) -> bool:
        return self.chunk >= 1

    def describe(self) -> str:
        return (f"{format_bytes(self.fixed)} fixed + {format_bytes(self.per_point)} per grid point "
                f"({self.n_images:,} images, method {self.method})")

    def check(self, what: str = "the grid") -> "MemoryEstimate":
        """Raise :class:`GridTooLarge`, with the estimate, when even one point does not fit."""
        if not self.fits:
            need = self.fixed + self.per_point
            raise GridTooLarge(
                f"{what} needs about {format_bytes(need)} of memory at the least ({self.describe()}; "
                f"{self.n_points:,} points), more than the budget of {format_bytes(self.budget)}: "
                f"use fewer evaluation images (--subset), a smaller grid, or a larger --memory")
        return self


class PlaneEvaluator:
    """Loss and accuracy of ``model`` at points ``(a, b)`` of ``plane`` on ``(x, y)``.

    ``model`` supplies the architecture only (its own weights are never used); its
    ``parameters()`` order must be the plane's flattening order. ``method``: "linear"
    (first-layer linearity, see the module docstring), "vmap" (the whole forward pass
    under vmap) or "auto" (linear when the model allows it).

    >>> ev = PlaneEvaluator(build_model("mlp"), plane, x, y)          # doctest: +SKIP
    >>> loss, acc = ev.evaluate([[0.0, 0.0], [1.0, -2.0]])           # doctest: +SKIP
    """

    def __init__(self, model, plane, x, y, *, method: str = "auto", memory_budget: Optional[int] = None,
                 max_chunk: int = MAX_CHUNK):
        import torch

        if method not in METHODS:
            raise UnknownName("grid method", method, METHODS)
        self.model = model.eval()
        self.layout, n_params = _param_layout(model)
        if n_params != plane.num_params:
            raise OptvizError(f"the plane has {plane.num_params:,} weights but the model has {n_params:,}: "
                              "snapshots and model do not match")
        self.plane = plane
        self.x = torch.as_tensor(x, dtype=torch.float32)
        self.y = torch.as_tensor(y, dtype=torch.int64)
        if len(self.x) == 0 or len(self.x) != len(self.y):
            raise InvalidValue(f"need as many labels as images (and at least one): {len(self.x)} images, "
                               f"{len(self.y)} labels")
        split = _split_linear_first(model)
        if method == "linear" and split is None:
            raise OptvizError("method 'linear' needs an nn.Sequential whose first layer with weights is a Linear "
                              "or Conv2d; use method 'vmap'")
        self.method = "linear" if (method in ("auto", "linear") and split is not None) else "vmap"
        self.split = split if self.method == "linear" else None
        self.memory_budget = int(memory_budget) if memory_budget is not None else default_memory_budget()
        self.max_chunk = int(max_chunk)
        self._prepared = False

    # -- memory -------------------------------------------------------------------------------

    def estimate(self, n_points: int) -> MemoryEstimate:
        """The memory a grid of ``n_points`` needs, and the chunk size that fits the budget."""
        return estimate_memory(self.model, self.x.shape[1:], len(self.x), n_points, self.method,
                               self.memory_budget, self.max_chunk)

    # -- the fixed part, computed once ------------------------------------------------------

    def _prepare(self):
        import torch
        from torch.func import functional_call

        if self._prepared:
            return
        basis = torch.cat([self.plane.origin[None], self.plane.directions]).float()   # (3, P)
        if self.method == "linear":
            prefix, name, first, rest = self.split
            with torch.inference_mode():
                h = prefix(self.x)
                zs = []
                for row in basis:
                    params = {n[len(name) + 1:]: row[o:o + math.prod(s)].view(s)
                              for n, s, o in self.layout if n.split(".")[0] == name}
                    zs.append(functional_call(first, params, (h,)))
            self.z_shape = tuple(zs[0].shape)                                  # (N, ...)
            self.Z = torch.stack([z.reshape(-1) for z in zs])                  # (3, N * out)
            self.rest = rest
            self.rest_layout = [(n, s, o) for n, s, o in self.layout if n.split(".")[0] != name]
        else:
            self.rest, self.rest_layout = self.model, self.layout
        # (3, P_rest): the basis of the weights the per-point pass needs
        cols = [basis[:, o:o + math.prod(s)] for _, s, o in self.rest_layout]
        self.rest_basis = torch.cat(cols, dim=1) if cols else torch.zeros(3, 0)
        self._prepared = True

    def _logits(self, coef, buf=None):
        """Logits (C, N, classes) at the grid points whose ``[1, a, b]`` rows are ``coef`` (C, 3)."""
        from torch.func import functional_call, vmap

        C = coef.shape[0]
        W = coef @ self.rest_basis                                            # (C, P_rest)
        params, start = {}, 0
        for n, s, _ in self.rest_layout:
            size = math.prod(s)
            params[n] = W[:, start:start + size].view(C, *s)
            start += size
        if self.method == "vmap":
            x = self.x
            return vmap(lambda p: functional_call(self.model, p, (x,)))(params)
        import torch

        out = None if buf is None else buf[: C * self.Z.shape[1]].view(C, -1)
        h = torch.matmul(coef, self.Z, out=out).view(C, *self.z_shape)           # (C, N, ...): first layer's output
        return _run_layers(self.rest, h, params)

    def evaluate(self, ab, progress: Optional[Callable[[int, int], None]] = None):
        """``(loss, acc)``, float64 arrays (K,), at plane coordinates ``ab`` (K, 2)."""
        import torch

        ab = np.asarray(ab, dtype=np.float64).reshape(-1, 2)
        est = self.estimate(len(ab)).check(f"evaluating {len(ab):,} plane points")
        self._prepare()
        loss, acc = np.empty(len(ab)), np.empty(len(ab))
        # one buffer for the first layer's output, reused by every chunk (fresh large tensors
        # cost page faults that take longer than the arithmetic)
        buf = torch.empty(est.chunk * self.Z.shape[1]) if self.method == "linear" else None
        with torch.inference_mode():
            for start in range(0, len(ab), est.chunk):
                part = torch.as_tensor(ab[start:start + est.chunk], dtype=torch.float32)
                coef = torch.cat([torch.ones(len(part), 1), part], dim=1)
                l, a = _loss_acc(self._logits(coef, buf), self.y)
                loss[start:start + len(part)], acc[start:start + len(part)] = l, a
                if progress is not None:
                    progress(start + len(part), len(ab))
        return loss, acc


_INPLACE = {"ReLU": "relu_", "Tanh": "tanh_", "Sigmoid": "sigmoid_"}


def _run_layers(layers, h, params):
    """Run the ``nn.Sequential`` ``layers`` on ``h`` (C, N, ...) for C grid points at once.

    ``params``: ``{name: (C, *shape)}``, each point's weights. ``Linear`` layers are one
    batched matrix product (``baddbmm``); other layers with weights run under ``vmap``
    over ``functional_call``; layers without weights run once on the merged ``(C * N, ...)``
    batch, and elementwise activations in place (``h`` is always a buffer of our own).
    """
    import torch
    from torch import nn
    from torch.func import functional_call, vmap

    C, N = h.shape[0], h.shape[1]
    children = list(layers.named_children())
    for i, (name, mod) in enumerate(children):
        own = {k[len(name) + 1:]: v for k, v in params.items() if k.split(".")[0] == name}
        kind = type(mod).__name__
        if not own:
            if kind in _INPLACE and type(mod).__module__.startswith("torch.nn"):
                h = getattr(h, _INPLACE[kind])()
            else:
                out = mod(h.reshape(C * N, *h.shape[2:]))
                h = out.view(C, N, *out.shape[1:])
        elif type(mod) is nn.Linear:
            w = own["weight"]                                               # (C, out, in)
            flat = h.reshape(C, -1, w.shape[2])                             # (C, M, in)
            if i == len(children) - 1 and h.ndim == 3:
                # the logits: computed as (C, out, N) and returned as a (C, N, out) view, so that
                # the loss reduces over classes along a contiguous N (see _loss_acc)
                out = torch.bmm(w, flat.transpose(1, 2))
                if "bias" in own:
                    out += own["bias"][:, :, None]
                h = out.transpose(1, 2)
            else:
                if "bias" in own:
                    out = torch.baddbmm(own["bias"][:, None, :], flat, w.transpose(1, 2))
                else:
                    out = torch.bmm(flat, w.transpose(1, 2))
                h = out.view(C, N, *h.shape[2:-1], w.shape[1])
        else:
            h = vmap(lambda p, z, m=mod: functional_call(m, p, (z,)))(own, h)
    return h


def _loss_acc(logits, y):
    """Mean cross-entropy and accuracy per leading index: logits (C, N, classes), y (N,).

    Reduced over the classes in a (C, classes, N) layout: torch's reductions over a short
    innermost axis (10 classes) are an order of magnitude slower than elementwise passes
    over the N images. A prediction counts as correct when the true class's logit is the
    largest (a tie with another class, which argmax would break by index, counts too).
    """
    lt = logits.float().transpose(1, 2)                                    # (C, classes, N)
    if not lt.is_contiguous():
        lt = lt.contiguous()
    C, N = lt.shape[0], lt.shape[2]
    top = lt.amax(1)                                                       # (C, N)
    lse = (lt - top[:, None, :]).exp_().sum(1).log_().add_(top)
    picked = lt.gather(1, y.view(1, 1, N).expand(C, 1, N))[:, 0, :]        # (C, N)
    loss = (lse - picked).double().mean(1)
    acc = (picked >= top).double().mean(1)
    return loss.numpy(), acc.numpy()


def estimate_memory(model, input_shape, n_images: int, n_points: int, method: str = "auto",
                    budget: Optional[int] = None, max_chunk: int = MAX_CHUNK) -> MemoryEstimate:
    """The :class:`MemoryEstimate` of evaluating ``model`` at ``n_points`` weight vectors on
    ``n_images`` inputs of ``input_shape`` (no data needed: a one-image probe of zeros)."""
    import torch

    budget = default_memory_budget() if budget is None else int(budget)
    split = _split_linear_first(model) if method in ("auto", "linear") else None
    if method == "linear" and split is None:
        raise OptvizError("method 'linear' needs an nn.Sequential whose first layer with weights is a Linear or Conv2d")
    sample = torch.zeros(1, *tuple(input_shape))
    _, n_params = _param_layout(model)
    item = 4
    # images; loss and accuracy (float64) and the grid's coordinates (X, Y, ab)
    fixed = item * n_images * math.prod(tuple(input_shape)) + 56 * n_points
    if split is not None:
        prefix, _, first, rest = split
        with torch.inference_mode():
            h = prefix(sample)
            z = first(h)
        rest_sizes, out = _probe_numels(rest, z)
        z_numel = z.numel()
        rest_params = n_params - sum(p.numel() for p in first.parameters())
        fixed += item * n_images * (h.numel() + 3 * z_numel)
        per_image = z_numel + sum(rest_sizes) + 2 * out.numel()               # + log-softmax
        per_point = item * (n_images * per_image + rest_params)
        largest = item * n_images * max([z_numel] + rest_sizes)
        name = "linear"
    else:
        sizes, out = _probe_numels(model, sample)
        per_point = item * (n_images * (sum(sizes) + 2 * out.numel()) + n_params)
        largest = item * n_images * max(sizes)
        name = "vmap"
    per_point = int(_SAFETY * per_point)
    room = budget - fixed
    cached = max(1, CACHE_TARGET // max(largest, 1))
    chunk = 0 if room < per_point else int(min(max_chunk, max(n_points, 1), room // per_point, cached))
    return MemoryEstimate(method=name, n_points=int(n_points), n_images=int(n_images), fixed=int(fixed),
                          per_point=per_point, budget=budget, chunk=chunk)


# --- a grid ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class GridResult:
    """Loss and accuracy on a grid; ``Z[j, i]`` at ``(x[i], y[j])`` (meshgrid "xy" layout)."""

    x: np.ndarray          # (nx,)
    y: np.ndarray          # (ny,)
    loss: np.ndarray       # (ny, nx)
    acc: np.ndarray        # (ny, nx)
    seconds: float
    method: str
    chunk: int


def grid_axes(points_xy, n: int, margin: float = 0.25, square: bool = False):
    """Grid coordinates ``(x (n,), y (n,))`` covering ``points_xy`` (K, 2) with a margin of
    ``margin`` times the span on every side. A degenerate span (all points on a line)
    borrows a tenth of the other's; ``square=True`` gives both axes the larger span."""
    pts = np.asarray(points_xy, dtype=float).reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if int(n) != n or n < 3:
        raise InvalidValue(f"the grid needs at least 3 points per axis, got {n!r}")
    if len(pts) == 0:
        raise OptvizError("no finite points to lay a grid over")
    lo, hi = pts.min(0), pts.max(0)
    span = hi - lo
    big = float(span.max())
    if big <= 0:
        big = 1.0
    span = np.where(span > 0.1 * big, span, 0.1 * big)
    if square:
        span = np.full(2, span.max())
    mid = (lo + hi) / 2
    half = span * (0.5 + margin)
    return np.linspace(mid[0] - half[0], mid[0] + half[0], int(n)), np.linspace(mid[1] - half[1], mid[1] + half[1], int(n))


def loss_grid(evaluator: PlaneEvaluator, xs, ys, progress: Optional[Callable[[int, int], None]] = None) -> GridResult:
    """Evaluate ``evaluator`` on the grid ``xs`` x ``ys`` (memory checked first)."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    X, Y = np.meshgrid(xs, ys)
    ab = np.stack([X.ravel(), Y.ravel()], axis=1)
    est = evaluator.estimate(len(ab)).check(f"a {len(xs)} x {len(ys)} grid")
    t0 = time.perf_counter()
    loss, acc = evaluator.evaluate(ab, progress=progress)
    return GridResult(x=xs, y=ys, loss=loss.reshape(X.shape), acc=acc.reshape(X.shape),
                      seconds=time.perf_counter() - t0, method=evaluator.method, chunk=est.chunk)


# --- the references: one point at a time, and arbitrary weights -------------------------------------


def pointwise_losses(model, plane, x, y, ab):
    """The plain loop: for each ``(a, b)``, set the weights, forward all of ``x``, take the
    loss. ``(loss, acc)`` float64 arrays (K,). The reference the batched paths must match."""
    import torch
    import torch.nn.functional as F

    ab = np.asarray(ab, dtype=np.float64).reshape(-1, 2)
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.int64)
    params = list(model.parameters())
    loss, acc = np.empty(len(ab)), np.empty(len(ab))
    model.eval()
    with torch.inference_mode():
        for k in range(len(ab)):
            torch.nn.utils.vector_to_parameters(plane.points(ab[k:k + 1])[0], params)
            out = model(x)
            loss[k] = float(F.cross_entropy(out, y, reduction="sum").double()) / len(y)
            acc[k] = float((out.argmax(1) == y).double().mean())
    return loss, acc


def evaluate_weights(model, weights, x, y, memory_budget: Optional[int] = None, max_chunk: int = 32):
    """``(loss, acc)`` float64 arrays (K,) of ``model`` with each row of ``weights`` (K, P)
    on ``(x, y)``: the whole forward pass under vmap, in memory-sized chunks. Non-finite
    rows give NaN (no error)."""
    import torch
    from torch.func import functional_call, vmap

    layout, n_params = _param_layout(model)
    W = torch.as_tensor(weights, dtype=torch.float32)
    if W.ndim != 2 or W.shape[1] != n_params:
        raise OptvizError(f"weights of shape {tuple(W.shape)} do not fit the model ({n_params:,} parameters)")
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.int64)
    est = estimate_memory(model, x.shape[1:], len(x), len(W), "vmap", memory_budget, max_chunk)
    est.check(f"evaluating {len(W):,} weight snapshots")
    model.eval()
    loss, acc = np.full(len(W), np.nan), np.full(len(W), np.nan)
    finite = torch.isfinite(W).all(dim=1).numpy()
    rows = np.flatnonzero(finite)
    with torch.inference_mode():
        for start in range(0, len(rows), est.chunk):
            idx = rows[start:start + est.chunk]
            Wc = W[idx]
            params, off = {}, 0
            for n, s, _ in layout:
                size = math.prod(s)
                params[n] = Wc[:, off:off + size].view(len(idx), *s)
                off += size
            logits = vmap(lambda p: functional_call(model, p, (x,)))(params)
            loss[idx], acc[idx] = _loss_acc(logits, y)
    return loss, acc


# --- cache -------------------------------------------------------------------------------------------


def cache_key(**parts) -> str:
    """A hex key from JSON-serialisable ``parts`` (sorted, so argument order does not matter)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def save_to_cache(result, path, say: Callable[[str], None]) -> None:
    """Best effort: ``result.save(path)``; a cache that cannot be written is said, not raised."""
    try:
        result.save(path)
    except (OSError, OptvizError) as exc:
        say(f"could not write the cache {path}: {exc}")


def save_arrays(path, arrays: Dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``arrays`` and a JSON ``meta`` to ``path`` (.npz), atomically."""
    path = Path(path)
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload["__meta__"] = np.frombuffer(json.dumps(meta, default=_json_default).encode(), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **payload)
    return path


def load_arrays(path) -> Optional[Tuple[Dict[str, np.ndarray], dict]]:
    """``(arrays, meta)`` from :func:`save_arrays`, or None if missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != "__meta__"}
            meta = json.loads(bytes(data["__meta__"]).decode())
        return arrays, meta
    except (OSError, ValueError, KeyError):
        return None


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} as JSON")
