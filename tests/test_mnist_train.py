"""The MNIST trainer: protocol, records, snapshots, resume, divergence, parity with torch.optim.

Tiny synthetic digits (class prototypes plus noise, so that the networks learn
something but not everything) keep each training run to a fraction of a second;
one test goes through the real loading path (IDX files written here), and one
trains on the real files when ``shared/datasets/mnist`` is present.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from optviz.errors import InvalidValue, OptvizError, UnknownName
from optviz.mnist import dataset as ds
from optviz.mnist import sources
from optviz.mnist import train as train_mod
from optviz.mnist.dataset import MNISTData
from optviz.mnist.models import build_model, num_parameters
from optviz.mnist.presets import LECTURE_OPTIMIZERS, preset_config
from optviz.mnist.report import FIGURES, write_report
from optviz.mnist.results import RunDir, load_snapshots
from optviz.mnist.train import (TrainConfig, TrainingInterrupted, make_schedule, parse_seeds, resume,
                                train)
from optviz.optim import schedules

pytestmark = pytest.mark.usefixtures("isolated")  # tests/conftest.py: no network, private data folder

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"
N_TRAIN, N_VAL, N_TEST = 320, 64, 64  # 256 training images: 8 steps of 32 per epoch


# ---------------------------------------------------------------- synthetic digits


def synthetic_arrays(n: int, seed: int = 0, proto_seed: int = 123):
    """uint8 images (n, 28, 28): one random prototype per class, plus heavy noise; labels (n,)."""
    rng = np.random.default_rng(seed)
    protos = np.random.default_rng(proto_seed).integers(0, 2, (10, 28, 28)) * 200
    labels = rng.integers(0, 10, n)
    images = np.clip(protos[labels] * 0.35 + rng.integers(0, 170, (n, 28, 28)), 0, 255).astype(np.uint8)
    return images, labels.astype(np.uint8)


def synthetic_digits(n: int, seed: int = 0, proto_seed: int = 123):
    """:func:`synthetic_arrays` as tensors, for ``MNISTData.from_tensors``."""
    images, labels = synthetic_arrays(n, seed, proto_seed)
    return torch.from_numpy(images), torch.from_numpy(labels)


def synthetic_data(val_size: int = N_VAL) -> MNISTData:
    xtr, ytr = synthetic_arrays(N_TRAIN, 0)
    xte, yte = synthetic_arrays(N_TEST, 1)
    return MNISTData.from_tensors(torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(xte),
                                  torch.from_numpy(yte), val_size=val_size)


def write_idx_dataset(monkeypatch, folder: Path) -> Path:
    """Write synthetic IDX files into ``folder`` and switch the 'mnist' spec to their checksums."""
    xtr, ytr = synthetic_arrays(N_TRAIN, 0)
    xte, yte = synthetic_arrays(N_TEST, 1)
    raw = {
        "train-images-idx3-ubyte": struct.pack(">4I", 2051, N_TRAIN, 28, 28) + xtr.tobytes(),
        "train-labels-idx1-ubyte": struct.pack(">2I", 2049, N_TRAIN) + ytr.tobytes(),
        "t10k-images-idx3-ubyte": struct.pack(">4I", 2051, N_TEST, 28, 28) + xte.tobytes(),
        "t10k-labels-idx1-ubyte": struct.pack(">2I", 2049, N_TEST) + yte.tobytes(),
    }
    base = sources.DATASETS["mnist"]
    files = tuple(dataclasses.replace(f, count=N_TRAIN if f.name.startswith("train") else N_TEST,
                                      sha256=hashlib.sha256(raw[f.name]).hexdigest(),
                                      gz_md5=hashlib.md5(gzip.compress(raw[f.name], mtime=0)).hexdigest())
                  for f in base.files)
    monkeypatch.setitem(sources.DATASETS, "mnist", dataclasses.replace(base, files=files))
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in raw.items():
        (folder / name).write_bytes(data)
    return folder





@pytest.fixture(scope="module")
def data() -> MNISTData:
    return synthetic_data()


def config(**kw) -> TrainConfig:
    base = dict(optimizers=["sgd:lr=0.05", "adam:lr=0.003"], epochs=2, batch_size=32, seeds=[0],
                snapshots="dense", snapshot_every=3, snapshot_dtype="float32", snapshot_val_size=32, val_size=N_VAL)
    base.update(kw)
    return TrainConfig(**base)


def step_losses(run_dir, run: str) -> list:
    out = []
    for r in RunDir.open(run_dir).records("steps"):
        if r["run"] == run:
            out += r["loss"]
    return out


def without_times(records):
    drop = {"epoch_time", "train_time", "wall_time"}
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


# ---------------------------------------------------------------- configuration


def test_lecture_preset_is_the_notebook_protocol():
    c = preset_config("lecture").validate()
    assert (c.model, c.batch_size, c.epochs, c.val_size, c.seeds) == ("mlp", 32, 15, 10000, [0])
    entries = {e.optimizer: e.hyper for e in c.entries()}
    assert entries == {"sgd": {"lr": 0.01}, "momentum": {"lr": 0.01, "momentum": 0.9},
                       "nesterov": {"lr": 0.01, "momentum": 0.9}, "adagrad": {"lr": 0.01}, "adam": {"lr": 0.001}}
    assert [e.key for e in c.entries()] == ["sgd", "momentum", "nesterov", "adagrad", "adam"]
    assert c.snapshot_every == 50 and TrainConfig().optimizers == list(LECTURE_OPTIMIZERS)
    quick = preset_config("quick", epochs=2, seeds=None).validate()
    assert quick.epochs == 2 and quick.subset and quick.seeds == [0]
    with pytest.raises(UnknownName, match="unknown preset 'huge'"):
        preset_config("huge")


def test_entries_seeds_and_validation():
    c = TrainConfig(optimizers=["adam:lr=0.01", "adam:lr=0.001", "torch:sgd:lr=0.1", "sgd:clip_norm=1"],
                    reference=True, weight_decay=1e-4, seeds="2").validate()
    keys = [e.key for e in c.entries()]
    assert keys == ["adam-lr0.01", "adam-torch-lr0.01", "adam-lr0.001", "adam-torch-lr0.001", "sgd-torch-lr0.1",
                    "sgd", "sgd-torch-lr0.001-clip1"]
    twice = TrainConfig(optimizers=["sgd", "sgd:lr=0.001"]).entries()  # the same setting twice
    assert [e.key for e in twice] == ["sgd-1", "sgd-2"]
    assert all(e.hyper.get("weight_decay") == 1e-4 for e in c.entries())
    clipped = [e for e in c.entries() if e.clip_norm == 1]
    assert clipped and "clip_norm" not in clipped[0].hyper
    assert [r.label for r in c.runs()][:2] == [f"{keys[0]}-s0", f"{keys[1]}-s0"] and len(c.runs()) == 2 * len(keys)
    assert "torch.optim" in next(e.label for e in c.entries() if e.backend == "torch")

    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("0,4,7") == [0, 4, 7] and parse_seeds("5,") == [5]
    assert parse_seeds(2) == [0, 1] and parse_seeds([3]) == [3]
    for bad in ("0", "a,b", "1,1", -1, [], [-2]):
        with pytest.raises(InvalidValue):
            parse_seeds(bad)
    for kw, match in [({"optimizers": ["bogus"]}, "unknown optimizer"), ({"model": "resnet"}, "unknown model"),
                      ({"batch_size": 0}, "batch_size"), ({"batch_size": -3}, "batch_size"),
                      ({"epochs": 0}, "epochs"), ({"schedule": "cyclic"}, "unknown schedule"),
                      ({"optimizers": ["adam:lr=-1"]}, "lr"), ({"optimizers": []}, "no optimizers"),
                      ({"clip_norm": 0.0}, "clip_norm"), ({"optimizers": ["torch:lion"]}, "no torch.optim"),
                      ({"dataset": "cifar"}, "unknown dataset")]:
        with pytest.raises(OptvizError, match=match):
            TrainConfig(**kw).validate()


def test_the_device_is_checked_wherever_a_comparison_starts(data, tmp_path):
    """train(), resume() and a study refuse a device that cannot be there in one line, before any
    data are read; a study checks only the name (a Ray driver may have no GPU, its workers may)."""
    from optviz.study.spec import StudySpec

    with pytest.raises(InvalidValue, match="unknown device 'gpu'"):
        TrainConfig(device="gpu").validate()
    with pytest.raises(InvalidValue, match="unknown device 'gpu'"):
        train(TrainConfig(device="gpu", data_dir=str(tmp_path / "no-data")), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert TrainConfig(device=" CPU ").validate().device == "cpu"
    with pytest.raises(InvalidValue, match="unknown device 'gpu'"):
        StudySpec(optimizers=["sgd"], train={"device": "gpu"}).validate()
    StudySpec(optimizers=["sgd"], train={"device": "cuda:99"}).validate()   # its shards check where they run
    with pytest.raises(InvalidValue, match="'cuda:99' is not available|'cuda:99' does not exist"):
        TrainConfig(device="cuda:99").validate()
    train(TrainConfig(optimizers=["sgd"], epochs=1, val_size=N_VAL, snapshots="none"), tmp_path / "moved",
          data=data)
    RunDir.open(tmp_path / "moved").update_config(device="cuda:99")   # trained on a GPU machine
    with pytest.raises(InvalidValue, match="'cuda:99'"):
        resume(tmp_path / "moved", data=data)


def test_schedules():
    for kind in ("cosine", "step", "warmup_cosine", "one_cycle"):
        f = make_schedule(kind, 0.1, 3, 10)
        values = [f(s) for s in range(30)]
        assert all(0 <= v <= 0.1 + 1e-12 for v in values) and len(set(values)) > 2
    assert make_schedule("constant", 0.1, 3, 10) is None
    assert make_schedule("step", 0.1, 3, 10)(10) == pytest.approx(0.01)


# ---------------------------------------------------------------- the protocol


def test_real_loading_path_from_idx_files(monkeypatch, tmp_path):
    """No ``data=``: the trainer loads the files through MNISTData.load, as the CLI does."""
    src = write_idx_dataset(monkeypatch, tmp_path / "src")
    sources.ensure_dataset("mnist", tmp_path / "data", source=src)
    result = train(config(data_dir=str(tmp_path / "data"), epochs=1), tmp_path / "run")
    saved = RunDir.open(tmp_path / "run").config()
    assert saved["sizes"] == {"train": N_TRAIN - N_VAL, "val": N_VAL, "test": N_TEST}
    assert saved["steps_per_epoch"] == 8 and saved["kind"] == "optviz-mnist-run"
    assert result.status == {"sgd-s0": "done", "adam-s0": "done"}
    # the very same tensors as loading by hand
    direct = synthetic_data()
    assert torch.equal(MNISTData.load("mnist", tmp_path / "data", val_size=N_VAL).val[0], direct.val[0])


def test_same_initial_weights_and_batch_order(data, tmp_path, monkeypatch):
    # the trainer's batches are iterate_batches' (the documented seeded order), gathered faster
    x, y = data.train
    for (xa, ya), (xb, yb) in zip(ds.iterate_batches(x, y, 32, seed=3, epoch=2),
                                  train_mod.epoch_batches(x, y, 32, seed=3, epoch=2), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)

    calls = []
    real = train_mod.epoch_batches

    def recording(x, y, batch_size, seed, epoch):
        batches = list(real(x, y, batch_size, seed=seed, epoch=epoch))
        calls.append((seed, epoch, torch.cat([b[1] for b in batches])))
        return iter(batches)

    monkeypatch.setattr(train_mod, "epoch_batches", recording)
    opts = ["sgd:lr=0.05", "momentum:lr=0.05", "adam:lr=0.003"]
    # the stacked trainer shares one batch per seed by construction (tests/test_stacked.py: same numbers)
    train(config(optimizers=opts, seeds=[0, 1], trainer="sequential"), tmp_path / "run", data=data)
    assert len(calls) == 3 * 2 * 2  # optimizers x seeds x epochs
    by_key = {}
    for seed, epoch, labels in calls:
        by_key.setdefault((seed, epoch), []).append(labels)
    for key, orders in by_key.items():
        assert all(torch.equal(o, orders[0]) for o in orders), key  # every optimizer, the same batches
    assert not torch.equal(by_key[(0, 0)][0], by_key[(0, 1)][0])  # a new order each epoch
    assert not torch.equal(by_key[(0, 0)][0], by_key[(1, 0)][0])  # and per seed

    snaps = load_snapshots(tmp_path / "run")
    for seed in (0, 1):
        first = [snaps[f"{k}-s{seed}"] for k in ("sgd", "momentum", "adam")]
        assert all(int(s.steps[0]) == 0 for s in first)
        assert all(torch.equal(s.weights[0], first[0].weights[0]) for s in first)  # same initial weights
        init = build_model("mlp", seed)
        assert torch.equal(first[0].weights[0], torch.nn.utils.parameters_to_vector(init.parameters()))
    assert not torch.equal(snaps["sgd-s0"].weights[0], snaps["sgd-s1"].weights[0])


def test_adapter_and_torch_optim_give_identical_losses(data, tmp_path):
    """The shared core behind TorchOptimizer and torch.optim, the same run in float64."""
    opts = list(LECTURE_OPTIMIZERS) + ["adam:lr=0.003,weight_decay=0.01", "sgd:lr=0.05,clip_norm=0.5"]
    train(config(optimizers=opts, reference=True, dtype="float64", snapshot_every=0), tmp_path / "run", data=data)
    cfg = RunDir.open(tmp_path / "run").config()
    pairs = [(e["key"], e["key"].replace(e["optimizer"], e["optimizer"] + "-torch", 1))
             for e in cfg["entries"] if e["backend"] == "optviz"]
    assert len(pairs) == 7
    for ours, theirs in pairs:
        a, b = step_losses(tmp_path / "run", f"{ours}-s0"), step_losses(tmp_path / "run", f"{theirs}-s0")
        assert len(a) == len(b) == 16
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, err_msg=ours)
    assert not (tmp_path / "run" / "snapshots").exists()


def test_records_csv_and_snapshots(data, tmp_path):
    result = train(config(epochs=2), tmp_path / "run", data=data)
    run = RunDir.open(tmp_path / "run")
    epochs = run.records("epoch")
    assert [(r["run"], r["epoch"]) for r in epochs] == [("sgd-s0", 0), ("adam-s0", 0), ("sgd-s0", 1),
                                                        ("adam-s0", 1), ("sgd-s0", 2), ("adam-s0", 2)]
    for r in epochs[2:]:
        assert 0 <= r["val_acc"] <= 1 and r["train_loss"] > 0 and r["wall_time"] >= r["train_time"] > 0
    assert epochs[-1]["val_acc"] > 0.3  # it learns (chance: 0.1)
    tests = run.records("test")
    assert {t["run"] for t in tests} == {"sgd-s0", "adam-s0"} and all(0 <= t["test_acc"] <= 1 for t in tests)
    steps_csv = run.steps_csv.read_text().splitlines()
    assert steps_csv[0] == "run,epoch,step,loss,lr,grad_norm" and len(steps_csv) == 1 + 2 * 16
    assert len(run.epochs_csv.read_text().splitlines()) == 1 + 6
    assert "| SGD (η=0.05) |" in run.summary_path.read_text() and result.markdown == run.summary_path.read_text()

    snaps = load_snapshots(tmp_path / "run")
    assert list(snaps) == ["sgd-s0", "adam-s0"]
    s = snaps["adam-s0"]
    P = num_parameters(build_model("mlp"))
    assert s.steps.dtype == torch.int64 and s.weights.dtype == torch.float32 and s.weights.shape == (7, P)
    assert s.steps.tolist() == [0, 3, 6, 9, 12, 15, 16]  # every 3rd step, and the final weights
    assert s.batch_loss.dtype == torch.float32 and s.val_loss.shape == (7,) and math.isnan(s.batch_loss[-1])
    losses = step_losses(tmp_path / "run", "adam-s0")  # update u has its loss at the weights after u - 1
    assert torch.allclose(s.batch_loss[:-1], torch.tensor([losses[k] for k in s.steps[:-1].tolist()]))
    assert s.val_size == 32 and s.model == "mlp" and s.optimizer == "adam" and s.status == "done"
    final = run.load_checkpoint("adam-s0")["model"]
    model = s.load_into(build_model("mlp"), -1)
    assert all(torch.equal(model.state_dict()[k], final[k]) for k in final)
    assert s.unflatten(-1)["1.weight"].shape == (128, 784)
    # the loss at a snapshot is the loss of those weights on the validation head
    val = train_mod.evaluate(s.load_into(build_model("mlp"), 2), data.val[0][:32], data.val[1][:32])[0]
    assert s.val_loss[2].item() == pytest.approx(val, rel=1e-5)


def test_schedule_clipping_and_weight_decay(data, tmp_path):
    train(config(optimizers=["sgd:lr=0.1", "torch:sgd:lr=0.1"], schedule="cosine", clip_norm=0.25,
                 weight_decay=1e-3, dtype="float64", snapshot_every=0), tmp_path / "run", data=data)
    run = RunDir.open(tmp_path / "run")
    assert [e["hyper"] for e in run.config()["entries"]] == [{"lr": 0.1, "weight_decay": 1e-3}] * 2
    steps = [r for r in run.records("steps") if r["run"] == "sgd-s0"]
    lrs = steps[0]["lr"] + steps[1]["lr"]
    cosine = schedules.cosine_decay(0.1, 16)
    assert lrs == pytest.approx([cosine(s) for s in range(16)])
    norms = steps[0]["grad_norm"] + steps[1]["grad_norm"]
    assert len(norms) == 16 and all(n > 0 for n in norms)
    np.testing.assert_allclose(step_losses(run.path, "sgd-s0"), step_losses(run.path, "sgd-torch-s0"), rtol=1e-12)


# ---------------------------------------------------------------- long runs


def test_divergence_is_marked_and_the_others_go_on(data, tmp_path):
    result = train(config(optimizers=["sgd:lr=1e12", "adam:lr=0.003"], epochs=3, check_every=2),
                   tmp_path / "run", data=data)
    assert result.status == {"sgd-s0": "diverged", "adam-s0": "done"}
    run = RunDir.open(tmp_path / "run")
    state = run.read_state()["runs"]
    assert state["sgd-s0"]["status"] == "diverged" and 0 <= state["sgd-s0"]["diverged_at"] < 8
    events = [r for r in run.records("event") if r.get("event") == "diverged"]
    assert [e["run"] for e in events] == ["sgd-s0"]
    assert [r["epoch"] for r in run.records("epoch") if r["run"] == "adam-s0"] == [0, 1, 2, 3]
    assert [r["epoch"] for r in run.records("epoch") if r["run"] == "sgd-s0"] == [0]
    sgd_losses = step_losses(run.path, "sgd-s0")
    assert sgd_losses[-1] is None and all(math.isfinite(v) for v in sgd_losses[:-1])  # JSON: NaN -> null
    assert "diverged at step" in run.summary_path.read_text()
    assert {t["run"] for t in run.records("test")} == {"adam-s0"}
    write_report(run.path)  # NaN-free figures from a diverged comparison


@pytest.mark.parametrize("trainer", ["sequential", "stacked"])
def test_ctrl_c_keeps_everything_so_far(data, tmp_path, trainer):
    def stop(kind, info):
        if kind == "step" and info["run"] == "adam-s0" and info["step"] == 12:  # mid epoch 2
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as exc:
        train(config(epochs=3, trainer=trainer), tmp_path / "run", data=data, callback=stop)
    assert isinstance(exc.value, KeyboardInterrupt) and exc.value.run_dir == tmp_path / "run"
    run = RunDir.open(tmp_path / "run")
    state = run.read_state()
    assert state["status"] == "interrupted" and state["wall_clock"] > 0
    partial = [r for r in run.records("steps") if r.get("partial")]
    if trainer == "sequential":  # runs take their epochs in turn: sgd had finished epoch 2
        assert {k: (v["status"], v["epoch"]) for k, v in state["runs"].items()} == {
            "sgd-s0": ("interrupted", 2), "adam-s0": ("interrupted", 1)}
        assert [(r["run"], r["epoch"]) for r in run.records("epoch")][-2:] == [("adam-s0", 1), ("sgd-s0", 2)]
        assert [(r["run"], r["epoch"], len(r["loss"])) for r in partial] == [("adam-s0", 2, 4)]  # updates 9..12
        assert run.load_checkpoint("adam-s0")["epoch"] == 1 and run.load_checkpoint("sgd-s0")["epoch"] == 2
    else:                        # runs step together: both are in epoch 2
        assert {k: (v["status"], v["epoch"]) for k, v in state["runs"].items()} == {
            "sgd-s0": ("interrupted", 1), "adam-s0": ("interrupted", 1)}
        assert sorted((r["run"], r["epoch"], len(r["loss"])) for r in partial) == [("adam-s0", 2, 4),
                                                                                   ("sgd-s0", 2, 4)]
        assert run.load_checkpoint("adam-s0")["epoch"] == run.load_checkpoint("sgd-s0")["epoch"] == 1
    assert "stopped after epoch" in run.summary_path.read_text()
    assert load_snapshots(run.path)["adam-s0"].steps.tolist() == [0, 3, 6, 9]
    paths = write_report(run.path)
    assert all(paths[name.removesuffix(".png")].is_file() for name in FIGURES)
    with pytest.raises(OptvizError, match="already holds a run"):
        train(config(), run.path, data=data)  # never overwritten

    # Ctrl-C while evaluating, too
    calls = []
    import optviz.mnist.train as tm

    owner, name = (tm, "evaluate") if trainer == "sequential" else (tm._StackedTrainer, "_eval_all")
    real = getattr(owner, name)

    def evaluate(*a, **kw):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*a, **kw)

    try:
        setattr(owner, name, evaluate)
        with pytest.raises(TrainingInterrupted):
            train(config(epochs=2, snapshot_every=0, trainer=trainer), tmp_path / "run2", data=data)
    finally:
        setattr(owner, name, real)
    assert RunDir.open(tmp_path / "run2").read_state()["status"] == "interrupted"


@pytest.mark.parametrize("trainer", ["sequential", "stacked"])
def test_resume_after_interrupt_is_bit_identical(data, tmp_path, trainer):
    cfg = dict(optimizers=["momentum:lr=0.05", "adam:lr=0.003", "adagrad:lr=0.05"], epochs=3, seeds=[0, 1],
               trainer=trainer)
    train(config(**cfg), tmp_path / "straight", data=data)

    def stop(kind, info):
        if kind == "step" and info["run"] == "adam-s1" and info["step"] == 13:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(config(**cfg), tmp_path / "stopped", data=data, callback=stop)
    with pytest.raises(OptvizError, match="not an optviz mnist run"):
        resume(tmp_path)
    result = resume(tmp_path / "stopped", data=data)
    assert set(result.status.values()) == {"done"}

    a, b = RunDir.open(tmp_path / "straight"), RunDir.open(tmp_path / "stopped")
    for label in (r["run"] for r in a.config()["runs"]):
        ca, cb = a.load_checkpoint(label), b.load_checkpoint(label)
        assert ca["step"] == cb["step"] == 24
        for k in ca["model"]:
            assert torch.equal(ca["model"][k], cb["model"][k]), label  # bit for bit
        assert step_losses(a.path, label) == step_losses(b.path, label)
    key = lambda r: (r["kind"], r.get("run"), r.get("epoch"))  # noqa: E731
    ra = sorted((r for r in without_times(a.records()) if r["kind"] != "event"), key=key)
    rb = sorted((r for r in without_times(b.records()) if r["kind"] != "event"), key=key)
    assert ra == rb
    sa, sb = load_snapshots(a.path), load_snapshots(b.path)
    for label in sa:
        assert torch.equal(sa[label].steps, sb[label].steps) and torch.equal(sa[label].weights, sb[label].weights)
    assert a.steps_csv.read_text() != "" and sorted(a.steps_csv.read_text().splitlines()) == \
        sorted(b.steps_csv.read_text().splitlines())


def test_resume_to_more_epochs_equals_a_longer_run(data, tmp_path):
    train(config(epochs=3), tmp_path / "long", data=data)
    train(config(epochs=2), tmp_path / "short", data=data)
    resume(tmp_path / "short", epochs=3, data=data)
    a, b = load_snapshots(tmp_path / "long"), load_snapshots(tmp_path / "short")
    for label in a:
        assert a[label].steps.tolist() == b[label].steps.tolist() == [0, 3, 6, 9, 12, 15, 18, 21, 24]
        assert torch.equal(a[label].weights, b[label].weights)
    assert RunDir.open(tmp_path / "short").config()["epochs"] == 3
    with pytest.raises(InvalidValue, match="already has more than 1"):
        resume(tmp_path / "short", epochs=1, data=data)


# ---------------------------------------------------------------- the real files


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared/datasets/mnist is not here")
def test_real_mnist_one_short_epoch(tmp_path):
    sources.ensure_dataset("mnist", tmp_path / "data", source=SHARED_MNIST)
    c = TrainConfig(optimizers=["sgd:lr=0.01", "adam:lr=0.001"], epochs=1, subset=3000, eval_subset=1000,
                    data_dir=str(tmp_path / "data"), snapshots="dense", snapshot_every=25)
    result = train(c, tmp_path / "run")
    acc = {r["run"]: r["val_acc"] for r in RunDir.open(result.run_dir).records("epoch") if r["epoch"] == 1}
    assert acc["adam-s0"] > 0.8 and acc["sgd-s0"] > 0.5  # 94 steps of the lecture's protocol
    assert RunDir.open(result.run_dir).config()["sizes"] == {"train": 3000, "val": 1000, "test": 1000}
    snaps = load_snapshots(result.run_dir)
    assert snaps["sgd-s0"].steps.tolist() == [0, 25, 50, 75, 94]
    assert json.loads((result.run_dir / "snapshots" / "sgd-s0" / "meta.json").read_text())["num_params"] == 101770
