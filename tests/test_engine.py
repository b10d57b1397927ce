"""The 2-D engine: gradient flow, divergence events, batching, seeds, Newton."""
from __future__ import annotations

import numpy as np
import pytest

from optviz.engine import race, run_batch
from optviz.engine.presets import default_steps, lecture_specs
from optviz.errors import InvalidValue, OptvizError, UnknownName
from optviz.surfaces import get_surface, surface_names


def rk4_flow(surface, x0, t_end, n=200):
    """The gradient flow dx/dt = -grad f, integrated finely with RK4 (an independent reference)."""
    x, h = np.array(x0, float), t_end / n
    g = lambda z: -surface.grad(z)  # noqa: E731
    for _ in range(n):
        k1 = g(x); k2 = g(x + h / 2 * k1); k3 = g(x + h / 2 * k2); k4 = g(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


@pytest.mark.parametrize("name", ["rosenbrock", "beale", "himmelblau"])
def test_tiny_learning_rate_follows_the_gradient_flow(name):
    s = get_surface(name)
    lr, steps = 1e-5, 1000
    rec = run_batch(s, "sgd", {"lr": lr}, s.starts[:1], steps)
    flow = rk4_flow(s, s.starts[0], lr * steps)
    moved = np.linalg.norm(flow - s.starts[0])
    assert moved > 1e-3  # it really went somewhere
    assert np.linalg.norm(rec.xy[-1, 0] - flow) < 0.02 * moved


def test_divergence_is_marked_at_the_right_step():
    # long_valley: y_k = (1 - lr*kappa)^k y0; with lr*kappa = 3 it triples each step, sign flipping.
    s = get_surface("long_valley", condition=10.0)
    y0, lr = 1.0, 0.3
    box_top = 5.0 + 2 * 10.0  # domain [-5, 5] widened by 2x its size
    k = next(k for k in range(1, 100) if abs((1 - lr * 10) ** k * y0) > box_top)
    paths = race(s, [f"sgd:lr={lr}"], starts=[(0.0, y0)], steps=50)
    (p,) = paths
    assert p.diverged and p.diverged_at == k
    assert len(p.xy) == k and np.all(np.isfinite(p.xy))  # the path ends at the last point inside
    np.testing.assert_allclose(p.xy[-1, 1], (1 - lr * 10) ** (k - 1) * y0)


def test_nan_is_a_divergence_not_a_crash():
    s = get_surface("rosenbrock")
    (p,) = race(s, ["sgd:lr=1.0"], starts=[(-1.5, 2.5)], steps=100)
    assert p.diverged and p.diverged_at < 10


def test_batched_runs_equal_one_by_one_runs():
    s = get_surface("rosenbrock")
    rng = np.random.default_rng(0)
    starts = np.column_stack([rng.uniform(-2, 2, 6), rng.uniform(-1, 3, 6)])
    lrs = np.array([1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3])
    batched = run_batch(s, "adam", {"lr": lrs, "beta1": 0.85}, starts, 150)
    for b in range(6):
        one = run_batch(s, "adam", {"lr": float(lrs[b]), "beta1": 0.85}, starts[b:b + 1], 150)
        np.testing.assert_allclose(batched.xy[:, b], one.xy[:, 0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(batched.state["exp_avg"][1:, b], one.state["exp_avg"][1:, 0], rtol=1e-12)


def test_noise_is_seeded_and_shared_across_optimizers():
    s = get_surface("beale")
    a = race(s, ["sgd:lr=1e-3", "adam:lr=0.01"], steps=50, noise=0.5, seed=7)
    b = race(s, ["sgd:lr=1e-3", "adam:lr=0.01"], steps=50, noise=0.5, seed=7)
    c = race(s, ["sgd:lr=1e-3"], steps=50, noise=0.5, seed=8)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.xy, q.xy)
    assert not np.allclose(a[0].xy, c[0].xy)
    clean = race(s, ["sgd:lr=1e-3"], steps=50)[0]
    # same noise for every optimizer: the noise SGD saw is the noise recorded in the gradient
    noise_sgd = a[0].grad[:-1] - s.grad(a[0].xy[:-1])
    assert not np.allclose(a[0].xy, clean.xy) and noise_sgd.std() == pytest.approx(0.5, rel=0.3)


def test_records_state_and_effective_step():
    s = get_surface("rosenbrock")
    mom, adam = race(s, ["momentum:lr=1e-3", "adam:lr=0.05"], steps=20)
    assert set(mom.state) == {"momentum_buffer"} and set(adam.state) == {"exp_avg", "exp_avg_sq"}
    np.testing.assert_allclose(np.diff(mom.xy, axis=0), mom.step)
    np.testing.assert_allclose(mom.step[5], -1e-3 * mom.state["momentum_buffer"][6])
    np.testing.assert_allclose(mom.loss, s.value(mom.xy))


def test_lookahead_nesterov_runs_in_the_engine():
    s = get_surface("rosenbrock")
    look, ref = race(s, ["nesterov_lookahead:lr=1e-3", "nesterov:lr=1e-3"], steps=100)
    velocity = look.state["velocity"]  # -v
    np.testing.assert_allclose(ref.xy, look.xy + 0.9 * velocity, rtol=1e-9, atol=1e-12)


def test_newton_solves_a_quadratic_in_one_step_and_sits_on_a_saddle():
    valley = get_surface("long_valley", condition=30.0)
    (p,) = race(valley, ["newton"], starts=[(3.0, 2.0)], steps=3)
    np.testing.assert_allclose(p.xy[1], [0.0, 0.0], atol=1e-12)
    saddle = get_surface("saddle")
    newton, free, gd = race(saddle, ["newton", "saddle_free_newton", "sgd:lr=0.05"], starts=[(-1.5, 0.2)], steps=40)
    np.testing.assert_allclose(newton.xy[-1], [0.0, 0.0], atol=1e-12)  # drawn to the saddle
    assert free.loss[-1] < -1 or free.diverged  # flees it
    assert gd.loss[-1] < newton.loss[-1]


@pytest.mark.parametrize("kwargs,match", [
    ({"steps": 0}, "steps"), ({"steps": -5}, "steps"), ({"steps": 2.5}, "steps"),
    ({"starts": [(100.0, 0.0)]}, "outside the domain"), ({"starts": [("a", 1)]}, "start"),
])
def test_bad_input_is_a_clear_error(kwargs, match):
    s = get_surface("rosenbrock")
    with pytest.raises(InvalidValue, match=match):
        race(s, ["sgd"], **{"steps": 10, **kwargs})


def test_bad_specs():
    s = get_surface("rosenbrock")
    with pytest.raises(UnknownName, match="adam"):
        race(s, ["adamm:lr=1"], steps=3)
    with pytest.raises(OptvizError):
        race(s, ["newton:lr=fast"], steps=3)
    with pytest.raises(UnknownName):
        race(s, ["newtonn"], steps=3)


@pytest.mark.parametrize("name", surface_names())
def test_lecture_presets_run_on_every_surface(name):
    s = get_surface(name)
    paths = race(s, lecture_specs(name), steps=min(default_steps(name), 60))
    assert len(paths) == 5 and all(len(p.xy) >= 2 for p in paths)


def test_clipping_keeps_momentum_off_the_cliff():
    s = get_surface("cliff")
    free, clipped = race(s, ["momentum:lr=0.1,momentum=0.9", "momentum:lr=0.1,momentum=0.9,clip_norm=1"], steps=300)
    assert free.diverged or free.loss[-1] > clipped.loss[-1] + 1
    assert not clipped.diverged and clipped.loss[-1] < s.minimum_value + 0.05


def test_clip_norm_is_per_configuration_in_a_batch():
    s = get_surface("rosenbrock")
    starts = np.array([[-1.5, 2.5], [0.9, 0.8]])  # a steep start and a gentle one
    batched = run_batch(s, "sgd", {"lr": 1e-3, "clip_norm": 1.0}, starts, 5)
    for b in range(2):
        one = run_batch(s, "sgd", {"lr": 1e-3, "clip_norm": 1.0}, starts[b:b + 1], 5)
        np.testing.assert_allclose(batched.xy[:, b], one.xy[:, 0], rtol=1e-13)


def test_lr_sweep_rows_equal_separate_runs():
    from optviz.engine.sweep import lr_sweep, random_starts

    s = get_surface("rosenbrock")
    starts = random_starts(s, 3, seed=1)
    lrs = np.array([1e-4, 1e-3, 3e-2])
    res = lr_sweep(s, ["momentum:momentum=0.8", "adam"], lrs, starts, 60)
    assert res.final_loss.shape == (2, 3, 3) and res.labels[0] == "Momentum (γ=0.8)"
    for j, lr in enumerate(lrs):
        for k in range(3):
            one = run_batch(s, "momentum", {"lr": float(lr), "momentum": 0.8}, starts[k:k + 1], 60)
            if one.diverged_at[0] >= 0:
                assert res.diverged[0, j, k] and np.isnan(res.final_loss[0, j, k])
            else:
                np.testing.assert_allclose(res.final_loss[0, j, k], one.loss[-1, 0], rtol=1e-12)
    assert res.diverged[0, -1].all()              # momentum at 0.03 leaves Rosenbrock's box
    assert not res.diverged[1].any()              # Adam's steps are bounded by its rate
    assert set(res.best_lr()) == {"momentum", "adam"}
