"""Weight snapshots sized to what the landscape needs: the policy, the storage, the weighting.

The policy's steps are what it says; sparse snapshots with time weights give the plane
of dense ones (and without the weights they would not); float16 offsets are as exact as
stated; the landscape pipeline runs on sparse snapshots; resuming keeps the policy;
old (format 1) folders still read; damaged files give one clear line.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from optviz.cli import main
from optviz.errors import OptvizError
from optviz.landscape.plane import explained_shares, pca_plane
from optviz.mnist.config import TrainConfig
from optviz.mnist.results import RunDir, load_snapshots
from optviz.mnist.snapshots import SnapshotPolicy, read_chunk, step_weights, write_chunk
from optviz.mnist.train import TrainingInterrupted, resume, train

from test_mnist_train import N_VAL, synthetic_data

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture(scope="module")
def data():
    return synthetic_data()


def config(**kw) -> TrainConfig:
    base = dict(optimizers=["sgd:lr=0.05", "adam:lr=0.003"], epochs=2, batch_size=32, seeds=[0], val_size=N_VAL,
                snapshot_val_size=32)
    base.update(kw)
    return TrainConfig(**base)


# ---------------------------------------------------------------- the policy


def test_the_policies_take_the_steps_they_say():
    landscape = SnapshotPolicy("landscape")
    assert landscape.steps(100, 3).tolist() == [0, 1, 10, 50, 100, 150, 200, 250, 300]
    assert SnapshotPolicy("landscape", per_epoch=4, per_decade=2).steps(100, 1).tolist() == \
        [0, 1, 3, 10, 25, 32, 50, 75, 100]
    assert SnapshotPolicy("dense", every=30).steps(40, 2).tolist() == [0, 30, 60, 80]
    assert SnapshotPolicy("none").steps(100, 3).tolist() == []
    # the first epochs' steps do not depend on how many epochs there are in all
    long, short = landscape.steps(1563, 15), landscape.steps(1563, 2)
    assert long[long <= 2 * 1563].tolist() == short.tolist()
    assert len(long) == 36      # the lecture preset: 36 snapshots per run, not 470
    with pytest.raises(OptvizError, match="unknown snapshot policy 'sparse'"):
        SnapshotPolicy("sparse")
    with pytest.raises(OptvizError, match="per_epoch"):
        SnapshotPolicy("landscape", per_epoch=0)


def test_old_configs_keep_their_policy():
    old = TrainConfig.from_dict({"optimizers": ["sgd"], "snapshot_every": 50})     # optviz 0.1's config.json
    assert (old.snapshots, old.snapshot_dtype, old.trainer) == ("dense", "float32", "sequential")
    assert TrainConfig.from_dict({"optimizers": ["sgd"], "snapshot_every": 0}).snapshot_policy().kind == "none"
    assert TrainConfig(optimizers=["sgd"]).snapshot_policy().kind == "landscape"


def test_step_weights_are_the_spans_of_steps():
    np.testing.assert_allclose(step_weights([0, 10, 20, 30]), [0.5, 1, 1, 0.5] / np.mean([0.5, 1, 1, 0.5]))
    w = step_weights([0, 1, 10, 100, 1000])
    np.testing.assert_allclose(w / w[-1], [0.5, 5, 49.5, 495, 450] / np.float64(450))


def test_time_weights_make_sparse_snapshots_give_the_dense_plane():
    """A curved path sampled densely (evenly in steps) and sparsely (log-spaced early,
    two per epoch): with time weights the PCA shares agree; without them they do not."""
    g = torch.Generator().manual_seed(0)
    P, T = 200, 3000
    t = torch.arange(T + 1, dtype=torch.float64)
    a, b, c = (torch.randn(P, generator=g, dtype=torch.float64) for _ in range(3))
    path = (torch.outer(1 - torch.exp(-t / 300), a) + torch.outer(torch.sqrt(t / T), b)
            + 0.3 * torch.outer(torch.sin(t / 700), c)).float()                          # (T + 1, P)
    dense = np.arange(0, T + 1, 10)
    sparse = SnapshotPolicy("landscape").steps(1500, 2)
    ex_dense = pca_plane([path[dense]]).explained
    plane = pca_plane([path[sparse]], weights=[step_weights(sparse)])
    assert np.abs(plane.explained - ex_dense).max() < 0.01
    unweighted = pca_plane([path[sparse]])
    assert np.abs(unweighted.explained - ex_dense).max() > 3 * np.abs(plane.explained - ex_dense).max()
    np.testing.assert_allclose(explained_shares([path[sparse]], plane.origin, plane.directions,
                                                [step_weights(sparse)]), plane.explained, rtol=1e-6)


# ---------------------------------------------------------------- storage


def test_float16_offsets_are_as_exact_as_stated(tmp_path):
    g = torch.Generator().manual_seed(1)
    origin = (torch.randn(1000, generator=g) * 0.05).numpy()
    weights = origin[None] + (torch.randn(4, 1000, generator=g) * 0.3).numpy()
    weights[0] = origin
    write_chunk(tmp_path, 1, [0, 1, 2, 3], weights, [1.0] * 4, [2.0] * 4, "float16", origin)
    back = read_chunk(tmp_path / "epoch-0001.npz", origin)
    err = np.abs(back["weights"] - weights)
    assert np.all(err <= 2.0 ** -11 * np.abs(weights - origin) + 1e-7)
    assert np.array_equal(back["weights"][0], origin)          # the start is exact
    write_chunk(tmp_path, 2, [4], weights[:1], [0.0], [0.0], "float32")
    assert np.array_equal(read_chunk(tmp_path / "epoch-0002.npz", None)["weights"], weights[:1])


def test_landscape_policy_run_folder_and_landscape(data, tmp_path):
    from optviz.landscape import compute_landscape

    result = train(config(epochs=2), tmp_path / "run", data=data)
    snaps = load_snapshots(result.run_dir)
    assert snaps["adam-s0"].steps.tolist() == [0, 1, 4, 8, 10, 12, 16]      # 8 steps per epoch
    files = sorted(p.name for p in (tmp_path / "run" / "snapshots" / "adam-s0").iterdir())
    assert files == ["epoch-0001.npz", "epoch-0002.npz", "meta.json", "origin.npz"]
    model_final = RunDir.open(result.run_dir).load_checkpoint("adam-s0")["model"]
    flat = torch.cat([v.reshape(-1) for v in model_final.values()])
    w = snaps["adam-s0"].weights[-1]
    assert torch.all((w - flat).abs() <= 2.0 ** -11 * (flat - snaps["adam-s0"].weights[0]).abs() + 1e-7)
    land = compute_landscape(result.run_dir, grid=5, subset=32, data=data, cache=False)
    assert [len(p.steps) for p in land.paths] == [7, 7] and np.isfinite(land.loss).all()
    meta = json.loads((tmp_path / "run" / "snapshots" / "adam-s0" / "meta.json").read_text())
    assert meta["policy"]["kind"] == "landscape" and meta["dtype"] == "float16" and meta["format"] == 2


def test_resuming_keeps_the_policy(data, tmp_path):
    train(config(epochs=3), tmp_path / "straight", data=data)

    def stop(kind, info):
        if kind == "step" and info["step"] == 13:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(config(epochs=3), tmp_path / "stopped", data=data, callback=stop)
    resume(tmp_path / "stopped", data=data)
    train(config(epochs=2), tmp_path / "short", data=data)
    resume(tmp_path / "short", epochs=3, data=data)
    a = load_snapshots(tmp_path / "straight")
    for other in ("stopped", "short"):
        b = load_snapshots(tmp_path / other)
        for label in a:
            assert a[label].steps.tolist() == b[label].steps.tolist() == [0, 1, 4, 8, 10, 12, 16, 20, 24]
            assert torch.equal(a[label].weights, b[label].weights)


def test_old_format_folders_still_read(data, tmp_path):
    """A run folder of optviz 0.1: float32 weights in epoch-EEEE.pt, no origin."""
    result = train(config(epochs=1, snapshots="dense", snapshot_every=4, snapshot_dtype="float32"),
                   tmp_path / "run", data=data)
    new = load_snapshots(result.run_dir)["sgd-s0"]
    folder = tmp_path / "run" / "snapshots" / "sgd-s0"
    for f in folder.glob("*.npz"):
        f.unlink()
    torch.save({"steps": new.steps, "weights": new.weights, "batch_loss": new.batch_loss, "val_loss": new.val_loss},
               folder / "epoch-0001.pt")
    old = load_snapshots(result.run_dir)["sgd-s0"]
    assert torch.equal(old.weights, new.weights) and old.steps.tolist() == [0, 4, 8]


def test_damaged_snapshots_give_one_line(data, tmp_path):
    result = train(config(epochs=1), tmp_path / "run", data=data)
    f = tmp_path / "run" / "snapshots" / "adam-s0" / "epoch-0001.npz"
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    with pytest.raises(OptvizError, match="cannot read snapshot file .*epoch-0001.npz.*truncated or damaged"):
        load_snapshots(result.run_dir)
    (tmp_path / "run" / "snapshots" / "adam-s0" / "origin.npz").unlink()
    f.unlink()
    train_again = tmp_path / "run2"
    result2 = train(config(epochs=1), train_again, data=data)
    (train_again / "snapshots" / "sgd-s0" / "origin.npz").unlink()
    with pytest.raises(OptvizError, match="origin.npz' is missing"):
        load_snapshots(result2.run_dir)


def test_runs_du_and_the_size_printed_after_a_run(data, tmp_path):
    train(config(epochs=1), tmp_path / "run", data=data)
    out = CliRunner().invoke(main, ["runs", "du", str(tmp_path / "run")]).output
    lines = out.strip().splitlines()
    assert lines[0].split() == ["what", "files", "size", "share"]
    assert {line.split()[0] for line in lines[2:]} >= {"checkpoints", "snapshots", "metrics", "total"}
    bad = CliRunner().invoke(main, ["runs", "du", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "no run folder" in bad.output
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "Train time = seconds of a run's training steps" in summary and "wall-clock" in summary
