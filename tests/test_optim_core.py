"""The core's own contracts: look-ahead Nesterov, properties, schedules, errors."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from optviz import optim
from optviz.errors import InvalidValue, UnknownName
from optviz.optim import schedules


# --- the lecture's look-ahead Nesterov == torch's reformulation ----------------------

def quadratic_grad(x):
    A = np.array([[3.0, 0.5], [0.5, 0.4]])
    return A @ x


def rosenbrock_grad(x):
    a, b = x
    return np.array([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])


@pytest.mark.parametrize("grad_fn,lr", [(quadratic_grad, 0.1), (rosenbrock_grad, 1e-4)])
def test_lookahead_nesterov_equals_reformulated_after_change_of_variables(grad_fn, lr):
    gamma = 0.9
    look = optim.nesterov_lookahead(lr=lr, momentum=gamma)
    reform = optim.nesterov(lr=lr, momentum=gamma)
    theta = np.array([-1.2, 1.0])
    phi = theta.copy()
    s_look, s_ref = look.init(theta), reform.init(phi)
    for _ in range(200):
        g = grad_fn(optim.evaluation_point(look, theta, s_look))
        u, s_look = look.update(g, s_look, theta)
        theta = theta + u
        u, s_ref = reform.update(grad_fn(phi), s_ref, phi)
        phi = phi + u
        minus_v = s_look[1].velocity  # the state holds -v
        np.testing.assert_allclose(phi, theta + gamma * minus_v, rtol=1e-10, atol=1e-12)
    assert not np.allclose(theta, phi)  # the two iterates really are different points


def test_lookahead_gradient_is_taken_ahead():
    look = optim.nesterov_lookahead(lr=0.1, momentum=0.5)
    x = np.array([1.0])
    s = look.init(x)
    u, s = look.update(np.array([2.0]), s, x)  # v = 0.2, step to 0.8
    x = x + u
    np.testing.assert_allclose(optim.evaluation_point(look, x, s), x - 0.5 * 0.2)


def test_torch_adapter_runs_lookahead_with_a_closure():
    w = torch.tensor([1.5, -0.5], dtype=torch.float64, requires_grad=True)
    opt = optim.TorchOptimizer([w], "nesterov_lookahead", lr=0.1, momentum=0.9)
    x = np.array([1.5, -0.5])
    core = optim.nesterov_lookahead(lr=0.1, momentum=0.9)
    s = core.init(x)
    for _ in range(20):
        def closure():
            opt.zero_grad()
            loss = quadratic_torch(w)
            loss.backward()
            return loss
        opt.step(closure)
        u, s = core.update(quadratic_grad(optim.evaluation_point(core, x, s)), s, x)
        x = x + u
    np.testing.assert_allclose(w.detach().numpy(), x, rtol=1e-12)
    with pytest.raises(Exception, match="closure"):
        opt.step()


def quadratic_torch(w):
    A = torch.tensor([[3.0, 0.5], [0.5, 0.4]], dtype=torch.float64)
    return 0.5 * w @ A @ w


# --- properties ------------------------------------------------------------------------

@st.composite
def convex_quadratics(draw):
    n = draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eig = rng.uniform(0.5, 5.0, n)
    A = q @ np.diag(eig) @ q.T
    x0 = rng.standard_normal(n) * 2
    return A, x0


SMALL_LR = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "nesterov_lookahead": 0.01, "adagrad": 0.01,
            "adam": 0.01, "adamw": 0.01, "amsgrad": 0.01, "nadam": 0.01, "radam": 0.01, "rmsprop": 0.001,
            "adadelta": 1.0, "lion": 0.001}


@pytest.mark.parametrize("name", optim.registry.names())
@settings(max_examples=20, deadline=None)
@given(problem=convex_quadratics())
def test_small_lr_decreases_a_convex_quadratic(name, problem):
    A, x = problem
    loss = lambda z: 0.5 * z @ A @ z  # noqa: E731
    tx = optim.create(name, lr=SMALL_LR[name])
    s = tx.init(x)
    start = loss(x)
    for _ in range(30):
        u, s = tx.update(A @ optim.evaluation_point(tx, x, s), s, x)
        x = x + u
    assert loss(x) < start


@settings(max_examples=30, deadline=None)
@given(problem=convex_quadratics(), lr=st.floats(1e-4, 0.2))
def test_sgd_without_momentum_is_gradient_descent(problem, lr):
    A, x = problem
    tx = optim.sgd(lr=lr, momentum=0.0)
    s, y = tx.init(x), x.copy()
    for _ in range(25):
        u, s = tx.update(A @ x, s, x)
        x = x + u
        y = y - lr * (A @ y)
    np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), c=st.floats(1e-2, 1e3))
def test_adam_step_is_invariant_to_gradient_scale(seed, c):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(4) for _ in range(15)]
    tx = optim.adam(lr=0.1, eps=1e-30)  # negligible even where a gradient is tiny (1e-12 was not)
    x = y = np.zeros(4)
    s1, s2 = tx.init(x), tx.init(y)
    for g in grads:
        u1, s1 = tx.update(g, s1, x)
        u2, s2 = tx.update(c * g, s2, y)
        x, y = x + u1, y + u2
    # atol: a coordinate that the steps carry back near 0 keeps the rounding of the larger
    # steps that led there (e.g. 1e-11 on -1e-3 after steps of 0.1)
    np.testing.assert_allclose(x, y, rtol=1e-8, atol=1e-9)


# --- schedules against torch.optim.lr_scheduler -----------------------------------------

def torch_lrs(make, steps, lr):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("ours,theirs", [
    (schedules.step_decay(0.1, 7, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5)),
    (schedules.exponential_decay(0.1, 0.95), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.95)),
    (schedules.cosine_decay(0.1, 50, 0.001), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 50, 0.001)),
    (schedules.one_cycle(0.1, 80), lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.1, total_steps=80, cycle_momentum=False)),
], ids=["step", "exponential", "cosine", "one_cycle"])
def test_schedules_match_torch_lr_scheduler(ours, theirs):
    expected = torch_lrs(theirs, 80 if ours.__qualname__.startswith("one_cycle") else 50, 0.1)
    np.testing.assert_allclose([ours(t) for t in range(len(expected))], expected, rtol=1e-12, atol=1e-15)


def test_warmup_cosine_shape():
    f = schedules.warmup_cosine(1.0, warmup_steps=10, total_steps=110, lr_min=0.1)
    assert f(0) == 0.0 and f(5) == pytest.approx(0.5) and f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.55) and f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)
    values = [f(t) for t in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_schedule_drives_a_core_optimizer():
    tx = optim.sgd(lr=schedules.step_decay(1.0, 2, 0.1))
    x = np.array(0.0)
    s = tx.init(x)
    steps = []
    for _ in range(5):
        u, s = tx.update(np.array(1.0), s, x)
        steps.append(-float(u))
    np.testing.assert_allclose(steps, [1.0, 1.0, 0.1, 0.1, 0.01])


# --- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("name,hyper,param", [
    ("sgd", {"lr": -0.1}, "lr"), ("momentum", {"momentum": -0.5}, "momentum"),
    ("adam", {"beta1": 1.0}, "beta1"), ("adam", {"beta2": -0.1}, "beta2"), ("adam", {"eps": -1e-8}, "eps"),
    ("adagrad", {"eps": 0.0}, "eps"), ("rmsprop", {"alpha": 1.5}, "alpha"), ("adamw", {"weight_decay": -1}, "weight_decay"),
    ("lion", {"beta2": 2}, "beta2"), ("adadelta", {"rho": 1.1}, "rho"), ("sgd", {"lr": float("nan")}, "lr"),
])
def test_invalid_hyperparameters_name_the_parameter_and_value(name, hyper, param):
    with pytest.raises(ValueError, match=rf"{param}=") as info:
        optim.create(name, **hyper)
    assert str(list(hyper.values())[0])[:3] in str(info.value)


def test_nesterov_needs_momentum():
    with pytest.raises(InvalidValue, match="nesterov"):
        optim.sgd(nesterov=True)


def test_unknown_optimizer_lists_the_valid_ones():
    with pytest.raises(UnknownName) as info:
        optim.create("adamm")
    for name in optim.LECTURE_FIVE:
        assert name in str(info.value)


def test_unknown_hyperparameter_is_named():
    with pytest.raises(InvalidValue, match="beta3"):
        optim.create("adam", beta3=0.5)
    with pytest.raises(InvalidValue, match="momentum"):
        optim.parse_spec("adam:momentum=0.9")


@pytest.mark.parametrize("spec,expected", [
    ("adam", ("adam", {})), ("adam:lr=0.05,beta1=0.8", ("adam", {"lr": 0.05, "beta1": 0.8})),
    (" sgd : lr = 1e-3 ", ("sgd", {"lr": 1e-3})), ("rmsprop:centered=true,momentum=0.9",
                                                  ("rmsprop", {"centered": True, "momentum": 0.9})),
])
def test_parse_spec(spec, expected):
    assert optim.parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["adam:lr", "adam:lr=", "adam:lr=fast", "adam:=3", "adam:lr=-1"])
def test_parse_spec_rejects_malformed(spec):
    with pytest.raises(ValueError if spec.endswith("-1") else Exception):
        optim.parse_spec(spec)


@pytest.mark.parametrize("spec", ["sgd:clip_norm=inf", "adam:clip_value=inf", "adam:amsgrad=nan", "sgd:lr=nan",
                                  "adam:lr=1e400"])
def test_parse_spec_refuses_numbers_that_are_not_finite(spec):
    """As the engine's parser does, with its message: ``optviz mnist`` and ``tune`` read specs here."""
    key, _, value = spec.partition(":")[2].partition("=")
    with pytest.raises(InvalidValue) as err:
        optim.parse_spec(spec)
    assert str(err.value) == f"invalid {key}={value} in {spec!r}: {value!r} is not a finite number"


@pytest.mark.parametrize("spec, example", [("sgd(lr=0.1)", "sgd:lr"), ("adam,sgd", "adam:lr"),
                                           ("Adam lr=1", "adam:lr"), ("sgd=0.1", "sgd:lr"), ("foo[lr=1]", "adam:lr")])
def test_parse_spec_points_foreign_syntax_to_ours(spec, example):
    from optviz.errors import OptvizError

    with pytest.raises(OptvizError, match=f"write one optimizer as NAME:KEY=VALUE.*e.g. {example}"):
        optim.parse_spec(spec)


def test_registry_entries_are_complete():
    seen = set()
    for name in optim.registry.names():
        info = optim.registry.get(name)
        assert info.rule and "theta" in info.rule, name
        assert info.colour.startswith("#") and len(info.colour) == 7 and info.colour not in seen, name
        seen.add(info.colour)
        assert info.defaults and "lr" in info.defaults, name
    assert optim.registry.names()[:5] == optim.LECTURE_FIVE


def test_defaults_equal_torch_optim():
    import inspect
    pairs = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam,
             "rmsprop": torch.optim.RMSprop, "adadelta": torch.optim.Adadelta, "nadam": torch.optim.NAdam,
             "radam": torch.optim.RAdam, "adamw": torch.optim.AdamW}
    for name, cls in pairs.items():
        theirs = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}
        for key, value in optim.registry.get(name).defaults.items():
            if key in ("beta1", "beta2"):
                assert theirs["betas"][int(key[-1]) - 1] == value, (name, key)
            elif key in theirs:
                assert theirs[key] == value, (name, key)


def test_torch_reference_refuses_what_torch_cannot_do():
    from optviz.errors import OptvizError
    from optviz.optim.torch_reference import has_reference, torch_optimizer

    w = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(OptvizError, match="eps_root"):
        torch_optimizer(w, "adam", eps_root=1e-8)
    with pytest.raises(OptvizError, match="no torch.optim counterpart"):
        torch_optimizer(w, "lion")
    assert has_reference("adam") and not has_reference("lion")


# --- layout -----------------------------------------------------------------------------

def test_the_core_imports_one_way():
    """No import cycle inside optviz.optim, counting imports inside functions too (a cycle
    hidden in a function still ties two modules together): base <- transforms <- optimizers
    <- table <- registry, and so on, top to bottom."""
    import ast
    from pathlib import Path

    folder = Path(optim.__file__).parent
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    graph = {}
    for name in modules:
        tree = ast.parse((folder / f"{name}.py").read_text())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names)
        graph[name] = deps & modules
    seen, stack = set(), []

    def visit(name):
        if name in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(name):] + [name]))
        if name in seen:
            return
        stack.append(name)
        for dep in sorted(graph[name]):
            visit(dep)
        stack.pop()
        seen.add(name)

    for name in sorted(graph):
        visit(name)
