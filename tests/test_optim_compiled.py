"""Compiled updates (optviz.optim.compiled): the same numbers as the eager core, one
compile per structure, stacked runs with tensor hyperparameters, a clean fallback."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from optviz import optim
from optviz.optim import compiled, ops
from optviz.optim.compiled import compile_step, compile_transform, scalars_to_numbers, scalars_to_tensors
from optviz.optim.state import named_leaves

NAMES = [n for n in optim.registry.names() if n != "nesterov_lookahead"]
SETTINGS = {"sgd": {"momentum": 0.5, "dampening": 0.3}, "adagrad": {"lr_decay": 0.1, "initial_accumulator_value": 0.1},
            "rmsprop": {"momentum": 0.5, "centered": True}, "adam": {"amsgrad": True, "weight_decay": 0.1}}

needs_compiler = pytest.mark.skipif(not compiled.available("cpu")[0], reason=compiled.available("cpu")[1])


def trees(seed, shapes=((3, 4), (5,)), dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype) for s in shapes]


@pytest.mark.parametrize("name", NAMES)
def test_tensor_counters_give_the_numbers_of_int_counters(name):
    """Compiled updates pass step counts as 0-d tensors, so no transform may branch on
    them in Python: their tensor paths (SGD's first step, RAdam's switch, NAdam's mu
    product, AdaGrad's decay) must give what the int paths give, from the first step on."""
    tx = optim.create(name, **SETTINGS.get(name, {}))
    p1, p2 = trees(0), trees(0)
    s1, s2 = tx.init(p1), scalars_to_tensors(tx.init(p2))
    for t in range(8):
        g = trees(t + 1)
        u1, s1 = tx.update(g, s1, p1)
        u2, s2 = tx.update(g, s2, p2)
        p1, p2 = optim.apply_updates(p1, u1), optim.apply_updates(p2, u2)
        for a, b in zip(p1, p2):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15, msg=f"{name} at step {t + 1}")
    assert named_leaves(scalars_to_numbers(s2)).keys() == named_leaves(s1).keys()
    assert all(type(v) is type(named_leaves(s1)[k]) for k, v in named_leaves(scalars_to_numbers(s2)).items()
               if not isinstance(v, list))


def test_hoist_is_the_identity_outside_a_compiled_update():
    assert ops.hoist(0.5, 2.0) == (0.5, 2.0)
    x = torch.ones(2)
    assert ops.hoist(x)[0] is x


@pytest.mark.parametrize("name", ["adam", "momentum", "radam", "nadam"])
def test_compiled_graph_is_traced_once(name):
    """The step count changes every step and must not be baked into the graph: one
    trace for many steps (dynamo's own backend here: no C++ compiler needed)."""
    tx = optim.create(name, lr=0.01)
    ctx = compile_transform(tx, backend="aot_eager")
    counters.clear()
    params = trees(0)
    state = ctx.init(params)
    ref, ref_state = trees(0), tx.init(trees(0))
    for t in range(6):
        g = trees(t + 1)
        updates, state = ctx.update(g, state, params)
        params = optim.apply_updates(params, updates)
        u, ref_state = tx.update(g, ref_state, ref)
        ref = optim.apply_updates(ref, u)
    assert counters["stats"]["unique_graphs"] == 1
    for a, b in zip(params, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert scalars_to_numbers(state)  # counters came back as tensors and convert


def stacked_problem(M=3, dtype=torch.float32):
    """M runs stacked on a leading axis, each with its own lr and betas: tensors (M, 1, 1)."""
    lrs = torch.tensor([1e-3, 1e-2, 5e-2], dtype=dtype)[:M]
    b1 = torch.tensor([0.5, 0.9, 0.95], dtype=dtype)[:M]
    b2 = torch.tensor([0.99, 0.999, 0.9], dtype=dtype)[:M]
    shapes = [(M, 6, 5), (M, 6)]
    start = trees(10, shapes, dtype)
    grads = [trees(20 + t, shapes, dtype) for t in range(12)]
    return lrs, b1, b2, start, grads


def separate_runs(lrs, b1, b2, start, grads):
    """Each run alone, eagerly, with Python floats."""
    out = []
    for m in range(len(lrs)):
        tx = optim.adam(lr=float(lrs[m]), beta1=float(b1[m]), beta2=float(b2[m]), weight_decay=0.01)
        params = [p[m].clone() for p in start]
        state = tx.init(params)
        for g in grads:
            u, state = tx.update([x[m] for x in g], state, params)
            params = optim.apply_updates(params, u)
        out.append(params)
    return out


def shaped(v, like):
    return v.view(-1, *([1] * (like.ndim - 1)))


def stacked_adam(lrs, b1, b2, params):
    """One Adam per leaf, its hyperparameters shaped (M, 1, ..., 1) to the leaf's rank."""
    return optim.per_leaf([optim.adam(lr=shaped(lrs, p), beta1=shaped(b1, p), beta2=shaped(b2, p), weight_decay=0.01)
                           for p in params])


@pytest.mark.slow  # inductor's first compile on a machine: ~30 s (then its on-disk cache serves)
@needs_compiler
def test_stacked_runs_with_tensor_hyperparameters_equal_separate_eager_runs():
    """The stacked trainer's use: params (M, ...), lr and betas as (M, 1, ...) tensors,
    compiled by inductor; each slice equals its own eager run, and one compile serves
    every step."""
    lrs, b1, b2, start, grads = stacked_problem()
    expected = separate_runs(lrs, b1, b2, start, grads)
    counters.clear()
    ctx = compile_transform(stacked_adam(lrs, b1, b2, start))
    params = [p.clone() for p in start]
    state = ctx.init(params)
    for g in grads:
        updates, state = ctx.update(g, state, params)
        params = optim.apply_updates(params, updates)
    for m in range(len(lrs)):
        for got, want in zip(params, expected[m]):
            torch.testing.assert_close(got[m], want, rtol=2e-5, atol=1e-6)
    assert counters["stats"]["unique_graphs"] == 1
    assert [int(named_leaves(s)["step"]) for s in state] == [len(grads)] * len(start)


@pytest.mark.slow
@needs_compiler
def test_compile_step_updates_in_place_and_shares_one_graph():
    """The in-place form: params += updates and the state written over the old one; a
    second stack of the same structure with other values reuses the compiled graph."""
    lrs, b1, b2, start, grads = stacked_problem()
    expected = separate_runs(lrs, b1, b2, start, grads)
    counters.clear()
    for bump in (0.0, 0.02):
        step = compile_step(stacked_adam(lrs, b1 + bump, b2, start), share="stacked-adam")
        params = [p.clone() for p in start]
        state = step.init(params)
        buffers = [id(named_leaves(s)["exp_avg"]) for s in state]
        for g in grads:
            state = step(params, g, state)
        assert step.is_compiled
        assert [id(named_leaves(s)["exp_avg"]) for s in state] == buffers  # donated: the same tensors
        if bump == 0.0:
            for m in range(len(lrs)):
                for got, want in zip(params, expected[m]):
                    torch.testing.assert_close(got[m], want, rtol=2e-5, atol=1e-6)
    assert counters["stats"]["unique_graphs"] == 1


def test_cache_dir_defaults_to_optviz_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda app: str(tmp_path / app))
    assert compiled.cache_dir() == str(tmp_path / "optviz" / "torchinductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert compiled.cache_dir() == str(tmp_path / "mine")


def test_available_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    ok, why = compiled.available("cpu")
    assert not ok and "C++ compiler" in why
    assert np.all([isinstance(x, str) for x in (why,)])


@pytest.mark.slow
@needs_compiler
def test_compiled_adapter_follows_torch_under_one_cycle_with_gradients_that_come_and_go():
    """TorchOptimizer(compile=True) in float64 against torch.optim.Adam: OneCycleLR moves
    lr and betas every step (inputs of the graph, never a recompile), parameters skip
    steps (per-parameter counts), and the run still agrees to rounding."""
    from optviz.optim import TorchOptimizer

    start = trees(3, shapes=((4, 3), (3,), (2,)))
    ours = [p.clone().requires_grad_(True) for p in start]
    theirs = [p.clone().requires_grad_(True) for p in start]
    a = TorchOptimizer(ours, "adam", lr=0.01, weight_decay=0.01, compile=True)
    b = torch.optim.Adam(theirs, lr=0.01, weight_decay=0.01)
    sa, sb = (torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=40) for o in (a, b))
    counters.clear()
    for t in range(40):
        g = trees(100 + t, shapes=((4, 3), (3,), (2,)))
        for i, (p, q) in enumerate(zip(ours, theirs)):
            has = not (i == 2 and t % 4 == 1)
            p.grad = g[i].clone() if has else None
            q.grad = g[i].clone() if has else None
        a.step()
        b.step()
        sa.step()
        sb.step()
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14, msg=f"step {t + 1}")
    assert any(plan.stepper is not None and plan.stepper.is_compiled for plan in a._plans.values())
    # graphs: one per set of parameters that step together (all three; the first two), not per step
    assert counters["stats"]["unique_graphs"] <= 3
