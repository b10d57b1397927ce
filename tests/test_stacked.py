"""The stacked trainer: many runs as one batched model, the same numbers as one by one.

Tolerances (measured on these tiny synthetic digits, 3 epochs x 8 steps, cosine schedule,
every registered optimizer, clipping, weight decay and lr_decay, two seeds):

* float64: step losses agree to 6e-14 relative (the order of sums inside GEMMs differs);
  the tests ask for 1e-11.
* float32: they agree to 4e-5 relative after 24 steps (AdaGrad, whose tiny early
  accumulator amplifies rounding, is the worst); the tests ask for 2e-4. Validation
  accuracies agree exactly here; over long runs float32 differences grow like any
  change of summation order, far below the spread between seeds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from optviz.errors import InvalidValue, OptvizError
from optviz.mnist.divergence import DivergenceRule
from optviz.mnist.models import build_model
from optviz.mnist import train as train_mod
from optviz.mnist.results import RunDir, load_snapshots
from optviz.mnist.stacked import StackedNetwork, group_key
from optviz.mnist.train import TrainConfig, TrainingInterrupted, choose_trainer, resume, train

from test_mnist_train import N_VAL, synthetic_data

pytestmark = pytest.mark.usefixtures("isolated")

EVERY_OPTIMIZER = [
    "sgd:lr=0.05", "momentum:lr=0.05", "nesterov:lr=0.05", "nesterov_lookahead:lr=0.05", "adagrad:lr=0.05",
    "adam:lr=0.003", "adam:lr=0.01", "rmsprop:lr=0.003", "rmsprop:lr=0.003,centered=true,momentum=0.5",
    "adadelta", "nadam:lr=0.003", "adamw:lr=0.003", "amsgrad:lr=0.003", "radam:lr=0.003", "lion:lr=0.0003",
    "sgd:lr=0.1,clip_norm=0.5", "sgd:lr=0.05,clip_value=0.01", "adam:lr=0.003,weight_decay=0.01",
    "adagrad:lr=0.05,lr_decay=0.01",
]


@pytest.fixture(scope="module")
def data():
    return synthetic_data()


def config(**kw) -> TrainConfig:
    base = dict(optimizers=["sgd:lr=0.05", "adam:lr=0.003"], epochs=2, batch_size=32, seeds=[0], val_size=N_VAL,
                snapshots="none", snapshot_val_size=32)
    base.update(kw)
    return TrainConfig(**base)


def records(run_dir, kind):
    return {(r["run"], r["epoch"]): r for r in RunDir.open(run_dir).records(kind)}


def assert_same_losses(a, b, rtol, runs=None):
    ra, rb = records(a, "steps"), records(b, "steps")
    keys = [k for k in ra if runs is None or k[0] in runs]
    assert keys and all(k in rb for k in keys)
    for k in keys:
        np.testing.assert_allclose(np.array(rb[k]["loss"], dtype=float), np.array(ra[k]["loss"], dtype=float),
                                   rtol=rtol, atol=0, err_msg=str(k))


# ---------------------------------------------------------------- the batched network


@pytest.mark.parametrize("model", ["mlp", "deep_mlp", "cnn"])
def test_stacked_network_is_the_models_side_by_side(model):
    """Logits, gradients and evaluation of every member equal its own nn.Module's (float64)."""
    S, R, B = 2, 3, 5
    members = [[build_model(model, seed=10 * s + r).double() for r in range(R)] for s in range(S)]
    net = StackedNetwork(members)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(S, B, 1, 28, 28, generator=g, dtype=torch.float64), torch.randint(0, 10, (S, B), generator=g)
    out = net.train_logits(x)
    assert out.shape == (S, R, B, 10)
    F.cross_entropy(out.reshape(-1, 10), y[:, None].expand(S, R, B).reshape(-1), reduction="none") \
        .view(S, R, B).mean(-1).sum().backward()
    xe = torch.randn(7, 1, 28, 28, generator=g, dtype=torch.float64)
    ev = net.eval_logits(xe)
    for s in range(S):
        for r in range(R):
            m = members[s][r]
            o = m(x[s])
            torch.testing.assert_close(out[s, r], o, rtol=1e-12, atol=1e-12)
            F.cross_entropy(o, y[s]).backward()
            for p, P in zip(m.parameters(), net.params):
                torch.testing.assert_close(P.grad[s, r], p.grad, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(ev[s, r], m(xe), rtol=1e-12, atol=1e-12)
    vec = net.member_vectors()
    assert torch.equal(vec[1, 2], torch.nn.utils.parameters_to_vector(members[1][2].parameters()))


def test_groups_put_structural_options_apart():
    from optviz.mnist.config import TrainConfig as TC

    entries = {e.spec: e for e in TC(optimizers=["adam:lr=0.1", "adam:lr=0.01,beta1=0.8", "adam:amsgrad=true",
                                                 "adam:clip_norm=1", "sgd"]).entries()}
    keys = {spec: group_key(e) for spec, e in entries.items()}
    assert keys["adam:lr=0.1"] == keys["adam:lr=0.01,beta1=0.8"]          # numbers differ: one transform
    assert len({keys["adam:lr=0.1"], keys["adam:amsgrad=true"], keys["adam:clip_norm=1"], keys["sgd"]}) == 4


# ---------------------------------------------------------------- the same numbers as one by one


def test_stacked_equals_sequential_for_every_optimizer(data, tmp_path):
    for dtype, rtol in (("float64", 1e-11), ("float32", 2e-4)):
        cfg = dict(optimizers=EVERY_OPTIMIZER, epochs=3, seeds=[0, 1], dtype=dtype, schedule="cosine")
        train(config(trainer="sequential", **cfg), tmp_path / f"seq-{dtype}", data=data)
        train(config(trainer="stacked", **cfg), tmp_path / f"stk-{dtype}", data=data)
        assert_same_losses(tmp_path / f"seq-{dtype}", tmp_path / f"stk-{dtype}", rtol)
        ea, eb = records(tmp_path / f"seq-{dtype}", "epoch"), records(tmp_path / f"stk-{dtype}", "epoch")
        for k in ea:
            assert eb[k]["val_acc"] == pytest.approx(ea[k]["val_acc"], abs=1e-12 if dtype == "float64" else 0.02)
    assert RunDir.open(tmp_path / "stk-float64").read_state()["trainer"] == "stacked"


def test_different_hyperparameters_of_one_optimizer_step_as_one_transform(data, tmp_path):
    """Array-valued hyperparameters over the stack: learning rates, betas, weight decay."""
    opts = ["adam:lr=0.003", "adam:lr=0.01,beta1=0.8", "adam:lr=0.001,beta2=0.99,weight_decay=0.001",
            "momentum:lr=0.05,momentum=0.5", "momentum:lr=0.02,momentum=0.95"]
    train(config(optimizers=opts, dtype="float64", trainer="sequential"), tmp_path / "seq", data=data)
    train(config(optimizers=opts, dtype="float64", trainer="stacked"), tmp_path / "stk", data=data)
    assert_same_losses(tmp_path / "seq", tmp_path / "stk", 1e-11)


def test_the_auto_trainer_and_its_limits(data, tmp_path):
    assert choose_trainer(config())[0] == "stacked"
    assert choose_trainer(config(optimizers=["torch:sgd:lr=0.1", "adam"]))[0] == "sequential"
    with pytest.raises(OptvizError, match="torch.optim reference"):
        choose_trainer(config(optimizers=["torch:sgd:lr=0.1"], trainer="stacked"))
    result = train(config(optimizers=["sgd:lr=0.05", "torch:sgd:lr=0.05"], dtype="float64"), tmp_path / "ref",
                   data=data)
    assert RunDir.open(result.run_dir).config()["trainer_used"] == "sequential"


# ---------------------------------------------------------------- divergence


def test_the_divergence_rule():
    rule = DivergenceRule(factor=10, patience=3)
    scan = rule.scanner(torch.tensor([2.0, 2.0, 2.0, 2.0]))
    chunk = torch.tensor([[1.0, 1.0, 30.0, 1.0],
                          [float("nan"), 25.0, 30.0, 1.0],
                          [1.0, 25.0, 1.0, 1.0],     # run 2's streak breaks here (a spike is not divergence)
                          [1.0, 25.0, 30.0, float("inf")]])
    assert scan(chunk).tolist() == [1, 3, -1, 3]
    scan = rule.scanner(torch.tensor([2.0]))
    assert scan(torch.tensor([[21.0], [21.0]])).tolist() == [-1]
    assert scan(torch.tensor([[21.0]])).tolist() == [0]            # the streak carries over chunks
    assert rule.epoch_end_diverged(float("nan"), 2.0) and rule.epoch_end_diverged(25.0, 2.0)
    assert not rule.epoch_end_diverged(3.0, 2.0)
    with pytest.raises(InvalidValue):
        DivergenceRule(factor=0.5)


@pytest.mark.parametrize("trainer", ["sequential", "stacked"])
def test_a_finite_explosion_is_divergence(data, tmp_path, trainer):
    """A run whose loss stays far above its start (Lion at a huge rate: its sign steps blow the
    logits up, finitely) is marked diverged (here with a strict rule), not 'done'."""
    result = train(config(optimizers=["lion:lr=0.5", "adam:lr=0.003"], epochs=2, trainer=trainer,
                          divergence_factor=1.5, divergence_patience=2, check_every=2), tmp_path / "run", data=data)
    assert result.status == {"lion-s0": "diverged", "adam-s0": "done"}
    events = [r for r in RunDir.open(tmp_path / "run").records("event") if r.get("event") == "diverged"]
    assert "above 1.5x the initial loss for 2 steps" in events[0]["message"]
    losses = [v for r in RunDir.open(tmp_path / "run").records("steps") if r["run"] == "lion-s0" for v in r["loss"]]
    assert all(v is not None and math.isfinite(v) for v in losses)   # finite, yet diverged


def test_a_diverging_member_leaves_the_others_as_without_it(data, tmp_path):
    train(config(optimizers=["sgd:lr=1e12", "adam:lr=0.003", "momentum:lr=0.05"], epochs=3, dtype="float64",
                 check_every=2, seeds=[0, 1]), tmp_path / "with", data=data)
    train(config(optimizers=["adam:lr=0.003", "momentum:lr=0.05"], epochs=3, dtype="float64", seeds=[0, 1]),
          tmp_path / "without", data=data)
    state = RunDir.open(tmp_path / "with").read_state()["runs"]
    assert state["sgd-s0"]["status"] == state["sgd-s1"]["status"] == "diverged"
    assert all(state[f"{k}-s{s}"]["status"] == "done" for k in ("adam", "momentum") for s in (0, 1))
    assert_same_losses(tmp_path / "without", tmp_path / "with", 1e-11)   # adam's and momentum's, bit for bit-ish


# ---------------------------------------------------------------- another device (--device cuda)


def fake_gpu():
    """A stand-in for a GPU on any machine: torch's fake tensors on "cuda" hold no data but
    refuse to mix devices in one operation, as a real GPU does."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode(allow_non_fake_inputs=True)


def test_the_divergence_check_takes_losses_from_the_training_device():
    scan = DivergenceRule(patience=2).scanner(torch.tensor([2.3, 2.3]))
    with fake_gpu():
        first = scan(torch.ones(3, 2, device="cuda"))   # the losses of three steps, on the GPU
    assert first.device.type == "cpu" and first.shape == (2,)


def test_a_stack_on_the_gpu_hands_its_results_to_the_cpu(data):
    """Evaluations and snapshots of a stack on the GPU come back to the CPU (where the records
    are written), and a frozen member's mask is where the gradients are."""
    c = config(seeds=[0, 1], device="cuda")
    with fake_gpu():
        trainer = train_mod._StackedTrainer(c, None, data, None, False, None)
        runs = []
        for spec in c.runs():
            run = train_mod._Trainer.build(trainer, spec)
            run.model = build_model(c.model, seed=spec.seed)  # on the CPU: the stack copies it to the GPU
            runs.append(run)
        stack = train_mod._Stack(trainer, runs, runs)
        assert stack.net.params[0].device.type == "cuda"
        loss, acc = trainer._eval_all(stack, trainer.val_x, trainer.val_y)
        weights, val = trainer._snapshot(stack)
        stack.freeze(1, 0)
        grads = [torch.ones_like(p).view(2, 2, -1) for p in stack.net.params]
        stack.zero_frozen_grads(grads)
    assert [t.device.type for t in (loss, acc, weights, val)] == ["cpu"] * 4
    assert weights.shape == (2, 2, 101770) and weights.dtype == torch.float32
    assert grads[0].device.type == "cuda"


# ---------------------------------------------------------------- memory, interrupts, snapshots


def test_memory_is_estimated_before_anything_is_written(data, tmp_path, monkeypatch):
    import optviz.memory as memory

    monkeypatch.setattr(memory, "default_memory_budget", lambda: 10_000_000)   # 10 MB
    with pytest.raises(OptvizError, match="stacked model needs about .* of memory"):
        train(config(optimizers=[f"sgd:lr={0.01 * (i + 1)}" for i in range(40)]), tmp_path / "big", data=data)
    assert not (tmp_path / "big").exists()


def test_resume_when_runs_stopped_at_different_epochs(data, tmp_path):
    """Ctrl-C while the epoch's checkpoints are written: one run is an epoch ahead. The resumed
    stack trains the other alone (a frozen stand-in fills its grid) and ends bit for bit as a
    run that never stopped."""
    cfg = dict(optimizers=["momentum:lr=0.05", "adam:lr=0.003"], epochs=3, seeds=[0], snapshots="dense",
               snapshot_every=3, snapshot_dtype="float32")
    train(config(**cfg), tmp_path / "straight", data=data)

    def stop(kind, info):
        if kind == "epoch" and info["run"] == "momentum-s0" and info["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(config(**cfg), tmp_path / "stopped", data=data, callback=stop)
    run = RunDir.open(tmp_path / "stopped")
    assert run.load_checkpoint("momentum-s0")["epoch"] == 2 and run.load_checkpoint("adam-s0")["epoch"] == 1
    resume(tmp_path / "stopped", data=data)
    a, b = RunDir.open(tmp_path / "straight"), run
    for label in ("momentum-s0", "adam-s0"):
        ca, cb = a.load_checkpoint(label), b.load_checkpoint(label)
        assert all(torch.equal(ca["model"][k], cb["model"][k]) for k in ca["model"]), label
    sa, sb = load_snapshots(a.path), load_snapshots(b.path)
    assert all(torch.equal(sa[k].weights, sb[k].weights) for k in sa)


def test_snapshots_and_checkpoints_of_members(data, tmp_path):
    result = train(config(epochs=2, snapshots="dense", snapshot_every=4, snapshot_dtype="float32"),
                   tmp_path / "run", data=data)
    run = RunDir.open(result.run_dir)
    snaps = load_snapshots(run.path)
    assert snaps["adam-s0"].steps.tolist() == [0, 4, 8, 12, 16]
    final = run.load_checkpoint("adam-s0")
    model = snaps["adam-s0"].load_into(build_model("mlp"), -1)
    assert all(torch.equal(model.state_dict()[k], final["model"][k]) for k in final["model"])
    assert set(final["optimizer"]["state"][0]) >= {"exp_avg", "exp_avg_sq", "step"}
    assert final["optimizer"]["param_groups"][0]["lr"] == 0.003


@pytest.mark.slow
def test_compiled_updates_in_the_stack(data, tmp_path):
    """compile=True: every group's step is one torch.compile'd function (the rate a tensor input,
    so the cosine schedule and per-setting rates never recompile); the numbers are the eager
    ones up to rounding."""
    from optviz.optim.compiled import available

    if not available("cpu")[0]:
        pytest.skip("no C++ compiler for torch.compile")
    opts = ["adam:lr=0.003", "adam:lr=0.01", "adam:lr=0.001"]
    cfg = dict(optimizers=opts, epochs=2, seeds=[0, 1], schedule="cosine")
    train(config(compile=False, **cfg), tmp_path / "eager", data=data)
    seen = []
    real = train_mod._Stack.__init__

    def spy(self, *args, **kw):
        real(self, *args, **kw)
        seen.append(self)

    train_mod._Stack.__init__ = spy
    try:
        train(config(compile=True, **cfg), tmp_path / "compiled", data=data)
    finally:
        train_mod._Stack.__init__ = real
    (group,) = seen[-1].groups
    assert group.compiled is not None and group.compiled.is_compiled, group.compiled.reason
    assert_same_losses(tmp_path / "eager", tmp_path / "compiled", 2e-4)
    with pytest.raises(OptvizError, match="invalid compile"):
        config(compile="sometimes").validate()


def test_a_key_given_twice_is_refused_by_every_front_end():
    from optviz.optim import registry

    with pytest.raises(OptvizError, match="'lr' is given twice"):
        registry.parse_spec("adam:lr=0.1,lr=0.2")
    with pytest.raises(OptvizError, match="given twice"):
        config(optimizers=["adam:lr=0.1,lr=0.2"]).validate()
