"""The torch adapter as torch users and careless hands meet it: names, flags, checkpoints,
pickling, and the compile option's fallbacks. (Step-by-step parity with torch.optim is in
test_optim_parity.py.)"""
from __future__ import annotations

import copy
import io
import pickle
import warnings

import pytest
import torch

from optviz.errors import InvalidValue, OptvizError
from optviz.optim import TorchOptimizer, compiled
from optviz.optim.torch_reference import torch_optimizer


def params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, generator=g, requires_grad=True), torch.randn(3, generator=g, requires_grad=True)]


def run(opt, ps, steps=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in ps:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()


# --- torch's names ---------------------------------------------------------------------

def test_betas_in_the_constructor_and_in_param_groups():
    opt = TorchOptimizer(params(), "adam", betas=(0.8, 0.95))
    assert opt.param_groups[0]["betas"] == (0.8, 0.95)
    assert "beta1" not in opt.param_groups[0] and "beta2" not in opt.defaults
    # the registry's names still work (the CLI and the MNIST trainer use them)
    assert TorchOptimizer(params(), "adam", beta1=0.7).param_groups[0]["betas"] == (0.7, 0.999)
    ps = params()
    opt = TorchOptimizer([{"params": ps[:1], "betas": (0.5, 0.9)}, {"params": ps[1:], "beta2": 0.98}], "nadam")
    assert [g["betas"] for g in opt.param_groups] == [(0.5, 0.9), (0.9, 0.98)]
    with pytest.raises(InvalidValue, match="not both"):
        TorchOptimizer(params(), "adam", betas=(0.8, 0.9), beta1=0.8)
    with pytest.raises(InvalidValue, match="pair"):
        TorchOptimizer(params(), "adam", betas=0.9)
    with pytest.raises(InvalidValue, match="beta1"):
        TorchOptimizer(params(), "adam", betas=(1.5, 0.9))


def test_a_groups_betas_are_honoured():
    """Two groups with different betas step as torch's Adam with the same groups."""
    ours, theirs = params(), params()
    spec = lambda ps: [{"params": ps[:1], "betas": (0.5, 0.9)}, {"params": ps[1:]}]  # noqa: E731
    a = TorchOptimizer(spec(ours), "adam", lr=0.1)
    b = torch.optim.Adam(spec(theirs), lr=0.1)
    run(a, ours)
    run(b, theirs)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q)
    a.param_groups[0]["betas"] = (0.9, 0.999)  # and a change is honoured too
    b.param_groups[0]["betas"] = (0.9, 0.999)
    run(a, ours, seed=2)
    run(b, theirs, seed=2)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q)


def test_unknown_hyperparameters_name_the_valid_ones():
    with pytest.raises(InvalidValue, match="valid: .*betas"):
        TorchOptimizer(params(), "adam", beta=0.9)
    # a param group may carry keys of its own, as in torch
    opt = TorchOptimizer([{"params": params(), "name": "encoder"}], "sgd", lr=0.1)
    assert opt.param_groups[0]["name"] == "encoder"


# --- torch's flags -----------------------------------------------------------------------

@pytest.mark.parametrize("flag,value,reason", [
    ("fused", True, "compile=True"), ("capturable", True, "host"), ("differentiable", True, "no_grad")])
def test_flags_that_cannot_be_honoured_are_refused_with_the_reason(flag, value, reason):
    with pytest.raises(InvalidValue, match=f"{flag}=True is not supported: .*{reason}"):
        TorchOptimizer(params(), "adam", **{flag: value})


def test_foreach_is_accepted_and_changes_nothing():
    a, b = params(), params()
    run(TorchOptimizer(a, "adam", foreach=True), a)
    run(TorchOptimizer(b, "adam", foreach=False), b)
    for p, q in zip(a, b):
        assert torch.equal(p, q)


def test_clipping_set_in_a_param_group_is_honoured():
    ours, theirs = params(), params()
    a = TorchOptimizer(ours, "momentum", lr=0.1)
    b = torch_optimizer(theirs, "momentum", lr=0.1)
    run(a, ours, steps=2)
    run(b, theirs, steps=2)
    a.param_groups[0]["clip_norm"] = 0.5
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        for p, q in zip(ours, theirs):
            p.grad = torch.randn(p.shape, generator=g)
            q.grad = p.grad.clone()
        torch.nn.utils.clip_grad_norm_(theirs, 0.5)
        a.step()
        b.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q)


def test_maximize_climbs():
    w = torch.zeros(2, requires_grad=True)
    opt = TorchOptimizer([w], "sgd", lr=0.1, maximize=True)
    w.grad = torch.tensor([1.0, -2.0])
    opt.step()
    torch.testing.assert_close(w.detach(), torch.tensor([0.1, -0.2]))


# --- checkpoints ------------------------------------------------------------------------

def test_a_torch_state_dict_with_implementation_flags_loads():
    ps = params()
    theirs = torch.optim.Adam(ps, lr=0.01, fused=True)
    run(theirs, ps, steps=3)
    ours = TorchOptimizer(params(), "adam", lr=0.01)
    ours.load_state_dict(theirs.state_dict())
    assert ours.param_groups[0]["fused"] is None
    assert ours.state[ours.param_groups[0]["params"][0]]["step"] == 3


@pytest.mark.parametrize("saved_by,load_into,match", [
    (lambda ps: torch.optim.AdamW(ps), "adam", "'adamw'"),
    (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), "momentum", "'nesterov'"),
    (lambda ps: torch.optim.Adam(ps), "sgd", "another optimizer|adam"),
    (lambda ps: torch.optim.Adam(ps), "amsgrad", "amsgrad=True, not False"),
])
def test_a_state_dict_of_another_algorithm_is_refused(saved_by, load_into, match):
    ps = params()
    other = saved_by(ps)
    run(other, ps, steps=2)
    opt = TorchOptimizer(params(), load_into)
    with pytest.raises(InvalidValue, match=match):
        opt.load_state_dict(other.state_dict())


def test_a_state_dict_of_an_older_optviz_loads():
    """Before torch's names, groups held beta1/beta2: MNIST checkpoints saved so must resume."""
    ps = params()
    opt = TorchOptimizer(ps, "adam", lr=0.01)
    run(opt, ps, steps=3)
    sd = opt.state_dict()
    for g in sd["param_groups"]:
        g["beta1"], g["beta2"] = g.pop("betas")
    fresh = TorchOptimizer([p.detach().clone().requires_grad_() for p in ps], "adam", lr=0.01)
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["betas"] == (0.9, 0.999)


def test_saved_buffers_without_a_step_are_a_clear_error():
    ps = params()
    opt = TorchOptimizer(ps, "adam")
    run(opt, ps, steps=2)
    sd = opt.state_dict()
    del sd["state"][0]["step"]
    with pytest.raises(InvalidValue, match="exp_avg.*no 'step'"):
        opt.load_state_dict(sd)
        run(opt, ps, steps=1)


def test_sgd_keeps_no_step_like_torch():
    ps = params()
    ours, theirs = TorchOptimizer(ps, "momentum", lr=0.1), torch_optimizer(params(), "momentum", lr=0.1)
    run(ours, ps, steps=2)
    assert set(ours.state[ps[0]]) == {"momentum_buffer"}
    assert set(theirs.state_dict()["state"]) == set()  # torch, before its first step


@pytest.mark.parametrize("name,hyper", [("adam", {"amsgrad": True}), ("momentum", {}), ("nadam", {}),
                                         ("adagrad", {"lr_decay": 0.1}), ("rmsprop", {"momentum": 0.5})])
def test_a_pickled_optimizer_unpickles_and_steps(name, hyper):
    ps = params()
    opt = TorchOptimizer(ps, name, lr=0.01, **hyper)
    run(opt, ps, steps=4)
    clones = [pickle.loads(pickle.dumps((ps, opt))), copy.deepcopy((ps, opt))]
    run(opt, ps, steps=3, seed=7)
    for ps2, opt2 in clones:
        assert opt2.param_groups[0]["params"][0] is ps2[0]
        run(opt2, ps2, steps=3, seed=7)
        for p, q in zip(ps, ps2):
            assert torch.equal(p, q)


def test_torch_save_of_the_whole_optimizer():
    ps = params()
    opt = TorchOptimizer(ps, "adam", lr=0.01)
    run(opt, ps, steps=2)
    buffer = io.BytesIO()
    torch.save(opt, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    run(again, again.param_groups[0]["params"], steps=1)
    assert again.state[again.param_groups[0]["params"][0]]["step"] == 3


def test_sparse_gradients_are_refused_clearly():
    w = torch.zeros(4, requires_grad=True)
    opt = TorchOptimizer([w], "adam")
    w.grad = torch.zeros(4).to_sparse()
    with pytest.raises(OptvizError, match="sparse"):
        opt.step()


# --- the compile option ------------------------------------------------------------------

def test_compile_setting_reads_the_environment(monkeypatch):
    monkeypatch.setenv("OPTVIZ_COMPILE", "0")
    assert TorchOptimizer(params(), "adam")._compile is False
    monkeypatch.setenv("OPTVIZ_COMPILE", "auto")
    assert TorchOptimizer(params(), "adam")._compile == "auto"
    monkeypatch.setenv("OPTVIZ_COMPILE", "maybe")
    with pytest.raises(InvalidValue, match="OPTVIZ_COMPILE"):
        TorchOptimizer(params(), "adam")
    with pytest.raises(InvalidValue, match="compile="):
        TorchOptimizer(params(), "adam", compile="yes")


def test_compile_auto_without_a_compiler_is_silently_eager(monkeypatch):
    monkeypatch.setattr(compiled, "available", lambda device="cpu": (False, "no C++ compiler found"))
    a, b = params(), params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = TorchOptimizer(a, "adam", compile="auto")
        run(opt, a)
        opt.param_groups[0]["betas"] = (0.5, 0.9)   # and new values are read, not baked
        run(opt, a, seed=2)
    assert all(plan.stepper is None for plan in opt._plans.values())
    ref = TorchOptimizer(b, "adam")
    run(ref, b)
    ref.param_groups[0]["betas"] = (0.5, 0.9)
    run(ref, b, seed=2)
    for p, q in zip(a, b):
        assert torch.equal(p, q)


def test_look_ahead_runs_eagerly_under_compile():
    """The lecture's look-ahead Nesterov evaluates the gradient between its steps: eager
    even with compile=True, and a changed momentum is honoured."""
    w = torch.tensor([1.5, -0.5], dtype=torch.float64, requires_grad=True)
    v = w.detach().clone().requires_grad_(True)
    a = TorchOptimizer([w], "nesterov_lookahead", lr=0.1, momentum=0.9, compile=True)
    b = TorchOptimizer([v], "nesterov_lookahead", lr=0.1, momentum=0.9, compile=False)
    for t in range(6):
        if t == 3:
            a.param_groups[0]["momentum"] = b.param_groups[0]["momentum"] = 0.5
        for x, opt in ((w, a), (v, b)):
            def closure(x=x, opt=opt):
                opt.zero_grad()
                loss = (x * x * torch.tensor([3.0, 0.4], dtype=torch.float64)).sum()
                loss.backward()
                return loss
            opt.step(closure)
    assert torch.equal(w, v)
    assert all(plan.stepper is None for plan in a._plans.values())


def test_a_closure_and_a_frozen_parameter_keep_one_plan(monkeypatch):
    """A group steps by one plan while its parameters with a gradient stay the same, with
    a closure too (a frozen parameter once made step(closure) rebuild it twice a step)."""
    used, frozen = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = TorchOptimizer([used, frozen], "adam", lr=0.1)
    builds = []
    build = TorchOptimizer._build_plan
    monkeypatch.setattr(TorchOptimizer, "_build_plan", lambda self, *args: builds.append(1) or build(self, *args))

    def closure():
        opt.zero_grad()
        loss = ((used - 1) ** 2).sum()
        loss.backward()
        return loss

    losses = [opt.step(closure).item() for _ in range(5)]
    assert losses[-1] < losses[0] and frozen.grad is None and not opt.state[frozen]
    assert len(builds) == 1


def test_compile_true_without_a_compiler_warns_once(monkeypatch):
    monkeypatch.setattr(compiled, "available", lambda device="cpu": (False, "no C++ compiler found"))
    monkeypatch.setattr(compiled, "_WARNED", False)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler") as record:
        for _ in range(3):
            ps = params()
            run(TorchOptimizer(ps, "adam", compile=True), ps, steps=2)
    assert len(record) == 1


def test_a_failed_compile_falls_back_to_eager_with_one_warning(monkeypatch):
    def broken(fn, **options):
        def call(*args):
            raise RuntimeError("InvalidCxxCompiler: no working C++ compiler")
        return call

    monkeypatch.setattr(compiled, "available", lambda device="cpu": (True, ""))
    monkeypatch.setattr(compiled.torch, "compile", broken)
    monkeypatch.setattr(compiled, "_WARNED", False)
    monkeypatch.setattr(compiled, "_SHARED", {})
    a, b = params(), params()
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*InvalidCxxCompiler") as record:
        opt = TorchOptimizer(a, "adam", compile=True)
        run(opt, a)
        ps = params()
        run(TorchOptimizer(ps, "nadam", compile=True), ps, steps=2)
    assert len(record) == 1
    run(TorchOptimizer(b, "adam"), b)
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
