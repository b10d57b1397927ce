"""Sharpness along MNIST runs, the replayed preconditioners, and the second-order comparison,
on tiny synthetic data (the real runs are in the gallery and in benchmarks/sharpness.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from optviz.analysis._threads import torch_threads
from optviz.analysis.hessian import LossCurvature, power_iteration
from optviz.analysis.replay import ReplayMismatch, replay_preconditioners
from optviz.analysis.second_order import ComparisonResult, compare_second_order, parse_method, state_floats
from optviz.analysis.sharpness import SharpnessResult, run_sharpness
from optviz.cli import main
from optviz.errors import InvalidValue, OptvizError, UnknownName
from optviz.mnist.models import build_model
from optviz.mnist.results import load_snapshots
from optviz.mnist.train import TrainConfig, train
from optviz.views.curvature import sharpness_figure
from optviz.views.save import overflow
from optviz.views.second_order import second_order_figure

from test_mnist_train import N_VAL, synthetic_data

# tests/conftest.py: no network, a private data folder, one torch thread
pytestmark = pytest.mark.usefixtures("isolated", "one_thread")


@pytest.fixture(scope="module")
def data():
    return synthetic_data()


@pytest.fixture(scope="module")
def run_dir(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("sharp") / "run"
    # dense float32 snapshots of the sequential trainer: a run whose replay is exact
    config = TrainConfig(optimizers=["sgd:lr=0.05", "momentum:lr=0.02", "adam:lr=0.003"], epochs=2, batch_size=32,
                         seeds=[0], snapshots="dense", snapshot_every=3, snapshot_dtype="float32",
                         trainer="sequential", snapshot_val_size=32, val_size=N_VAL)
    train(config, out, data=data)
    return out


@pytest.fixture(scope="module")
def result(run_dir, data):
    return run_sharpness(run_dir, images=64, max_points=3, tol=1e-2, data=data, cache=False)


def test_sharpness_at_every_snapshot_with_limits_and_preconditioner(run_dir, data, result):
    res = result
    assert [c.run for c in res.curves] == ["sgd-s0", "momentum-s0", "adam-s0"]
    sgd, mom, adam = res.curves
    assert len(sgd.steps) == 3 and sgd.steps[0] == 0 and sgd.steps[-1] == 16      # 2 epochs of 8 steps
    assert sgd.limit.value == pytest.approx(2 / 0.05) and mom.limit.value == pytest.approx(2 * 1.9 / 0.02)
    assert adam.limit.preconditioned and adam.limit.value == pytest.approx(38 / 0.003)
    assert sgd.preconditioned is None and np.isnan(adam.preconditioned[0]) and np.isfinite(adam.preconditioned[1:]).all()
    # independent check of one value: power iteration on the same snapshot and images
    snaps = load_snapshots(run_dir)
    k = int(np.nonzero(snaps["sgd-s0"].steps.numpy() == sgd.steps[1])[0][0])
    curv = LossCurvature(build_model("mlp"), data.train[0][:64], data.train[1][:64], snaps["sgd-s0"].weights[k])
    assert sgd.sharpness[1] == pytest.approx(power_iteration(curv.hvp, curv.dim, tol=1e-5, max_iter=400,
                                                             like=curv.w).value, rel=1e-2)
    assert sgd.loss[1] == pytest.approx(curv.value(), rel=1e-5)
    assert res.seconds_per_eigenvalue > 0 and res.products_per_eigenvalue >= 2 and res.eigenvalues == 9
    d = res.to_dict()
    assert d["hessian_memory"]["entries"] == 101_770 ** 2


def test_sharpness_is_cached_and_json_round_trips(run_dir, data, tmp_path):
    first = run_sharpness(run_dir, images=32, max_points=2, tol=1e-2, runs=["sgd-s0"], data=data)
    again = run_sharpness(run_dir, images=32, max_points=2, tol=1e-2, runs=["sgd-s0"], data=data)
    assert again.from_cache and not first.from_cache
    np.testing.assert_array_equal(again.curves[0].sharpness, first.curves[0].sharpness)
    path = first.save(tmp_path / "s.json")
    back = SharpnessResult.load(path)
    assert back.curves[0].limit == first.curves[0].limit
    np.testing.assert_array_equal(back.curves[0].steps, first.curves[0].steps)


def test_replay_reproduces_the_run_and_refuses_when_it_does_not(run_dir, data):
    snaps = load_snapshots(run_dir)["adam-s0"]
    steps = snaps.steps.tolist()
    rep = replay_preconditioners(run_dir, snaps, steps, data=data)
    assert rep.max_drift == 0.0 and set(rep.preconditioners) == set(steps)
    assert rep.preconditioners[0] is None and rep.preconditioners[steps[-1]].shape == (101_770,)
    # the final state must also match the run's own checkpoint
    ckpt = torch.load(run_dir / "checkpoints" / "adam-s0.pt", weights_only=False)
    v_ckpt = ckpt["optimizer"]["state"][0]["exp_avg_sq"].reshape(-1)
    step = int(ckpt["step"])
    v_from_p = ((rep.preconditioners[step][:v_ckpt.numel()] / (1 - 0.9 ** step) - 1e-8) ** 2) * (1 - 0.999 ** step)
    torch.testing.assert_close(v_from_p, v_ckpt.float(), rtol=1e-3, atol=1e-10)
    other = synthetic_data()
    shuffled = type(other)(train=(other.train[0].flip(0), other.train[1].flip(0)), val=other.val, test=other.test)
    with pytest.raises(ReplayMismatch, match="does not reproduce"):
        replay_preconditioners(run_dir, snaps, steps, data=shuffled)
    with pytest.raises(OptvizError, match="no preconditioner"):
        replay_preconditioners(run_dir, load_snapshots(run_dir)["sgd-s0"], steps, data=data)


def test_replay_trains_on_the_threads_of_its_run(run_dir, data):
    """The sequential trainer trained on one thread (num_threads unset); another thread count
    sums the GEMMs in another order, so the replay must not take the caller's."""
    snaps = load_snapshots(run_dir)["adam-s0"]
    with torch_threads(2):
        rep = replay_preconditioners(run_dir, snaps, snaps.steps.tolist(), data=data)
        assert rep.max_drift == 0.0 and torch.get_num_threads() == 2


def test_sharpness_figure(result):
    res = result
    for style in ("paper", "slides"):
        fig = sharpness_figure(res, style)
        assert len([a for a in fig.axes if a.get_visible()]) == 3 and overflow(fig) < 0.02
    assert "s and" in fig.texts[0].get_text() or fig._suptitle.get_text().startswith("Sharpness")


def test_torch_threads_sets_and_restores_the_count():
    with torch_threads(2):
        assert torch.get_num_threads() == 2
        with torch_threads(None):
            assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1        # the one_thread fixture's


def test_sharpness_bad_input(run_dir, tmp_path):
    with pytest.raises(InvalidValue):
        run_sharpness(run_dir, images=0)
    with pytest.raises(UnknownName):
        run_sharpness(run_dir, method="arnoldi")
    with pytest.raises(UnknownName):
        run_sharpness(run_dir, runs=["nope-s0"])
    with pytest.raises(OptvizError):
        run_sharpness(tmp_path / "not-a-run")


def test_second_order_comparison_counts_work_and_round_trips(data, tmp_path):
    res = compare_second_order(["sgd:lr=0.05", "lbfgs:history=5,iters=2", "newton_cg:batch=0,curvature_batch=64,cg_iters=5"],
                               budget=0.6, data=data, val_images=64, evals=4)
    sgd, lbfgs, hf = res.traces
    assert res.train_images == 256 and res.num_params == 101_770
    for t in res.traces:
        assert t.status == "done" and t.seconds[0] == 0.0 and t.seconds[-1] >= 0.6
        assert np.all(np.diff(t.seconds) > 0) and np.all(np.diff(t.passes) >= 0)
        assert len(t.val_acc) == len(t.seconds) >= 2
    assert sgd.products[-1] == 0 and sgd.gradients[-1] == pytest.approx(32 * sgd.steps[-1] / 256)
    assert lbfgs.gradients[-1] >= lbfgs.steps[-1] and lbfgs.products[-1] == 0       # full batch, >= 1 eval a step
    assert hf.products[-1] > 0 and hf.gradients[-1] == pytest.approx(hf.steps[-1])  # one gradient pass a step
    assert lbfgs.state_floats == 13 * 101_770 and sgd.state_floats == 0
    back = ComparisonResult.load(res.save(tmp_path / "r.json"))
    assert [t.label for t in back.traces] == [t.label for t in res.traces]
    assert back.traces[2].val_acc == res.traces[2].val_acc
    fig = second_order_figure(back, "slides")
    assert overflow(fig) < 0.02


def test_second_order_specs():
    assert parse_method("lbfgs")[2] == "L-BFGS (m=20, full batch)"
    name, opts, label = parse_method("newton_cg:cg_iters=10,curvature=hessian,batch=5000")
    assert opts["cg_iters"] == 10 and opts["curvature"] == "hessian" and "Hessian" in label and "5,000" in label
    assert parse_method("adam:lr=0.001,batch=128")[1] == {"hyper": {"lr": 0.001}, "batch": 128}
    for bad, match in (("lbfgs:foo=1", "no option"), ("newton_cg:curvature=fisher", "curvature"),
                       ("lbfgs:history=0", "history"), ("adam:batch=-1", "batch"), ("nope", "optimizer"),
                       ("lbfgs:history", "malformed")):
        with pytest.raises(OptvizError, match=match):
            parse_method(bad)
    with pytest.raises(InvalidValue):
        compare_second_order(["sgd"], budget=0)


@pytest.mark.parametrize("spec, buffers", [("nesterov_lookahead", 1), ("rmsprop:centered=true", 2),
                                           ("rmsprop:momentum=0.9", 2), ("rmsprop", 1), ("sgd", 0),
                                           ("sgd:momentum=0.9", 1), ("adam:amsgrad=true", 3)])
def test_second_order_memory_counts_the_buffers_the_optimizer_keeps(spec, buffers):
    name, options, _ = parse_method(spec)
    assert state_floats(name, options, 10) == 10 * buffers
@pytest.mark.parametrize("spec", ["adam:lr=0.1,lr=0.2", "lbfgs:history=10,history=20",
                                  "newton_cg:batch=100,batch=200"])
def test_second_order_specs_refuse_a_key_given_twice(spec):
    with pytest.raises(InvalidValue, match="given twice"):
        parse_method(spec)


# ---------------------------------------------------------------------- the CLI


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_sharpness_and_second_order(data_dir, tmp_path):
    run = tmp_path / "run"
    r = invoke("mnist", "--preset", "quick", "--data-dir", data_dir, "--val-size", N_VAL, "--epochs", 1,
               "--opt", "sgd:lr=0.05", "--opt", "adam:lr=0.003", "--snapshot-every", 4, "--no-figures", "-q", "-o", run)
    assert r.exit_code == 0, r.output
    r = invoke("sharpness", run, "--images", 32, "--max-points", 2, "--tol", 0.01, "--runs", "adam-s0",
               "--data-dir", data_dir, "-o", tmp_path / "s.png")
    assert r.exit_code == 0, r.output
    assert "Hessian-vector products each" in r.output and "(41.43 GB in float32)" in r.output
    assert (tmp_path / "s.png").is_file() and json.loads((tmp_path / "s.json").read_text())["curves"]
    r = invoke("second-order", "--data-dir", data_dir, "--val-size", N_VAL, "--budget", 0.3, "--evals", 2, "--val-images", 32,
               "--opt", "sgd:lr=0.05", "--opt", "lbfgs:iters=2", "-o", tmp_path / "so.png")
    assert r.exit_code == 0, r.output
    assert "full Hessian: 101,770^2 = 10,357,132,900 entries = 41.43 GB" in r.output
    r = invoke("second-order", "--from", tmp_path / "so.json", "--style", "dark", "-o", tmp_path / "so2.png")
    assert r.exit_code == 0 and (tmp_path / "so2.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["sharpness", "{tmp}/missing", "-o", "{tmp}/x.png"], ""),
    (["sharpness", "{tmp}", "--tol", "2", "-o", "{tmp}/x.png"], "--tol"),
    (["sharpness", "{tmp}", "-o", "{tmp}/x.gif"], "unsupported extension"),
    (["second-order", "--opt", "lbfgs:wat=1", "-o", "{tmp}/x.png"], "no option 'wat'"),
    (["second-order", "--budget", "-1", "-o", "{tmp}/x.png"], "--budget"),
    (["second-order", "--from", "{tmp}/nope.json", "-o", "{tmp}/x.png"], "cannot read"),
])
def test_cli_bad_input_is_one_line(tmp_path, args, message):
    r = invoke(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], r.output
    assert not (tmp_path / "x.png").exists()
