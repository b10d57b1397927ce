"""Curvature of a network's loss without forming the Hessian: products, eigenvalues, memory.

:class:`LossCurvature` holds a model's mean cross-entropy on a fixed batch as a
function of one flat weight vector ``w`` (``torch.func.functional_call``) and gives

- ``hvp(v) = H v``: reverse-over-reverse with ``torch.func``: ``vjp`` of the gradient
  function, linearised once per weight vector, so each product is one backward pass
  through the gradient's graph (about the cost of one gradient);
- ``ggnvp(v) = G v``: the Gauss-Newton matrix ``J^T H_out J`` (``jvp`` of the logits,
  the softmax Hessian, ``vjp`` of the logits, linearised once per weight vector):
  positive semi-definite, Martens' choice for Hessian-free optimisation.

The batch is cut into chunks (``chunk`` examples each) whose products are summed with
their weights, so memory stays bounded for large batches.

:func:`lanczos` (default) and :func:`power_iteration` find the top eigenvalue of any
symmetric operator from its products; :func:`explicit_hessian` forms the whole matrix
(``torch.func.hessian``) for tiny models, to check them; :func:`hessian_memory` says
what the whole matrix of a real model would need.

Example::

    curv = LossCurvature(model, x, y)             # x: (2000, 1, 28, 28)
    top = lanczos(curv.hvp, curv.dim)             # top.value, top.matvecs, top.residual
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..errors import InvalidValue

__all__ = ["LossCurvature", "Eigen", "lanczos", "power_iteration", "explicit_hessian", "hessian_memory",
           "flat_parameters"]


def flat_parameters(model) -> torch.Tensor:
    """The model's parameters as one detached flat vector (``model.parameters()`` order)."""
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach()


class LossCurvature:
    """Mean cross-entropy of ``model`` on ``(x, y)`` as a function of a flat weight vector.

    ``weights`` (P,) default to the model's own; :meth:`at` moves to other weights
    (a snapshot) without rebuilding anything else. ``precondition`` (P,), if given,
    turns every product into one with ``P^-1/2 H P^-1/2`` (same eigenvalues as ``P^-1 H``).
    """

    def __init__(self, model, x, y, weights: Optional[torch.Tensor] = None, chunk: int = 10_000):
        if len(x) != len(y) or len(x) == 0:
            raise InvalidValue(f"need a non-empty batch with one label per example, got {len(x)} and {len(y)}")
        self.model = model
        self.names = [n for n, _ in model.named_parameters()]
        self.shapes = [p.shape for p in model.parameters()]
        self.sizes = [p.numel() for p in model.parameters()]
        self.dim = sum(self.sizes)
        self.n = len(x)
        self.chunks = [(x[i:i + chunk], y[i:i + chunk]) for i in range(0, self.n, int(chunk))]
        self.evaluations = 0          # examples whose gradient was taken (for cost accounting)
        self.products = 0             # examples that went through a curvature product
        self.at(flat_parameters(model) if weights is None else weights)

    # ---------------------------------------------------------------- the function
    def _params(self, w):
        return {n: t.view(s) for n, t, s in zip(self.names, torch.split(w, self.sizes), self.shapes)}

    def logits(self, w, x):
        return torch.func.functional_call(self.model, self._params(w), (x,))

    def _loss(self, w, x, y):
        return torch.nn.functional.cross_entropy(self.logits(w, x), y)

    def at(self, weights: torch.Tensor) -> "LossCurvature":
        """Move to ``weights`` (P,); products are linearised there lazily."""
        w = torch.as_tensor(weights).detach()
        if w.shape != (self.dim,):
            raise InvalidValue(f"weights must be a flat vector of {self.dim:,} values, got shape {tuple(w.shape)}")
        ref = next(self.model.parameters())
        self.w = w.to(ref.device, ref.dtype)
        self._vjps = None
        self._logit_vjps = None
        self._value = None
        return self

    def _weight(self, xb) -> float:
        return len(xb) / self.n

    # ---------------------------------------------------------------- value and gradient
    def value(self, weights: Optional[torch.Tensor] = None) -> float:
        """The loss (a float) at ``weights`` (default: the current ones), no gradient."""
        w = self.w if weights is None else weights
        with torch.no_grad():
            total = sum(self._weight(xb) * self._loss(w, xb, yb) for xb, yb in self.chunks)
        return float(total)

    def value_and_grad(self):
        """``(loss, gradient (P,))`` at the current weights."""
        self._linearise()
        return self._value, self._grad

    def _linearise(self):
        """One forward and backward per chunk, keeping the gradient's graph for products."""
        if self._vjps is not None:
            return
        grad_fn = torch.func.grad_and_value(self._loss)
        vjps, value, grad = [], 0.0, torch.zeros_like(self.w)
        for xb, yb in self.chunks:
            g, loss, vjp_fn = _grad_vjp(grad_fn, self.w, xb, yb)
            wgt = self._weight(xb)
            vjps.append((wgt, vjp_fn))
            value += wgt * float(loss)
            grad += wgt * g.detach()
        self.evaluations += self.n
        self._vjps, self._value, self._grad = vjps, value, grad

    # ---------------------------------------------------------------- products
    def hvp(self, v: torch.Tensor) -> torch.Tensor:
        """``H v`` at the current weights (v: (P,))."""
        self._linearise()
        out = torch.zeros_like(self.w)
        for wgt, vjp_fn in self._vjps:
            out += wgt * vjp_fn(v.to(self.w))
        self.products += self.n
        return out

    def ggnvp(self, v: torch.Tensor) -> torch.Tensor:
        """``G v``, the Gauss-Newton product ``J^T H_out J v`` (positive semi-definite)."""
        self._linearise_logits()
        out = torch.zeros_like(self.w)
        v = v.to(self.w)
        for (xb, _), (p, vjp_fn) in zip(self.chunks, self._logit_vjps):
            _, jv = torch.func.jvp(lambda w: self.logits(w, xb), (self.w,), (v,))        # (B, 10)
            hjv = (p * jv - p * (p * jv).sum(-1, keepdim=True)) / len(xb)               # softmax Hessian times Jv
            out += self._weight(xb) * vjp_fn(hjv)[0]
        self.products += self.n
        return out

    def _linearise_logits(self):
        """One forward per chunk, keeping the logits' graph: a solver takes many products at
        the same weights. Keeps ``(softmax of the logits, vjp of the logits)`` per chunk."""
        if self._logit_vjps is not None:
            return
        self._logit_vjps = []
        for xb, _ in self.chunks:
            z, vjp_fn = torch.func.vjp(lambda w, xb=xb: self.logits(w, xb), self.w)
            self._logit_vjps.append((torch.softmax(z.detach(), dim=-1), vjp_fn))

    def preconditioned(self, matvec: Callable, P: torch.Tensor) -> Callable:
        """``v -> P^-1/2 A P^-1/2 v`` for a product ``matvec`` of ``A`` and a diagonal ``P`` (P,) > 0."""
        s = P.to(self.w).clamp_min(torch.finfo(self.w.dtype).tiny).rsqrt()
        return lambda v: s * matvec(s * v)


def _grad_vjp(grad_fn, w, xb, yb):
    """``(gradient, loss, v -> H v)`` at ``w``: the vjp of the gradient function is the
    Hessian-vector product, since the Hessian is symmetric."""
    g, vjp_fn, loss = torch.func.vjp(lambda w_: grad_fn(w_, xb, yb), w, has_aux=True)
    return g, loss, lambda v: vjp_fn(v)[0]


@dataclass
class Eigen:
    """An eigenvalue estimate from products alone."""

    value: float             # the top (largest algebraic) eigenvalue
    vector: torch.Tensor     # (P,) its unit eigenvector estimate
    matvecs: int             # products used
    residual: float          # |A v - value v| / |value|: how far from an exact eigenpair
    converged: bool


def _like(matvec: Callable, dim: int, like: Optional[torch.Tensor]) -> torch.Tensor:
    """The dtype and device to work in: ``like``'s, else the operator's own (one probe product
    of a zero vector, which costs what a product costs but only when ``like`` is not given)."""
    if like is not None:
        return like
    return matvec(torch.zeros(dim))


def _start(dim: int, like: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(dim, generator=g, dtype=torch.float64).to(like.device, like.dtype)
    return v / v.norm()


def lanczos(matvec: Callable, dim: int, max_iter: int = 80, tol: float = 1e-3, seed: int = 0,
            like: Optional[torch.Tensor] = None) -> Eigen:
    """The top eigenvalue of a symmetric operator by Lanczos with full reorthogonalisation.

    Stops when the top Ritz pair's residual ``|A v - theta v|`` (known without another
    product: ``|beta_k s_k|``) falls below ``tol |theta|``, or after ``max_iter`` products,
    or at an invariant subspace. The residual is checked with one more product at the end.
    Top eigenvalues of network Hessians are well separated, so 10-40 products are typical.
    ``like``: a tensor of the dtype and device to work in (default: the operator's own).
    """
    if max_iter < 1:
        raise InvalidValue(f"max_iter must be >= 1, got {max_iter}")
    like = _like(matvec, dim, like)
    max_iter = min(int(max_iter), dim)
    q = _start(dim, like, seed)
    Q = torch.empty((max_iter, dim), dtype=q.dtype, device=q.device)
    alphas, betas = [], []
    theta, s_top, converged = math.nan, None, False
    k = 0
    for k in range(max_iter):
        Q[k] = q
        w = matvec(q)
        a = float(torch.dot(w, q))
        alphas.append(a)
        w = w - Q[:k + 1].T @ (Q[:k + 1] @ w)         # full reorthogonalisation (twice is enough)
        w = w - Q[:k + 1].T @ (Q[:k + 1] @ w)
        b = float(w.norm())
        T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if k:
            off = torch.tensor(betas, dtype=torch.float64)
            T += torch.diag(off, 1) + torch.diag(off, -1)
        evals, evecs = torch.linalg.eigh(T)
        theta, s_top = float(evals[-1]), evecs[:, -1]
        if abs(b * float(s_top[-1])) <= tol * max(abs(theta), 1e-30) or b <= 1e-12 * max(abs(theta), 1e-30):
            converged = True
            break
        betas.append(b)
        q = w / b
    m = k + 1
    v = (s_top.to(Q.dtype).to(Q.device) @ Q[:m])
    v = v / v.norm()
    Av = matvec(v)
    residual = float((Av - theta * v).norm()) / max(abs(theta), 1e-30)
    return Eigen(theta, v, m + 1, residual, converged)


def power_iteration(matvec: Callable, dim: int, max_iter: int = 200, tol: float = 1e-4, seed: int = 0,
                    like: Optional[torch.Tensor] = None) -> Eigen:
    """The top (largest algebraic) eigenvalue by power iteration.

    Power iteration finds the eigenvalue of largest *magnitude*; when that one is
    negative, a second run on ``A - mu I`` (``mu`` the negative estimate) finds the top.
    Stops when the Rayleigh quotient changes by less than ``tol`` (relative).
    """
    if max_iter < 1:
        raise InvalidValue(f"max_iter must be >= 1, got {max_iter}")
    like = _like(matvec, dim, like)
    used = 0

    def run(shift: float):
        nonlocal used
        v = _start(dim, like, seed)
        lam = math.nan
        ok = False
        for _ in range(int(max_iter)):
            w = matvec(v) - shift * v
            used += 1
            new = float(torch.dot(v, w))
            norm = float(w.norm())
            if norm == 0:
                return v, 0.0, True
            v = w / norm
            if math.isfinite(lam) and abs(new - lam) <= tol * max(abs(new), 1e-30):
                lam, ok = new, True
                break
            lam = new
        return v, lam, ok

    v, lam, ok = run(0.0)
    if lam < 0:
        v, lam2, ok = run(lam)
        lam = lam2 + lam
    Av = matvec(v)
    used += 1
    residual = float((Av - lam * v).norm()) / max(abs(lam), 1e-30)
    return Eigen(lam, v, used, residual, ok)


def explicit_hessian(model, x, y, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The full (P, P) Hessian of the mean cross-entropy (``torch.func.hessian``): for tiny
    models only (it has P^2 entries; see :func:`hessian_memory`)."""
    curv = LossCurvature(model, x, y, weights)
    return torch.func.hessian(lambda w: curv._loss(w, x, y))(curv.w)


def hessian_memory(num_params: int, bytes_per_entry: int = 4) -> dict:
    """What the full Hessian of ``num_params`` parameters would take.

    >>> hessian_memory(101_770)["gigabytes"]
    41.43
    """
    if int(num_params) != num_params or num_params < 1:
        raise InvalidValue(f"num_params must be a positive integer, got {num_params!r}")
    n = int(num_params)
    entries = n * n
    return {"parameters": n, "entries": entries, "unique_entries": n * (n + 1) // 2,
            "bytes": entries * bytes_per_entry, "gigabytes": round(entries * bytes_per_entry / 1e9, 2),
            "bytes_per_entry": bytes_per_entry, "products_to_form": n,
            "vector_bytes": n * bytes_per_entry}
