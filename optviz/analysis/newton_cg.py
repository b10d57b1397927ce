"""A Hessian-free Newton step (Newton-CG): curvature from products, never a matrix.

Newton's step solves ``H d = -g``. For a network ``H`` has P^2 entries (41 GB for
the lecture's MLP), but conjugate gradients needs only products ``H v``, each about
the cost of one gradient. Hessian-free optimisation (Martens, ICML 2010) solves the
damped system

    (B + lambda I) d = -g

by truncated CG, with ``B`` the Gauss-Newton matrix ``J^T H_out J`` (positive
semi-definite, Martens' choice) or the Hessian itself (then CG stops at the first
direction of negative curvature, as in Steihaug's truncated Newton), and adapts
the damping by the Levenberg-Marquardt rule: with ``rho`` the actual reduction of the
loss over the reduction ``q(d) = g.d + d.B d / 2`` the quadratic model predicted,
``lambda <- 3/2 lambda`` when ``rho < 1/4`` and ``lambda <- 2/3 lambda`` when ``rho > 3/4``.
CG starts from the previous solution times ``warm_start`` (Martens' "momentum"); an
Armijo backtracking line search on the step length keeps every step a descent.

In the core's style (:mod:`optviz.optim`): explicit state, an ``init`` and an
``update`` that returns a delta, which the caller adds to the weights. Its ``update``
needs more than a gradient (products and loss values), so it takes a ``problem``: a
:class:`~optviz.analysis.hessian.LossCurvature` at the current weights.

Example::

    hf = NewtonCG(damping=1.0, cg_iters=20)
    state = hf.init(w)
    problem = LossCurvature(model, xb, yb, w)
    delta, state, info = hf.update(problem, state)
    w = w + delta
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Tuple

import torch

from ..errors import InvalidValue, UnknownName

__all__ = ["NewtonCG", "NewtonCGState", "NewtonCGInfo", "conjugate_gradient", "CURVATURES"]

CURVATURES = ("gauss_newton", "hessian")


class NewtonCGState(NamedTuple):
    step: int
    damping: float
    direction: Optional[torch.Tensor]   # the last CG solution (warm start), None at first


@dataclass
class NewtonCGInfo:
    loss: float                # before the step
    new_loss: float            # after it (on the same batch)
    cg_iterations: int
    products: int              # curvature products used (CG, plus one for the model's reduction)
    loss_evaluations: int      # line-search evaluations (forward passes only)
    step_length: float         # alpha the line search accepted (0: rejected)
    rho: float                 # actual / predicted reduction of the full step
    damping: float             # lambda used
    negative_curvature: bool   # CG met a direction with d.B d <= 0


def conjugate_gradient(matvec: Callable, b: torch.Tensor, x0: Optional[torch.Tensor] = None, max_iter: int = 50,
                       tol: float = 1e-6) -> Tuple[torch.Tensor, int, bool]:
    """Solve ``A x = b`` for symmetric ``A`` given by ``matvec``; returns ``(x, iterations, negative)``.

    Stops when ``|A x - b| <= tol |b|``, after ``max_iter`` products, or at a direction
    ``p`` with ``p.A p <= 0`` (``negative=True``): then the current ``x`` is returned, or
    ``b`` itself if no step was taken yet (steepest descent, for the line search to scale).
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - matvec(x) if x0 is not None and bool(x0.any()) else b.clone()
    used = 1 if x0 is not None and bool(x0.any()) else 0
    p = r.clone()
    rr = float(torch.dot(r, r))
    bnorm = float(b.norm())
    if bnorm == 0:
        return x, used, False
    for k in range(int(max_iter)):
        if math.sqrt(rr) <= tol * bnorm:
            return x, used, False
        Ap = matvec(p)
        used += 1
        pAp = float(torch.dot(p, Ap))
        if pAp <= 0:
            return (x if bool(x.any()) else b.clone()), used, True
        a = rr / pAp
        x = x + a * p
        r = r - a * Ap
        rr_new = float(torch.dot(r, r))
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, used, False


class NewtonCG:
    """Hessian-free Newton: damped, truncated CG on Gauss-Newton (or Hessian) products.

    Parameters
    ----------
    lr : the first step length the line search tries (1: the Newton step).
    damping : the initial ``lambda``; adapted by the Levenberg-Marquardt rule when ``adapt``.
    cg_iters : the most CG products per step.
    cg_tol : CG stops at relative residual ``cg_tol``.
    curvature : ``"gauss_newton"`` (default) or ``"hessian"``.
    warm_start : CG starts from this times the previous solution (0: from zero).
    backtracks : the most halvings of the step length in the line search.
    """

    def __init__(self, lr: float = 1.0, damping: float = 1.0, cg_iters: int = 50, cg_tol: float = 1e-3,
                 curvature: str = "gauss_newton", adapt: bool = True, warm_start: float = 0.95,
                 backtracks: int = 12, min_damping: float = 1e-6, max_damping: float = 1e6):
        if curvature not in CURVATURES:
            raise UnknownName("curvature", curvature, CURVATURES)
        for key, value in (("lr", lr), ("cg_tol", cg_tol)):
            if not (value > 0):
                raise InvalidValue(f"invalid {key}={value!r}: {key} must be > 0")
        if not (damping >= 0):
            raise InvalidValue(f"invalid damping={damping!r}: damping must be >= 0")
        if int(cg_iters) != cg_iters or cg_iters < 1:
            raise InvalidValue(f"invalid cg_iters={cg_iters!r}: must be a positive integer")
        if not (0 <= warm_start < 1):
            raise InvalidValue(f"invalid warm_start={warm_start!r}: must be in [0, 1)")
        self.lr, self.damping, self.cg_iters, self.cg_tol = float(lr), float(damping), int(cg_iters), float(cg_tol)
        self.curvature, self.adapt, self.warm_start = curvature, bool(adapt), float(warm_start)
        self.backtracks, self.min_damping, self.max_damping = int(backtracks), float(min_damping), float(max_damping)

    def init(self, weights: torch.Tensor) -> NewtonCGState:
        return NewtonCGState(0, self.damping, None)

    def update(self, problem, state: NewtonCGState, curvature_problem=None) -> Tuple[torch.Tensor, NewtonCGState,
                                                                                      NewtonCGInfo]:
        """One Newton-CG step at ``problem``'s weights: ``(delta, new state, info)``.

        ``problem`` gives the loss, gradient and line-search values (the gradient batch);
        ``curvature_problem`` (default: the same) gives the products, at the same weights,
        possibly on a smaller batch (Martens uses a fraction of the gradient batch).
        """
        curv = problem if curvature_problem is None else curvature_problem
        B = curv.ggnvp if self.curvature == "gauss_newton" else curv.hvp
        lam = state.damping
        loss, g = problem.value_and_grad()
        products0 = curv.products

        def A(v):
            return B(v) + lam * v

        x0 = None if state.direction is None or self.warm_start == 0 else self.warm_start * state.direction
        d, iters, negative = conjugate_gradient(A, -g, x0, self.cg_iters, self.cg_tol)
        Bd = B(d)
        gd = float(torch.dot(g, d))
        q = gd + 0.5 * float(torch.dot(d, Bd))             # the undamped model's change for the full step
        n_products = (curv.products - products0) // max(curv.n, 1)
        if gd >= 0:                                        # not a descent direction (only with the Hessian)
            d, gd = -g, -float(torch.dot(g, g))
        w = problem.w
        alpha, new, evals, rho = self.lr, math.nan, 0, math.nan
        for _ in range(self.backtracks + 1):
            new = problem.value(w + alpha * d)
            evals += 1
            if alpha == 1.0 and q < 0:
                rho = (new - loss) / q
            if math.isfinite(new) and new <= loss + 1e-4 * alpha * gd:
                break
            alpha *= 0.5
        else:
            alpha, new = 0.0, loss
        if self.adapt:
            if not math.isfinite(rho) or rho < 0.25:
                lam = min(lam * 1.5, self.max_damping)
            elif rho > 0.75:
                lam = max(lam * (2.0 / 3.0), self.min_damping)
        info = NewtonCGInfo(loss=float(loss), new_loss=float(new), cg_iterations=iters, products=int(n_products),
                            loss_evaluations=evals, step_length=alpha, rho=float(rho), damping=state.damping,
                            negative_curvature=negative)
        return alpha * d, NewtonCGState(state.step + 1, lam, d.detach()), info
