"""Stability limits, stability maps, basins and path curvature in 2-D (optviz.analysis).

The limits are checked against the core's own optimizers on a quadratic (not against
the formulas they come from); the maps' measured boundary against the analytic one,
within one grid cell; the basins against Himmelblau's four known minima.
"""
from __future__ import annotations

import numpy as np
import pytest

from optviz import optim
from optviz.analysis.basins import DIVERGED, MAXIMUM, NOT_CONVERGED, SADDLE, basin_map, classify
from optviz.analysis.curvature import path_curvature
from optviz.analysis.stability import Axis, curvature_at_minimum, stability_map
from optviz.analysis.thresholds import preconditioner, stability_limit
from optviz.engine import race
from optviz.errors import InvalidValue, OptvizError
from optviz.surfaces import get_surface


# ------------------------------------------------------------------ limits


def _grows(name, hyper, lrs, lam=1.0, steps=4000):
    """(len(lrs),) whether the core's optimizer blows up on f = lam x^2 / 2 at each rate."""
    x = np.ones((len(lrs), 1))
    tx = optim.create(name, batch_dims=1, **hyper, lr=np.asarray(lrs, float).reshape(-1, 1))
    state = tx.init(x)
    with np.errstate(all="ignore"):
        for _ in range(steps):
            u, state = tx.update(lam * x, state, x)
            x = x + u
    return ~(np.abs(x[:, 0]) < 1.0)


@pytest.mark.parametrize("name, hyper", [
    ("sgd", {}), ("momentum", {"momentum": 0.5}), ("momentum", {"momentum": 0.9}),
    ("momentum", {"momentum": 0.9, "dampening": 0.5}), ("sgd", {"momentum": 0.7}),
    ("nesterov", {"momentum": 0.9}), ("nesterov", {"momentum": 0.3}), ("sgd", {"momentum": 0.6, "nesterov": True}),
])
def test_limit_is_where_the_core_optimizer_starts_to_blow_up(name, hyper):
    lam = 3.0
    limit = stability_limit(name, {**hyper, "lr": 1.0})
    edge = limit.lr_for(lam)                                   # the largest stable rate
    grows = _grows(name, hyper, [edge * 0.98, edge * 0.995, edge * 1.005, edge * 1.02], lam)
    assert grows.tolist() == [False, False, True, True], (name, hyper, edge)
    assert not limit.preconditioned


def test_limit_values_and_methods_without_one():
    assert stability_limit("sgd", {"lr": 0.01}).value == pytest.approx(200)
    assert stability_limit("momentum", {"lr": 0.01, "momentum": 0.9}).value == pytest.approx(380)
    adam = stability_limit("adam", {"lr": 1e-3})
    assert adam.preconditioned and adam.value == pytest.approx(38_000)
    assert stability_limit("adagrad", {"lr": 0.01}).preconditioned
    for name in ("lion", "adadelta", "nadam"):
        assert stability_limit(name, {}) is None
    assert stability_limit("sgd", {"lr": 0.1, "clip_norm": 1.0}) is None     # clipped steps are bounded


@pytest.mark.parametrize("name, hyper", [("adam", {"lr": 0.05}), ("adam", {"lr": 0.05, "amsgrad": True}),
                                         ("amsgrad", {"lr": 0.05}), ("adamw", {"lr": 0.05, "weight_decay": 0.0}),
                                         ("adam", {"lr": 0.05, "eps_root": 1e-3}), ("rmsprop", {"lr": 0.05}),
                                         ("rmsprop", {"lr": 0.05, "centered": True}),
                                         ("adagrad", {"lr": 0.05, "lr_decay": 0.1})])
def test_preconditioner_is_the_one_the_optimizer_divides_by(name, hyper):
    """The core's next update is -eta P^-1 (its momentum, or the gradient), with P from
    the state after the update; checked on the core's own step."""
    from optviz.optim.state import named_leaves

    rng = np.random.default_rng(0)
    x = rng.normal(size=3)
    tx = optim.create(name, **hyper)
    state = tx.init(x)
    for t in range(1, 6):
        g = rng.normal(size=3)
        u, state = tx.update(g, state, x)
        x = x + u
        leaves = named_leaves(state)
        P = preconditioner(name, hyper, leaves, t)
        numerator = leaves.get("exp_avg", g)                     # Adam's m, else the gradient itself
        np.testing.assert_allclose(u, -hyper["lr"] * numerator / P, rtol=1e-12)
    assert preconditioner(name, hyper, leaves, 0) is None
    assert preconditioner("sgd", {}, leaves, 3) is None


# ------------------------------------------------------------------ stability maps


@pytest.mark.parametrize("angle", [0.0, 30.0])
def test_stability_boundary_of_gd_and_heavy_ball_within_one_cell(angle):
    """The issue's test: on a quadratic with eigenvalues 1 and 40, the first unstable cell of
    each row lies within one cell above 2/lambda_max (GD) and 2(1+gamma)/lambda_max (momentum)."""
    s = get_surface("long_valley", condition=40, angle=angle)
    _, eig = curvature_at_minimum(s, s.default_start)
    np.testing.assert_allclose(eig, [1.0, 40.0], atol=1e-9)
    x = Axis("lr", 1e-3, 0.2, 80, True)
    gd = stability_map(s, "sgd", x=x, y=None, steps=400)
    np.testing.assert_allclose(gd.boundary, [2 / 40])
    hb = stability_map(s, "momentum", x=x, y=Axis("momentum", 0.0, 0.95, 12, False), steps=400)
    np.testing.assert_allclose(hb.boundary, 2 * (1 + hb.y.values) / 40)
    for m in (gd, hb):
        off = np.log(m.measured_boundary() / m.boundary) / np.log(m.x.cell)
        assert np.all((off >= 0) & (off <= 1)), off          # the first centre past the edge
        assert m.diverged[:, -1].all() and not m.diverged[:, 0].any()
        assert np.isnan(m.gap[m.diverged]).all() and (m.gap[~m.diverged] >= 0).all()


def test_stability_map_is_the_engine_run_cell_by_cell():
    from optviz.engine import run_batch

    s = get_surface("rosenbrock")
    m = stability_map(s, "adam:beta2=0.99", x=Axis("lr", 1e-3, 0.3, 5, True), y=Axis("beta1", 0.0, 0.95, 3, False),
                      steps=60, tol=1e-3)
    assert m.fixed == {"beta2": 0.99} and m.label == "Adam (β₂=0.99)" and m.boundary is None
    for i, b1 in enumerate(m.y.values):
        for j, lr in enumerate(m.x.values):
            one = run_batch(s, "adam", {"lr": lr, "beta1": b1, "beta2": 0.99}, [s.default_start], 60)
            assert m.gap[i, j] == pytest.approx(one.loss[-1, 0] - 0.0, rel=1e-12)
            hit = np.nonzero(one.loss[:, 0] <= 1e-3 * m.initial_gap)[0]
            assert (np.isnan(m.steps_to_tol[i, j]) and not len(hit)) or m.steps_to_tol[i, j] == hit[0]


def test_stability_map_bad_input():
    s = get_surface("long_valley")
    with pytest.raises(OptvizError, match="has none"):
        stability_map(get_surface("saddle"), "sgd")
    with pytest.raises(InvalidValue, match="no hyperparameter 'momentum'"):
        stability_map(s, "adam", y=Axis("momentum", 0, 0.9, 3, False))
    with pytest.raises(InvalidValue, match="lo < hi"):
        Axis("lr", 1.0, 0.1, 4, True)
    with pytest.raises(InvalidValue, match="positive"):
        Axis("lr", 0.0, 0.1, 4, True)
    with pytest.raises(InvalidValue, match="must differ"):
        stability_map(s, "sgd", x=Axis("lr", 1e-3, 1, 4, True), y=Axis("lr", 1e-3, 1, 4, True))
    with pytest.raises(InvalidValue, match="tol"):
        stability_map(s, "sgd", tol=2.0, nx=3, ny=2, steps=5)
    with pytest.raises(InvalidValue, match="newton method"):
        stability_map(s, "newton")


# ------------------------------------------------------------------ basins


def test_basins_on_himmelblau_find_all_four_minima():
    s = get_surface("himmelblau")
    for spec in ("momentum:lr=0.009", "nesterov:lr=0.005", "adagrad:lr=0.5", "adam:lr=0.5"):
        m = basin_map(s, spec, n=41, steps=500)
        assert m.found() == [0, 1, 2, 3], spec
        ends = m.final[m.outcome >= 0]
        np.testing.assert_allclose(ends, m.attractors[m.outcome[m.outcome >= 0]], atol=m.radius)
        assert sum(m.shares().values()) == pytest.approx(1.0)


def test_newton_basins_reach_saddles_and_the_maximum():
    s = get_surface("himmelblau")
    m = basin_map(s, "newton", n=41, steps=100)
    shares = m.shares()
    assert m.found() == [0, 1, 2, 3]
    assert shares[SADDLE] > 0.2 and shares[MAXIMUM] > 0.02          # plain Newton seeks any stationary point
    top = m.final[m.outcome == MAXIMUM]
    np.testing.assert_allclose(top, np.tile([-0.270844590667, -0.923038556480], (len(top), 1)), atol=1e-6)


def test_classify_by_gradient_and_hessian():
    s = get_surface("himmelblau")
    pts = np.array([[3.0, 2.0], [-0.270844590667, -0.923038556480], [3.0, 2.0], [0.0, 0.0]])
    saddle = race(s, ["newton"], starts=[[0.1, -2.0]], steps=60)[0].xy[-1]      # one of the four saddles
    pts = np.vstack([pts, saddle])
    out = classify(s, pts, np.array([False, False, True, False, False]), s.minima, radius=0.1, gtol=1e-6)
    assert out.tolist() == [0, MAXIMUM, DIVERGED, NOT_CONVERGED, SADDLE]


# ------------------------------------------------------------------ curvature along a path


def test_path_curvature_is_the_hessian_along_the_path_and_gd_stops_at_the_edge():
    s = get_surface("rosenbrock")
    steep, calm = race(s, ["sgd:lr=2.2e-3", "sgd:lr=1.8e-3"], steps=4000)
    cs, cc = path_curvature(s, steep), path_curvature(s, calm)
    np.testing.assert_allclose(cs.eigenvalues, np.linalg.eigvalsh(s.hessian(steep.xy)), rtol=1e-12)
    assert cs.limit.value == pytest.approx(2 / 2.2e-3) and cc.limit.value == pytest.approx(2 / 1.8e-3)
    lam_min = np.linalg.eigvalsh(s.hessian(s.minima))[0, -1]            # 1001.6 > 909 = 2 / 2.2e-3
    # the larger rate cannot follow the valley to the minimum: it hovers at its limit
    assert abs(np.median(cs.sharpness[-1000:]) / cs.limit.value - 1) < 0.05
    assert steep.loss[-1] > 1e-2 > 1e-3 > calm.loss[-1]        # the larger rate ends higher
    # the smaller rate goes on into curvature the larger one cannot follow, toward the minimum's
    assert 1.05 * cs.limit.value < cc.sharpness[-1] < lam_min < cc.limit.value


def test_path_curvature_of_adam_is_preconditioned():
    s = get_surface("booth")
    traj = race(s, ["adam:lr=0.1"], steps=50)[0]
    c = path_curvature(s, traj)
    assert c.limit.preconditioned and np.isnan(c.preconditioned[0])
    t = 20
    state = {k: v[t] for k, v in traj.state.items()}
    P = preconditioner("adam", traj.hyperparams, state, t)
    explicit = np.linalg.eigvals(np.diag(1 / P) @ s.hessian(traj.xy[t])).real.max()    # P^-1 H, not symmetrised
    assert c.preconditioned[t] == pytest.approx(explicit, rel=1e-10)
    np.testing.assert_array_equal(c.sharpness, c.preconditioned)
