"""Bring your own optimizer to the surfaces: torch.optim and scipy.optimize beside the core.

Each external path is checked against the library that made it, run by hand: a
``torch.optim`` loop over a (2,) parameter, ``scipy.optimize.minimize`` with a
callback. Then: same records, deterministic colours, same figures and animations,
and the parser that other front ends reuse.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import optviz
from optviz.engine import parse_spec, race, scipy_spec, torch_spec
from optviz.errors import InvalidValue, OptvizError, UnknownName
from optviz.surfaces import get_surface

scipy_optimize = pytest.importorskip("scipy.optimize")

ROSEN = get_surface("rosenbrock")
START = np.array([-1.2, 1.0])


def torch_by_hand(cls, steps, start=START, surface=ROSEN, noise=None, **options):
    """The reference: torch's optimizer stepping a (2,) float64 parameter, gradient from the surface."""
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = cls([p], **options)
    xs = [start.copy()]
    for t in range(steps):
        def closure():
            opt.zero_grad()
            g = surface.grad(p.detach().numpy()[None])[0] + (noise[t] if noise is not None else 0.0)
            p.grad = torch.as_tensor(g)
            return torch.tensor(float(surface.value(p.detach().numpy()[None])[0]), dtype=torch.float64)
        opt.step(closure)
        xs.append(p.detach().numpy().copy())
    return np.array(xs), opt.state[p]


@pytest.mark.parametrize("name,cls,options", [
    ("SGD", torch.optim.SGD, {"lr": 0.002, "momentum": 0.9}),
    ("Adam", torch.optim.Adam, {"lr": 0.1, "betas": (0.8, 0.99)}),
    ("RMSprop", torch.optim.RMSprop, {"lr": 0.01, "centered": True}),
    ("Adamax", torch.optim.Adamax, {"lr": 0.05}),
    ("LBFGS", torch.optim.LBFGS, {"lr": 1, "line_search_fn": "strong_wolfe"}),
])
def test_torch_classes_match_torch_by_hand(name, cls, options):
    text = f"torch:{name}:" + ",".join(
        f"{k}=({','.join(map(str, v))})" if isinstance(v, tuple) else f"{k}={v}" for k, v in options.items())
    (path,) = race(ROSEN, [text], steps=60)
    ref, state = torch_by_hand(cls, 60, **options)
    assert path.optimizer == f"torch:{name}" and path.n_steps == 60 and path.diverged_at is None
    np.testing.assert_array_equal(path.xy, ref)
    np.testing.assert_allclose(path.loss, ROSEN.value(ref), rtol=0, atol=0)
    np.testing.assert_allclose(path.grad, ROSEN.grad(ref), rtol=0, atol=0)
    np.testing.assert_allclose(path.step, np.diff(ref, axis=0), rtol=0, atol=0)
    for key, value in state.items():          # the last recorded buffers are torch's own
        if torch.is_tensor(value) and value.shape == (2,):
            np.testing.assert_array_equal(path.state[key][-1], value.numpy())


def test_torch_registry_names_keep_the_mnist_meaning():
    """``torch:adam`` is torch.optim.Adam with the registry's defaults and option names, as in
    ``optviz mnist``; on the surface it follows optviz's own adam step for step."""
    ours, theirs = race(ROSEN, ["adam:lr=0.1,beta1=0.8", "torch:adam:lr=0.1,beta1=0.8"], steps=200)
    assert theirs.optimizer == "torch:adam" and theirs.label.endswith("[torch]")
    np.testing.assert_allclose(theirs.xy, ours.xy, rtol=0, atol=1e-12)
    np.testing.assert_allclose(theirs.state["exp_avg"][1:], ours.state["exp_avg"][1:], rtol=0, atol=1e-12)
    # momentum: SGD with the registry's gamma=0.9 default
    ours, theirs = race(ROSEN, ["momentum:lr=0.001", "torch:momentum:lr=0.001"], steps=100)
    np.testing.assert_allclose(theirs.xy, ours.xy, rtol=0, atol=1e-12)


def test_python_objects_torch_classes_and_factories():
    made = []

    def factory(params):
        made.append(1)
        return torch.optim.SGD(params, lr=0.002, momentum=0.9)

    paths = optviz.race("rosenbrock", [torch.optim.SGD, (torch.optim.SGD, {"lr": 0.002, "momentum": 0.9}), factory,
                                       torch_spec(torch.optim.Adam, label="my Adam", lr=0.1)], steps=50)
    by_hand, _ = torch_by_hand(torch.optim.SGD, 50, lr=0.002, momentum=0.9)
    np.testing.assert_array_equal(paths[1].xy, by_hand)
    np.testing.assert_array_equal(paths[2].xy, by_hand)
    assert paths[2].optimizer == "torch:SGD" and made           # the factory was used
    assert paths[3].label == "my Adam" and paths[3].optimizer == "torch:Adam"
    default_sgd, _ = torch_by_hand(torch.optim.SGD, 50)           # torch's defaults (lr=1e-3)
    np.testing.assert_array_equal(paths[0].xy, default_sgd)


def test_the_parser_builds_a_torch_optimizer_for_any_model():
    """What the MNIST harness can reuse: a spec becomes an optimizer over a model's parameters."""
    model = torch.nn.Linear(3, 2)
    spec = parse_spec("torch:SGD:lr=0.01,momentum=0.9,nesterov=true")
    opt = spec.make_torch(model.parameters())
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] is True
    assert opt.defaults["lr"] == 0.01 and opt.defaults["momentum"] == 0.9
    adam = parse_spec("torch:adam:lr=1e-3").make_torch(model.parameters())
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.9, 0.999)
    assert parse_spec("adam:lr=0.1").kind == "optviz" and parse_spec("newton").kind == "newton"
    with pytest.raises(OptvizError, match="not a torch optimizer"):
        parse_spec("adam").make_torch(model.parameters())


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "CG", "Newton-CG", "trust-ncg", "Nelder-Mead"])
def test_scipy_methods_are_recorded_per_iteration(method):
    (path,) = race(ROSEN, [f"scipy:{method}"], steps=400)
    iterates = [START.copy()]
    jac = None if method == "Nelder-Mead" else (lambda x: ROSEN.grad(x[None])[0])
    hess = (lambda x: ROSEN.hessian(x[None])[0]) if method in ("Newton-CG", "trust-ncg") else None
    res = scipy_optimize.minimize(lambda x: float(ROSEN.value(x[None])[0]), START.copy(), method=method, jac=jac,
                                  hess=hess, callback=lambda intermediate_result: iterates.append(
                                      np.array(intermediate_result.x)), options={"maxiter": 400})
    assert path.optimizer == f"scipy:{method}" and path.label == f"scipy {method}"
    np.testing.assert_array_equal(path.xy, np.array(iterates))     # one point per iteration, start first
    assert path.n_steps == res.nit or (method == "Nelder-Mead" and path.n_steps == res.nit - 1)  # its count
    assert path.loss[-1] < 1e-6                                    # they all find the minimum from here
    np.testing.assert_allclose(path.loss, ROSEN.value(path.xy))


def test_scipy_options_and_refusals():
    (short,) = race(ROSEN, ["scipy:BFGS:maxiter=5"], steps=400)
    assert short.n_steps == 5
    (capped,) = race(ROSEN, ["scipy:bfgs"], steps=3)               # the race's steps cap the iterations
    assert capped.n_steps == 3 and capped.optimizer == "scipy:BFGS"
    with pytest.raises(InvalidValue, match="Unknown solver options: foo"):
        parse_spec("scipy:BFGS:foo=1")
    with pytest.raises(UnknownName, match="did you mean 'BFGS'"):
        parse_spec("scipy:BGFS")
    with pytest.raises(InvalidValue, match="exact gradients"):
        race(ROSEN, ["scipy:BFGS"], steps=10, noise=0.1)
    with pytest.raises(InvalidValue, match="maxiter must be a positive integer"):
        scipy_spec("CG", maxiter=0)


def test_torch_refusals_are_one_line():
    cases = [("torch:SGDD", UnknownName, "did you mean 'SGD'"), ("torch:SGD:gamma=1", InvalidValue, "no option gamma"),
             ("torch:SGD:lr=-1", InvalidValue, "Invalid learning rate"),
             ("torch:SparseAdam", InvalidValue, "dense gradients"), ("torch:lion", InvalidValue, "no torch.optim"),
             ("torch:adam:gamma=1", InvalidValue, "no option gamma"), ("torch:", OptvizError, "names no"),
             ("torch:Adam:betas=(0.9,0.99", OptvizError, "unbalanced")]
    for text, kind, message in cases:
        with pytest.raises(kind, match=message) as err:
            parse_spec(text)
        assert "\n" not in str(err.value)
    with pytest.raises(InvalidValue, match="not a torch.optim.Optimizer"):
        torch_spec(lambda params: "not an optimizer")


def test_divergence_is_an_event_as_in_the_core():
    core, torch_sgd = race(ROSEN, ["sgd:lr=0.01", "torch:SGD:lr=0.01"], steps=100)
    assert core.diverged and torch_sgd.diverged_at == core.diverged_at
    np.testing.assert_allclose(torch_sgd.xy, core.xy, rtol=1e-12, atol=1e-12)


def test_noise_is_the_same_for_every_engine():
    core, torch_sgd = race(ROSEN, ["sgd:lr=0.001", "torch:SGD:lr=0.001"], steps=100, noise=0.5, seed=3)
    np.testing.assert_allclose(torch_sgd.xy, core.xy, rtol=0, atol=1e-12)
    np.testing.assert_allclose(torch_sgd.grad, core.grad, rtol=0, atol=1e-9)      # the noisy gradients
    clipped_core, clipped_torch = race(ROSEN, ["sgd:lr=0.001,clip_norm=1", "torch:SGD:lr=0.001,clip_norm=1"], steps=100)
    np.testing.assert_allclose(clipped_torch.xy, clipped_core.xy, rtol=0, atol=1e-12)
    np.testing.assert_allclose(clipped_torch.grad, clipped_core.grad, rtol=0, atol=1e-9)  # before clipping


def test_colours_are_fixed_and_apart_from_the_registry():
    from optviz.optim import registry
    from optviz.views.style import EXTERNAL_COLOURS, EXTERNAL_PALETTE, colour_for

    registry_colours = {registry.get(n).colour.lower() for n in registry.names()}
    assert not registry_colours & {c.lower() for c in EXTERNAL_PALETTE}
    named = [f"scipy:{m}" for m in ("BFGS", "L-BFGS-B", "CG", "Newton-CG", "trust-ncg", "Nelder-Mead")] + \
            [f"torch:{n}" for n in ("SGD", "Adam", "AdamW", "RMSprop", "LBFGS")]
    colours = [colour_for(n) for n in named]
    assert len(set(colours)) == len(named) and all(n in EXTERNAL_COLOURS for n in named)
    assert colour_for("torch:Rprop") == colour_for("torch:Rprop") in EXTERNAL_PALETTE
    assert colour_for("torch:adam") == colour_for("adam")        # torch's version of a registry optimizer
    assert colour_for("scipy:BFGS", "dark") != colour_for("scipy:BFGS")   # lightened like the others


def test_external_paths_draw_and_animate_like_the_others(tmp_path):
    from PIL import Image

    specs = ["adam:lr=0.1", "torch:SGD:lr=0.002,momentum=0.9", "scipy:BFGS", "scipy:Nelder-Mead"]
    paths = optviz.race("rosenbrock", specs, steps=80)
    from matplotlib.text import Text

    fig = optviz.plot("rosenbrock", paths)
    texts = " ".join(t.get_text() for t in fig.findobj(Text))
    assert "torch SGD" in texts and "scipy BFGS" in texts and "scipy Nelder-Mead" in texts
    anim = optviz.animate("rosenbrock", paths, frames=6, style="paper", dpi=40, arrows=("grad", "momentum"))
    out = anim.save(tmp_path / "race.gif", progress=False)
    with Image.open(out) as im:
        assert im.n_frames == 6


def test_cli_brings_its_own_optimizers(tmp_path):
    from click.testing import CliRunner

    from optviz.cli import main

    out = tmp_path / "byo.png"
    result = CliRunner().invoke(main, ["plot", "rosenbrock", "--steps", "60", "--opt", "torch:SGD:lr=0.002,momentum=0.9",
                                       "--opt", "scipy:L-BFGS-B", "--opt", "torch:adam:lr=0.1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "torch SGD (η=0.002, γ=0.9)" in result.output and "scipy L-BFGS-B" in result.output
    assert out.stat().st_size > 10_000
    refused = CliRunner().invoke(main, ["sweep", "rosenbrock", "--opt", "torch:SGD", "-o", str(tmp_path / "s.png")])
    assert refused.exit_code == 2 and "registry's optimizers" in refused.output
