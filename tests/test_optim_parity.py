"""Every optimizer against torch.optim, step by step, in float64.

Both sides are fed the identical gradient sequence (random, fixed by a seed), on
parameters of several shapes including a scalar and a matrix; after every step
the parameters and every state buffer torch keeps must agree to rtol 1e-10.
The core is checked twice: on numpy arrays (the 2-D engine's path) and through
the torch adapter (the MNIST harness's path).
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from optviz import optim
from optviz.optim import TorchOptimizer
from optviz.optim.state import named_leaves
from optviz.optim.torch_reference import torch_optimizer

STEPS = 60
SHAPES = [(), (5,), (3, 4)]
RTOL, ATOL = 1e-10, 1e-13


@pytest.fixture(autouse=True)
def float64_default():
    """torch keeps NAdam's mu_product (and step counts) in the default dtype: make it float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)

CASES = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "weight_decay": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3}),
    ("momentum", {"lr": 0.01}),
    ("momentum", {"lr": 0.01, "dampening": 0.2, "weight_decay": 0.05}),
    ("nesterov", {"lr": 0.01}),
    ("nesterov", {"lr": 0.01, "momentum": 0.8, "weight_decay": 0.05}),
    ("adagrad", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.05}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01, "amsgrad": True}),
    ("amsgrad", {"lr": 0.02, "weight_decay": 0.01}),
    ("adamw", {"lr": 0.01}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True}),
    ("nadam", {}),
    ("nadam", {"weight_decay": 0.1}),
    ("nadam", {"weight_decay": 0.1, "decoupled_weight_decay": True, "momentum_decay": 0.01}),
    ("radam", {}),
    ("radam", {"weight_decay": 0.1}),
    ("radam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"momentum": 0.9, "centered": True, "weight_decay": 0.1, "alpha": 0.9}),
    ("adadelta", {}),
    ("adadelta", {"lr": 0.5, "rho": 0.95, "weight_decay": 0.1}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in h.items()) or 'defaults'}" for n, h in CASES]


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def gradient_sequence(seed=1, steps=STEPS):
    rng = np.random.default_rng(seed)
    # varied magnitudes, so adaptive methods have something to adapt to
    return [[rng.standard_normal(s) * rng.uniform(0.1, 3.0) for s in SHAPES] for _ in range(steps)]


def torch_state(opt, p, key):
    value = opt.state[p][key]
    return value.numpy() if isinstance(value, torch.Tensor) else value


def core_state_by_name(state):
    return named_leaves(state)


def assert_close(actual, expected, what):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float),
                               rtol=RTOL, atol=ATOL, err_msg=what)


def run_torch(name, hyper, grads, scheduler=None):
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in make_params()]
    opt = torch_optimizer(params, name, **hyper)
    sched = scheduler(opt) if scheduler else None
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g)
        opt.step()
        if sched:
            sched.step()
        yield opt, params


@pytest.mark.parametrize("name,hyper", CASES, ids=IDS)
def test_numpy_core_matches_torch_optim(name, hyper):
    grads = gradient_sequence()
    tx = optim.create(name, **hyper)
    params = make_params()
    state = tx.init(params)
    for t, ((ref, ref_params), gs) in enumerate(zip(run_torch(name, hyper, grads), grads)):
        updates, state = tx.update(gs, state, params)
        params = optim.apply_updates(params, updates)
        ours = core_state_by_name(state)
        for i, (p, rp) in enumerate(zip(params, ref_params)):
            assert_close(p, rp.detach().numpy(), f"{name} param {i} at step {t + 1}")
            for key in ref.state[rp]:
                expected = torch_state(ref, rp, key)
                got = ours[key][i] if isinstance(ours[key], list) else ours[key]
                assert_close(got, expected, f"{name} state {key!r} of param {i} at step {t + 1}")


@pytest.mark.parametrize("name,hyper", CASES, ids=IDS)
def test_torch_adapter_matches_torch_optim(name, hyper):
    grads = gradient_sequence()
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in make_params()]
    opt = TorchOptimizer(params, name, **hyper)
    for t, ((ref, ref_params), gs) in enumerate(zip(run_torch(name, hyper, grads), grads)):
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g)
        opt.step()
        for i, (p, rp) in enumerate(zip(params, ref_params)):
            assert_close(p.detach(), rp.detach(), f"{name} param {i} at step {t + 1}")
            for key in ref.state[rp]:
                assert_close(torch_state(opt, p, key), torch_state(ref, rp, key),
                             f"{name} state {key!r} of param {i} at step {t + 1}")


SCHEDULERS = {
    "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5),
    "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=40),
    "onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=STEPS,
                                                                cycle_momentum=False),
}


@pytest.mark.parametrize("sched", SCHEDULERS)
@pytest.mark.parametrize("name,hyper", [("momentum", {"lr": 0.01}), ("adam", {"lr": 0.01}),
                                         ("adagrad", {"lr": 0.1, "lr_decay": 0.01}),
                                         ("adamw", {"lr": 0.01, "weight_decay": 0.2}),
                                         ("rmsprop", {"momentum": 0.5})])
def test_adapter_follows_torch_lr_scheduler(name, hyper, sched):
    grads = gradient_sequence()
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in make_params()]
    opt = TorchOptimizer(params, name, **hyper)
    ours_sched = SCHEDULERS[sched](opt)
    lrs_seen = set()
    for t, ((ref, ref_params), gs) in enumerate(zip(run_torch(name, hyper, grads, SCHEDULERS[sched]), grads)):
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g)
        lrs_seen.add(opt.param_groups[0]["lr"])
        opt.step()
        ours_sched.step()
        for p, rp in zip(params, ref_params):
            assert_close(p.detach(), rp.detach(), f"{name}+{sched} at step {t + 1}")
    assert len(lrs_seen) > 3, "the scheduler never changed the learning rate"


@pytest.mark.parametrize("name,hyper", [c for c in CASES if c[1].get("amsgrad") or c[0] in
                                        ("momentum", "adam", "nadam", "rmsprop", "adadelta", "adagrad")],
                         ids=lambda v: v if isinstance(v, str) else None)
def test_state_dict_round_trip_mid_run(name, hyper, tmp_path):
    grads = gradient_sequence()
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in make_params()]
    opt = TorchOptimizer(params, name, **hyper)
    half = STEPS // 2
    for t, ((ref, ref_params), gs) in enumerate(zip(run_torch(name, hyper, grads), grads)):
        if t == half:  # save, build a fresh optimizer on fresh tensors, load, continue
            buffer = io.BytesIO()
            torch.save({"params": [p.detach().clone() for p in params], "opt": opt.state_dict()}, buffer)
            buffer.seek(0)
            saved = torch.load(buffer, weights_only=False)
            params = [p.clone().requires_grad_(True) for p in saved["params"]]
            opt = TorchOptimizer(params, name, **hyper)
            opt.load_state_dict(saved["opt"])
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g)
        opt.step()
        for p, rp in zip(params, ref_params):
            assert_close(p.detach(), rp.detach(), f"{name} after reload, step {t + 1}")


def lion_reference(params, grads, lr, beta1, beta2, wd):
    """Lion as written in Chen et al. (2023), Algorithm 2, in plain torch."""
    params = [torch.tensor(p) for p in params]
    m = [torch.zeros_like(p) for p in params]
    for gs in grads:
        for i, g in enumerate(gs):
            g = torch.tensor(g)
            c = beta1 * m[i] + (1 - beta1) * g
            params[i] = params[i] - lr * (torch.sign(c) + wd * params[i])
            m[i] = beta2 * m[i] + (1 - beta2) * g
        yield [p.numpy() for p in params], [x.numpy() for x in m]


@pytest.mark.parametrize("hyper", [{}, {"lr": 3e-3, "beta1": 0.95, "beta2": 0.98, "weight_decay": 0.1}])
def test_lion_matches_its_paper(hyper):
    full = dict(optim.registry.get("lion").defaults, **hyper)
    grads = gradient_sequence()
    tx = optim.lion(**hyper)
    params = make_params()
    state = tx.init(params)
    ref = lion_reference(make_params(), grads, full["lr"], full["beta1"], full["beta2"], full["weight_decay"])
    for t, ((rp, rm), gs) in enumerate(zip(ref, grads)):
        updates, state = tx.update(gs, state, params)
        params = optim.apply_updates(params, updates)
        for p, q, m, n in zip(params, rp, core_state_by_name(state)["exp_avg"], rm):
            assert_close(p, q, f"lion param at {t + 1}")
            assert_close(m, n, f"lion momentum at {t + 1}")


def test_numpy_and_torch_tensors_give_the_same_trajectory():
    grads = gradient_sequence()
    for name in optim.registry.names():
        if name == "nesterov_lookahead":
            continue
        tx = optim.create(name)
        np_params = make_params()
        th_params = [torch.tensor(p) for p in make_params()]
        s_np, s_th = tx.init(np_params), tx.init(th_params)
        for gs in grads:
            u, s_np = tx.update(gs, s_np, np_params)
            np_params = optim.apply_updates(np_params, u)
            u, s_th = tx.update([torch.tensor(g) for g in gs], s_th, th_params)
            th_params = optim.apply_updates(th_params, u)
        for a, b in zip(np_params, th_params):
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("ours,theirs", [
    (optim.transforms.clip_by_global_norm(1.5), lambda ts: torch.nn.utils.clip_grad_norm_(ts, 1.5)),
    (optim.transforms.clip_by_value(0.7), lambda ts: torch.nn.utils.clip_grad_value_(ts, 0.7)),
], ids=["global_norm", "value"])
def test_clipping_matches_torch(ours, theirs):
    for gs in gradient_sequence(steps=5):
        clipped, _ = ours.update(gs, ours.init(gs))
        tensors = [torch.tensor(g, requires_grad=True) for g in gs]
        for t, g in zip(tensors, gs):
            t.grad = torch.tensor(g)
        theirs(tensors)
        assert any(not np.allclose(t.grad, g) for t, g in zip(tensors, gs))  # it really clipped
        for a, t in zip(clipped, tensors):
            assert_close(a, t.grad, "clipping")


def test_adapter_works_beside_clip_grad_norm():
    grads = gradient_sequence()
    ours = [torch.tensor(p, requires_grad=True) for p in make_params()]
    theirs = [torch.tensor(p, requires_grad=True) for p in make_params()]
    a, b = TorchOptimizer(ours, "momentum", lr=0.01), torch_optimizer(theirs, "momentum", lr=0.01)
    for gs in grads:
        for params, opt in ((ours, a), (theirs, b)):
            for p, g in zip(params, gs):
                p.grad = torch.tensor(g)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
    for p, q in zip(ours, theirs):
        assert_close(p.detach(), q.detach(), "momentum with clip_grad_norm_")


def test_batched_hyperparameters_equal_separate_runs():
    """lr of shape (B, 1) against params of shape (B, 2): one call, B configurations."""
    rng = np.random.default_rng(3)
    lrs = np.array([1e-3, 1e-2, 0.1, 0.3])
    beta1 = np.array([0.5, 0.8, 0.9, 0.99])
    start = rng.standard_normal((4, 2))
    grads = [rng.standard_normal((4, 2)) for _ in range(30)]
    tx = optim.adam(lr=lrs[:, None], beta1=beta1[:, None])
    x, s = start.copy(), tx.init(start)
    for g in grads:
        u, s = tx.update(g, s, x)
        x = x + u
    for b in range(4):
        one = optim.adam(lr=float(lrs[b]), beta1=float(beta1[b]))
        y, s1 = start[b].copy(), one.init(start[b])
        for g in grads:
            u, s1 = one.update(g[b], s1, y)
            y = y + u
        np.testing.assert_allclose(x[b], y, rtol=1e-13)


@pytest.mark.parametrize("name,hyper", [("momentum", {"lr": 0.01}), ("nesterov", {"lr": 0.01}),
                                         ("sgd", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3}),
                                         ("rmsprop", {"momentum": 0.9}), ("adam", {"lr": 0.01})])
def test_adapter_state_never_aliases_gradients_written_in_place(name, hyper):
    """zero_grad(set_to_none=False) and gradient accumulation write p.grad in place;
    a state buffer that aliased p.grad would silently change with it."""
    grads = gradient_sequence()
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in make_params()]
    for p in params:
        p.grad = torch.zeros_like(p)
    opt = TorchOptimizer(params, name, **hyper)
    for t, ((ref, ref_params), gs) in enumerate(zip(run_torch(name, hyper, grads), grads)):
        opt.zero_grad(set_to_none=False)
        for p, g in zip(params, gs):
            p.grad.add_(torch.tensor(g))
        opt.step()
        for p, rp in zip(params, ref_params):
            assert_close(p.detach(), rp.detach(), f"{name} with in-place gradients, step {t + 1}")


def test_adapter_keeps_the_step_count_when_a_gradient_appears_late():
    """A parameter without a gradient at first (frozen, unused) joins later: Adam's bias
    correction of the others must go on from their own count, not restart."""
    a = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = TorchOptimizer([b, a], "adam", lr=0.1)   # b first: it has no state at the first steps
    for _ in range(3):
        a.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
    b.grad = torch.ones(2, dtype=torch.float64)
    a.grad = torch.ones(3, dtype=torch.float64)
    opt.step()
    assert opt.state[a]["step"] == 4


def test_adapter_refuses_sparse_gradients_clearly():
    from optviz.errors import OptvizError

    w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = TorchOptimizer([w], "sgd", lr=0.1)
    w.grad = torch.zeros(4, dtype=torch.float64).to_sparse()
    with pytest.raises(OptvizError, match="sparse"):
        opt.step()


# --- torch's conventions, step by step: gradients that come and go, late parameters,
# --- hyperparameters changed mid-run, schedulers that cycle betas, state_dict interop

def has_gradient(t, i):
    """Parameter 1 gets no gradient every third step (an unused branch, set_to_none);
    parameter 2 gets its first one at step 7 (a late parameter)."""
    return not (i == 1 and t % 3 == 0) and not (i == 2 and t < 7)


def step_both(ours, theirs, ours_params, ref_params, gs, t, pattern=has_gradient):
    for i, (p, q, g) in enumerate(zip(ours_params, ref_params, gs)):
        p.grad = torch.tensor(g) if pattern(t, i) else None
        q.grad = torch.tensor(g) if pattern(t, i) else None
    ours.step()
    theirs.step()


def assert_same_run(ours, theirs, ours_params, ref_params, what):
    for i, (p, q) in enumerate(zip(ours_params, ref_params)):
        assert_close(p.detach(), q.detach(), f"{what}: param {i}")
        assert set(theirs.state[q]) <= set(ours.state[p]), f"{what}: state keys of param {i}"
        for key in theirs.state[q]:
            assert_close(torch_state(ours, p, key), torch_state(theirs, q, key), f"{what}: {key!r} of param {i}")


def fresh_params():
    return [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in make_params()]


@pytest.mark.parametrize("name,hyper", CASES, ids=IDS)
def test_adapter_matches_torch_with_gradients_that_come_and_go(name, hyper):
    """One step count per parameter, as torch: a parameter without a gradient does not
    advance (so the others' bias corrections do not shift) and a late one starts at 1
    (its momentum buffer a copy of its first gradient)."""
    ours_params, ref_params = fresh_params(), fresh_params()
    ours, theirs = TorchOptimizer(ours_params, name, **hyper), torch_optimizer(ref_params, name, **hyper)
    for t, gs in enumerate(gradient_sequence()):
        step_both(ours, theirs, ours_params, ref_params, gs, t)
        assert_same_run(ours, theirs, ours_params, ref_params, f"{name} at step {t + 1}")
    counts = [ours.state[p].get("step") for p in ours_params]
    if name not in ("sgd", "momentum", "nesterov"):  # torch's SGD keeps no count
        assert counts == [STEPS, STEPS - STEPS // 3, STEPS - 7]


def test_adapter_clips_the_whole_group_when_counts_differ():
    """Parameters at different step counts step in separate calls of the core, but
    global-norm clipping still sees every gradient of the group."""
    ours_params, ref_params = fresh_params(), fresh_params()
    ours = TorchOptimizer(ours_params, "adam", lr=0.01, clip_norm=1.0)
    theirs = torch_optimizer(ref_params, "adam", lr=0.01)
    clipped = 0
    for t, gs in enumerate(gradient_sequence()):
        for i, (p, q, g) in enumerate(zip(ours_params, ref_params, gs)):
            p.grad = torch.tensor(g) if has_gradient(t, i) else None
            q.grad = torch.tensor(g) if has_gradient(t, i) else None
        ours.step()
        clipped += torch.nn.utils.clip_grad_norm_([q for q in ref_params if q.grad is not None], 1.0) > 1.0
        theirs.step()
        for i, (p, q) in enumerate(zip(ours_params, ref_params)):
            assert_close(p.detach(), q.detach(), f"clipped adam, param {i} at step {t + 1}")
    assert clipped > STEPS // 2


MID_RUN = [  # (name, hyper at start, changes written into param_groups at step 20)
    ("adam", {"lr": 0.01}, {"lr": 0.003, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01}, {"weight_decay": 0.3, "eps": 1e-6}),
    ("nadam", {}, {"betas": (0.95, 0.9), "momentum_decay": 0.01}),
    ("radam", {}, {"betas": (0.5, 0.95), "decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.1}, {"lr_decay": 0.05}),   # counts from each parameter's step, not the switch
    ("sgd", {"lr": 0.05}, {"momentum": 0.9, "dampening": 0.5}),
    ("momentum", {"lr": 0.01}, {"momentum": 0.5, "weight_decay": 0.1}),
    ("rmsprop", {}, {"alpha": 0.9, "eps": 1e-4}),
    ("adadelta", {}, {"rho": 0.5, "lr": 0.5}),
]


@pytest.mark.parametrize("name,hyper,change", MID_RUN, ids=[c[0] for c in MID_RUN])
def test_adapter_follows_hyperparameters_changed_mid_run(name, hyper, change):
    ours_params, ref_params = fresh_params(), fresh_params()
    ours, theirs = TorchOptimizer(ours_params, name, **hyper), torch_optimizer(ref_params, name, **hyper)
    for t, gs in enumerate(gradient_sequence()):
        if t == 20:
            ours.param_groups[0].update(change)
            theirs.param_groups[0].update(change)
        step_both(ours, theirs, ours_params, ref_params, gs, t)
        assert_same_run(ours, theirs, ours_params, ref_params, f"{name} at step {t + 1}")


CYCLERS = {
    "onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=STEPS),
    "cyclic": lambda o: torch.optim.lr_scheduler.CyclicLR(o, base_lr=0.001, max_lr=0.05, step_size_up=7),
}


@pytest.mark.parametrize("sched", CYCLERS)
@pytest.mark.parametrize("name,hyper", [("adam", {}), ("adamw", {"weight_decay": 0.1}), ("nadam", {}), ("radam", {}),
                                         ("amsgrad", {}), ("momentum", {}), ("nesterov", {}),
                                         ("rmsprop", {"momentum": 0.5})])
def test_cycle_momentum_drives_betas_and_momentum(name, hyper, sched):
    """OneCycleLR and CyclicLR with their default cycle_momentum=True write group["betas"]
    (the Adam family) or group["momentum"]: both must be honoured at every step."""
    ours_params, ref_params = fresh_params(), fresh_params()
    ours, theirs = TorchOptimizer(ours_params, name, **hyper), torch_optimizer(ref_params, name, **hyper)
    s_ours, s_theirs = CYCLERS[sched](ours), CYCLERS[sched](theirs)
    key = "betas" if "betas" in ours.defaults else "momentum"
    seen = set()
    for t, gs in enumerate(gradient_sequence()):
        seen.add(ours.param_groups[0][key])
        step_both(ours, theirs, ours_params, ref_params, gs, t)
        s_ours.step()
        s_theirs.step()
        assert_same_run(ours, theirs, ours_params, ref_params, f"{name}+{sched} at step {t + 1}")
    assert len(seen) > 5, f"the scheduler never moved {key}"


INTEROP = [("adam", {}), ("adam", {"amsgrad": True, "weight_decay": 0.1}), ("adamw", {}), ("amsgrad", {}),
           ("sgd", {"lr": 0.05}), ("sgd", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3}),
           ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}), ("momentum", {"lr": 0.01}),
           ("nesterov", {"lr": 0.01}), ("adagrad", {"lr": 0.1, "lr_decay": 0.01}), ("rmsprop", {"momentum": 0.5}),
           ("rmsprop", {"centered": True}), ("adadelta", {}), ("nadam", {}), ("radam", {})]


def reloaded(state_dict):
    """Through torch.save / torch.load(weights_only=True), as a checkpoint travels."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("direction", ["torch->optviz", "optviz->torch"])
@pytest.mark.parametrize("name,hyper", INTEROP, ids=[f"{n}-{h}" for n, h in INTEROP])
def test_state_dict_interop_with_torch_optim(name, hyper, direction):
    """Half a run in one library, its state_dict loaded into the other, the rest there:
    every step equals a run that never left torch.optim (with gradients that come and go)."""
    make_first, make_second = (torch_optimizer, TorchOptimizer) if direction == "torch->optviz" \
        else (TorchOptimizer, torch_optimizer)
    ours_params, ref_params = fresh_params(), fresh_params()
    first, theirs = make_first(ours_params, name, **hyper), torch_optimizer(ref_params, name, **hyper)
    for t, gs in enumerate(gradient_sequence()):
        if t == STEPS // 2:
            saved = reloaded(first.state_dict())
            ours_params = [p.detach().clone().requires_grad_(True) for p in ours_params]
            first = make_second(ours_params, name, **hyper)
            first.load_state_dict(saved)
        step_both(first, theirs, ours_params, ref_params, gs, t)
        for i, (p, q) in enumerate(zip(ours_params, ref_params)):
            assert_close(p.detach(), q.detach(), f"{name} {direction}, param {i} at step {t + 1}")


@pytest.mark.parametrize("name,hyper", [("sgd", {"lr": 0.05, "momentum": 0.5}), ("adam", {"lr": 0.01}),
                                         ("adamw", {"lr": 0.01}), ("adagrad", {"lr": 0.1}), ("rmsprop", {}),
                                         ("adadelta", {}), ("nadam", {"weight_decay": 0.1}), ("radam", {})])
def test_maximize_matches_torch(name, hyper):
    ours_params, ref_params = fresh_params(), fresh_params()
    ours = TorchOptimizer(ours_params, name, maximize=True, **hyper)
    theirs = torch_optimizer(ref_params, name, **hyper)
    theirs.param_groups[0]["maximize"] = True
    for t, gs in enumerate(gradient_sequence()):
        step_both(ours, theirs, ours_params, ref_params, gs, t)
        assert_same_run(ours, theirs, ours_params, ref_params, f"{name} maximize at step {t + 1}")


@pytest.mark.parametrize("name,hyper", [c for c in CASES if c[0] != "nesterov"] + [("nesterov", {"lr": 0.01})],
                         ids=[i for c, i in zip(CASES, IDS) if c[0] != "nesterov"] + ["nesterov"])
def test_complex_parameters_match_torch(name, hyper):
    """torch treats a complex number as a pair of reals (view_as_real); so does the adapter.
    Its state is complex, as torch's (AMSGrad's running maximum included)."""
    rng = np.random.default_rng(5)
    start = [rng.standard_normal(s) + 1j * rng.standard_normal(s) for s in SHAPES]
    ours_params = [torch.tensor(z, requires_grad=True) for z in start]
    ref_params = [torch.tensor(z, requires_grad=True) for z in start]
    ours, theirs = TorchOptimizer(ours_params, name, **hyper), torch_optimizer(ref_params, name, **hyper)
    for t in range(25):
        gs = [rng.standard_normal(s) + 1j * rng.standard_normal(s) for s in SHAPES]
        step_both(ours, theirs, ours_params, ref_params, gs, t)
        for i, (p, q) in enumerate(zip(ours_params, ref_params)):
            assert_close(torch.view_as_real(p.detach()), torch.view_as_real(q.detach()), f"{name} complex {i}")
            for key, value in theirs.state[q].items():
                mine = ours.state[p][key]
                if isinstance(value, torch.Tensor) and value.is_complex():
                    assert mine.is_complex(), key
                    mine, value = torch.view_as_real(mine), torch.view_as_real(value)
                assert_close(np.asarray(mine), np.asarray(value), f"{name} complex state {key!r} of {i}")


def closure_setting(params, gs, t, pattern=has_gradient):
    """A closure that sets this step's gradients (some None) and returns a loss, as
    ``step(closure)`` callers do; it counts its calls and records whether gradients were on."""
    def closure():
        closure.calls += 1
        closure.grad_enabled = torch.is_grad_enabled()
        for i, (p, g) in enumerate(zip(params, gs)):
            p.grad = torch.tensor(g) if pattern(t, i) else None
        return torch.tensor(float(t))
    closure.calls = 0
    return closure


CLOSURE_CASES = [(name, hyper, sched) for sched in (None, *CYCLERS) for name, hyper in CASES
                 if sched is None or name not in ("adagrad", "adadelta")]   # those two have nothing to cycle


@pytest.mark.parametrize("name,hyper,sched", CLOSURE_CASES,
                         ids=[f"{i}-{s}" for s in (None, *CYCLERS) for (n, _), i in zip(CASES, IDS)
                              if s is None or n not in ("adagrad", "adadelta")])
def test_adapter_matches_torch_when_stepped_with_a_closure(name, hyper, sched):
    """step(closure) as torch's: the closure runs once, with gradients enabled, its loss is
    returned, and the step uses the gradients it set (some None), also while a scheduler
    cycles betas or momentum."""
    ours_params, ref_params = fresh_params(), fresh_params()
    ours, theirs = TorchOptimizer(ours_params, name, **hyper), torch_optimizer(ref_params, name, **hyper)
    cyclers = [CYCLERS[sched](o) for o in (ours, theirs)] if sched else []
    for t, gs in enumerate(gradient_sequence()):
        mine, ref = closure_setting(ours_params, gs, t), closure_setting(ref_params, gs, t)
        assert ours.step(mine) == theirs.step(ref) == t
        assert mine.calls == ref.calls == 1 and mine.grad_enabled and ref.grad_enabled
        for s in cyclers:
            s.step()
        assert_same_run(ours, theirs, ours_params, ref_params, f"{name} with a closure at step {t + 1}")
