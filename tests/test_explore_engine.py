"""The explorer's engine: the lockstep race equals race() to the bit, and the replayed
gradients equal autograd's to the bit (or are not used)."""
from __future__ import annotations

import numpy as np
import pytest

from optviz.engine import lockstep, presets, replay
from optviz.engine.race import race
from optviz.surfaces import Surface, get_surface, surface_names

EXTRA = ["nesterov_lookahead:lr=1e-3,momentum=0.9", "rmsprop:lr=0.01,momentum=0.5", "adam:lr=3,clip_norm=1",
         "lion:lr=0.01", "newton"]


def assert_same(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert (p.optimizer, p.label, p.hyperparams, p.diverged_at, p.exit) == \
               (q.optimizer, q.label, q.hyperparams, q.diverged_at, q.exit)
        for name in ("xy", "loss", "grad", "step"):
            x, y = getattr(p, name), getattr(q, name)
            assert x.shape == y.shape and np.array_equal(x, y, equal_nan=True), (p.label, name)
        assert p.state.keys() == q.state.keys()
        for key in p.state:
            assert np.array_equal(p.state[key], q.state[key], equal_nan=True), (p.label, key)


@pytest.mark.parametrize("name", surface_names())
def test_lockstep_equals_race_on_every_surface(name):
    surface = get_surface(name)
    specs = presets.lecture_specs(name) + EXTRA
    kwargs = dict(starts=surface.starts[:2], steps=40, noise=0.3, seed=7)
    a, b = race(surface, specs, **kwargs), lockstep.race(surface, specs, **kwargs)
    assert_same(a, b)
    assert sum(p.n_steps for p in a) > 0


def test_lockstep_equals_race_on_the_lecture_scene():
    """The benchmark's scene (five x 500 steps on Rosenbrock, no noise), with divergences."""
    surface = get_surface("rosenbrock")
    specs = presets.lecture_specs("rosenbrock") + ["adam:lr=50", "momentum:lr=0.01,momentum=0.99"]
    a = race(surface, specs, steps=500)
    b = lockstep.race(surface, specs, steps=500)
    assert_same(a, b)
    assert any(p.diverged for p in a) and not all(p.diverged for p in a)


def test_lockstep_checks_like_race():
    surface = get_surface("rosenbrock")
    for bad in (dict(steps=0), dict(starts=[(9, 9)]), dict(noise=-1.0)):
        kwargs = dict(dict(steps=5), **bad)
        with pytest.raises(Exception) as want:
            race(surface, ["sgd"], **kwargs)
        with pytest.raises(type(want.value)) as got:
            lockstep.race(surface, ["sgd"], **kwargs)
        assert str(got.value) == str(want.value)


@pytest.mark.parametrize("name", surface_names())
def test_replayed_gradient_is_autograds_to_the_bit(name):
    surface = get_surface(name)
    n = 7
    assert replay.is_replayed(surface, n)
    vg = replay.value_and_grad(surface, n)
    rng = np.random.default_rng(1)
    (x0, x1), (y0, y1) = surface.domain
    for points in (rng.uniform([3 * x0, 3 * y0], [3 * x1, 3 * y1], (n, 2)),   # also far outside the domain
                   np.array([[np.nan, 0.0], [np.inf, 1.0], [0.0, -np.inf]] + [[0.5, 0.5]] * (n - 3))):
        with np.errstate(all="ignore"):
            got, want = vg(points), surface.value_and_grad(points)
        for g, w in zip(got, want):
            assert g.shape == w.shape and np.array_equal(g, w, equal_nan=True)
    with pytest.raises(ValueError):
        vg(np.zeros((n + 1, 2)))


@pytest.mark.parametrize("kind", ["traceable", "untraceable"])
def test_replay_refuses_a_function_that_branches_on_values(kind):
    import autograd.numpy as anp
    from autograd.tracer import getval

    def f(x, y):        # not elementwise: the formula depends on all the points, in Python
        if kind == "traceable":     # records fine, and the recording bakes in one branch
            c = 3.0 if float(np.sum(getval(x))) > 0 else 1.0
            return c * x ** 2 + y ** 2
        return x ** 2 + y ** 2 if anp.sum(x) > 0 else 3 * x ** 2 + y ** 2

    s = Surface(f, name="branchy", title="branchy", domain=((-1, 1), (-1, 1)), starts=[(0.5, 0.5)],
                minima=[(0, 0)], minimum_value=0.0)
    if kind == "traceable":
        assert replay._record(s, np.random.default_rng(0).uniform(-1, 1, (5, 2))) is not None
    assert not replay.is_replayed(s, 5)
    pts = np.array([[0.3, 0.1], [-0.9, 0.2], [0.1, 0.1], [0.2, -0.3], [-0.1, 0.4]])
    got, want = replay.value_and_grad(s, 5)(pts), s.value_and_grad(pts)
    assert np.array_equal(got[1], want[1])            # the surface's own gradient, not a replay
