"""Curvature of networks from products alone, checked against explicitly formed matrices.

Tiny networks in float64: the Hessian (``torch.func.hessian``) and the Gauss-Newton
matrix (``torch.func.jacrev``) are formed whole, and the products, the top eigenvalue
(Lanczos and power iteration), the preconditioned sharpness of Adam and the
Hessian-free Newton step are compared with them.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from optviz.analysis.hessian import LossCurvature, explicit_hessian, hessian_memory, lanczos, power_iteration
from optviz.analysis.newton_cg import NewtonCG, conjugate_gradient
from optviz.analysis.thresholds import preconditioner
from optviz.errors import InvalidValue, OptvizError
from optviz.optim import TorchOptimizer

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def tiny(seed=0, hidden=5, act=nn.Tanh):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, hidden), act(), nn.Linear(hidden, 3)).double()
    x = torch.randn(30, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (30,))
    return model, x, y


def explicit_gauss_newton(curv, x):
    J = torch.func.jacrev(lambda w: curv.logits(w, x))(curv.w)           # (B, 3, P)
    p = torch.softmax(curv.logits(curv.w, x), dim=-1)
    Hout = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]            # softmax cross-entropy Hessian
    return torch.einsum("bkp,bkl,blq->pq", J, Hout, J) / len(x)


@pytest.mark.parametrize("seed", [0, 1])
def test_sharpness_is_the_top_eigenvalue_of_the_explicit_hessian(seed):
    """The issue's test: Lanczos and power iteration on Hessian-vector products give the
    top eigenvalue of the explicitly formed Hessian of a tiny network."""
    model, x, y = tiny(seed)
    H = explicit_hessian(model, x, y)
    top = float(torch.linalg.eigvalsh(H)[-1])
    curv = LossCurvature(model, x, y, chunk=7)                       # chunked sums, too
    v = torch.randn(curv.dim, dtype=torch.float64)
    torch.testing.assert_close(curv.hvp(v), H @ v, rtol=1e-10, atol=1e-12)
    lz = lanczos(curv.hvp, curv.dim, tol=1e-10, like=curv.w)
    pw = power_iteration(curv.hvp, curv.dim, tol=1e-10, max_iter=5000, like=curv.w)
    assert lz.converged and lz.value == pytest.approx(top, rel=1e-9) and lz.residual < 1e-8
    assert pw.value == pytest.approx(top, rel=1e-5)
    assert lz.matvecs <= curv.dim + 1                                 # at most one product per dimension (+ check)
    torch.testing.assert_close(abs(torch.dot(lz.vector, torch.linalg.eigh(H)[1][:, -1])),
                               torch.tensor(1.0, dtype=torch.float64), rtol=1e-6, atol=1e-6)


def test_power_iteration_finds_the_top_when_a_negative_eigenvalue_dominates():
    torch.manual_seed(0)
    Q = torch.linalg.qr(torch.randn(40, 40, dtype=torch.float64))[0]
    evals = torch.linspace(-9.0, 3.0, 40, dtype=torch.float64)            # |-9| > 3
    A = Q @ torch.diag(evals) @ Q.T
    pw = power_iteration(lambda v: A @ v, 40, tol=1e-12, max_iter=20000, like=A)
    lz = lanczos(lambda v: A @ v, 40, tol=1e-12, like=A)
    assert pw.value == pytest.approx(3.0, rel=1e-6) and lz.value == pytest.approx(3.0, rel=1e-10)


def test_gauss_newton_product_and_gradient():
    model, x, y = tiny(3, act=nn.ReLU)
    curv = LossCurvature(model, x, y, chunk=11)
    G = explicit_gauss_newton(curv, x)
    v = torch.randn(curv.dim, dtype=torch.float64)
    torch.testing.assert_close(curv.ggnvp(v), G @ v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(curv.ggnvp(2 * v), 2 * G @ v, rtol=1e-10, atol=1e-12)   # linearised once
    assert float(torch.linalg.eigvalsh(G)[0]) > -1e-12                    # positive semi-definite
    start = curv.w
    curv.at(start + 0.3)                                                  # products at the new weights
    torch.testing.assert_close(curv.ggnvp(v), explicit_gauss_newton(curv, x) @ v, rtol=1e-10, atol=1e-12)
    curv.at(start)
    loss, g = curv.value_and_grad()
    model.zero_grad()
    ref = nn.functional.cross_entropy(model(x), y)
    ref.backward()
    assert loss == pytest.approx(float(ref), rel=1e-12)
    torch.testing.assert_close(g, torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    assert curv.value(curv.w + 0.1 * v) == pytest.approx(
        float(nn.functional.cross_entropy(curv.logits(curv.w + 0.1 * v, x), y)), rel=1e-12)


def test_preconditioned_sharpness_of_adam_matches_the_explicit_matrix():
    model, x, y = tiny(4)
    opt = TorchOptimizer(model.parameters(), "adam", lr=0.01)
    for _ in range(7):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    params = list(model.parameters())
    P = torch.cat([preconditioner("adam", {"lr": 0.01}, opt.state[p], 7).reshape(-1) for p in params])
    H = explicit_hessian(model, x, y)
    explicit = torch.linalg.eigvals(torch.diag(1 / P) @ H).real.max()      # P^-1 H itself, not symmetrised
    curv = LossCurvature(model, x, y)
    est = lanczos(curv.preconditioned(curv.hvp, P), curv.dim, tol=1e-10, like=curv.w)
    assert est.value == pytest.approx(float(explicit), rel=1e-8)
    assert est.value > 10 * float(torch.linalg.eigvalsh(H)[-1])           # Adam's P^-1 magnifies the curvature


@pytest.mark.parametrize("curvature, act", [("hessian", None), ("gauss_newton", nn.Tanh)])
def test_newton_cg_step_is_the_damped_newton_step_of_the_explicit_matrix(curvature, act):
    torch.manual_seed(5)
    if act is None:     # softmax regression: convex, so the Hessian itself is positive semi-definite
        model = nn.Sequential(nn.Linear(4, 3)).double()
        x, y = torch.randn(30, 4, dtype=torch.float64), torch.randint(0, 3, (30,))
    else:
        model, x, y = tiny(5, act=act)
    curv = LossCurvature(model, x, y)
    M = explicit_hessian(model, x, y) if curvature == "hessian" else explicit_gauss_newton(curv, x)
    lam = 0.05
    loss, g = curv.value_and_grad()
    newton = torch.linalg.solve(M + lam * torch.eye(curv.dim, dtype=M.dtype), -g)
    hf = NewtonCG(damping=lam, cg_iters=200, cg_tol=1e-13, curvature=curvature, adapt=False, warm_start=0)
    delta, state, info = hf.update(curv, hf.init(curv.w))
    assert info.step_length == 1.0 and not info.negative_curvature
    torch.testing.assert_close(delta, newton, rtol=1e-8, atol=1e-10)
    assert info.new_loss < info.loss and state.step == 1
    q = float(g @ newton + 0.5 * newton @ M @ newton)
    assert info.rho == pytest.approx((info.new_loss - loss) / q, rel=1e-8)


def test_newton_cg_adapts_damping_and_descends():
    model, x, y = tiny(6)
    hf = NewtonCG(damping=1.0, cg_iters=30)
    w = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    state = hf.init(w)
    start = LossCurvature(model, x, y).value()
    losses = [start]
    for _ in range(10):
        delta, state, info = hf.update(LossCurvature(model, x, y, w), state)
        w = w + delta
        assert info.loss == pytest.approx(losses[-1], rel=1e-12) and info.new_loss < info.loss
        losses.append(info.new_loss)
    assert losses[-1] < 0.9 < start
    assert state.damping < 0.05          # the quadratic model predicted well (rho > 3/4): lambda fell 2/3 a step


def test_conjugate_gradient_stops_at_negative_curvature():
    A = torch.diag(torch.tensor([2.0, 1.0, -1.0], dtype=torch.float64))
    b = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    x, iters, negative = conjugate_gradient(lambda v: A @ v, b, max_iter=10)
    assert negative and iters <= 3 and float(b @ x) > 0           # still a descent direction for -b
    x, iters, negative = conjugate_gradient(lambda v: A[:2, :2] @ v, b[:2], max_iter=10, tol=1e-14)
    assert not negative and iters == 2
    torch.testing.assert_close(x, torch.tensor([0.5, 1.0], dtype=torch.float64))


def test_hessian_memory_of_the_lecture_mlp():
    m = hessian_memory(101_770)
    assert m["entries"] == 101_770 ** 2 == 10_357_132_900
    assert m["bytes"] == 4 * 10_357_132_900 and m["gigabytes"] == 41.43
    assert hessian_memory(101_770, 8)["gigabytes"] == 82.86
    with pytest.raises(InvalidValue):
        hessian_memory(0)


def test_bad_input():
    model, x, y = tiny()
    with pytest.raises(InvalidValue, match="one label per example"):
        LossCurvature(model, x, y[:3])
    with pytest.raises(InvalidValue, match="flat vector"):
        LossCurvature(model, x, y, torch.zeros(3))
    with pytest.raises(OptvizError, match="curvature"):
        NewtonCG(curvature="fisher")
    with pytest.raises(InvalidValue, match="cg_iters"):
        NewtonCG(cg_iters=0)
    curv = LossCurvature(model, x, y)
    with pytest.raises(InvalidValue, match="max_iter"):
        lanczos(curv.hvp, curv.dim, max_iter=0)
    short = lanczos(curv.hvp, curv.dim, max_iter=3, tol=1e-14)       # stops early, says so
    assert not short.converged and short.matvecs == 4 and np.isfinite(short.value) and short.residual > 0
