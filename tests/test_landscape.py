"""The loss landscape: planes, projection, batched grids against a plain loop, the pipeline, the CLI.

A tiny comparison (two optimizers, one epoch on synthetic digits) is trained once
with the real trainer, so the pipeline reads a real run folder; everything else
uses small random tensors. No MNIST files are needed.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from optviz.errors import OptvizError, UnknownName
from optviz.landscape import (GridTooLarge, PlaneEvaluator, compute_landscape, evaluate_weights,
                              filter_normalize, landscape_figures, lecture_animation, lecture_figure, loss_grid,
                              pca_plane, points_plane, pointwise_losses, random_plane)
from optviz.landscape.grid import estimate_memory, grid_axes, parse_bytes
from optviz.mnist.dataset import MNISTData
from optviz.mnist.models import build_model
from optviz.surfaces.field import GridField

from test_mnist_train import synthetic_digits

# ---------------------------------------------------------------- helpers


def flat(model) -> torch.Tensor:
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()


def shapes(model):
    return [tuple(p.shape) for p in model.parameters()]


@pytest.fixture(scope="module")
def data() -> MNISTData:
    xtr, ytr = synthetic_digits(456, 0)
    xte, yte = synthetic_digits(64, 1)
    return MNISTData.from_tensors(xtr, ytr, xte, yte, val_size=200)


@pytest.fixture(scope="module")
def xy(data):
    x, y = data.val
    return x[:48].float(), y[:48]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data) -> Path:
    """A real run folder: SGD and Adam, one epoch (8 steps), snapshots every 2 steps."""
    from optviz.mnist.train import TrainConfig, train

    path = tmp_path_factory.mktemp("runs") / "tiny"
    config = TrainConfig(optimizers=["sgd:lr=0.05", "adam:lr=0.003"], epochs=1, batch_size=32, val_size=200,
                         snapshots="dense", snapshot_every=2, snapshot_val_size=32, seeds=[0])
    train(config, path, data=data)
    return path


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst, ignore=shutil.ignore_patterns("landscape"))
    return dst


def low_rank_paths(P=300, seed=0):
    """Three paths that move mostly in a 2-D subspace, with a little noise."""
    g = torch.Generator().manual_seed(seed)
    o = torch.randn(P, generator=g)
    basis = torch.randn(2, P, generator=g)
    paths = []
    for k in range(3):
        t = torch.linspace(0, 1, 20)[:, None]
        coef = torch.cat([t * (k + 1), t ** 2 * (2 - k)], dim=1)
        paths.append(o + coef @ basis + 0.01 * torch.randn(20, P, generator=g))
    return paths


# ---------------------------------------------------------------- planes and projection


@pytest.mark.parametrize("kind", ["pca", "points", "random"])
def test_a_path_in_the_plane_projects_back_exactly(kind):
    paths = low_rank_paths()
    if kind == "pca":
        plane = pca_plane(paths)
    elif kind == "points":
        plane = points_plane(paths[0][0], paths[1][-1], paths[2][-1])
    else:
        plane = random_plane([(30, 10)], paths[0][-1], seed=1)
    ab = np.array([[0.0, 0.0], [0.3, -1.2], [2.5, 0.7], [-1.0, 3.0]])
    W = plane.points(ab)
    proj = plane.project(W)
    np.testing.assert_allclose(proj.xy, ab, atol=1e-5)
    assert proj.relative.max() < 1e-5
    assert proj.residual.max() < 1e-4


def test_off_plane_residual_is_the_orthogonal_part():
    paths = low_rank_paths()
    plane = pca_plane(paths)
    rng = torch.Generator().manual_seed(3)
    n = torch.randn(plane.num_params, generator=rng)
    n -= plane.directions.T @ (plane.directions @ n)        # orthogonal to the plane
    n *= 2.0 / n.norm()
    w = plane.points([[1.0, 1.5]])[0] + n
    proj = plane.project(w)
    np.testing.assert_allclose(proj.xy[0], [1.0, 1.5], atol=1e-5)
    np.testing.assert_allclose(proj.residual[0], 2.0, rtol=1e-5)
    np.testing.assert_allclose(proj.relative[0], 2.0 / math.sqrt(1.0 + 1.5 ** 2 + 4.0), rtol=1e-5)


@pytest.mark.parametrize("centre", ["start", "mean"])
def test_pca_axes_are_orthonormal_and_explain_a_share(centre):
    paths = low_rank_paths()
    plane = pca_plane(paths, centre=centre)
    D = plane.directions.double()
    np.testing.assert_allclose((D @ D.T).numpy(), np.eye(2), atol=1e-6)
    assert plane.orthonormal and plane.kind == "pca"
    e = plane.explained
    assert np.all((e >= 0) & (e <= 1)) and e.sum() <= 1 + 1e-9 and e[0] >= e[1]
    # the same shares as an exact SVD of all snapshots about the centre
    X = torch.cat(paths).double()
    c = X.mean(0) if centre == "mean" else torch.stack([p[0] for p in paths]).double().mean(0)
    s = torch.linalg.svdvals(X - c)
    exact = (s[:2] ** 2 / (s ** 2).sum()).numpy()
    np.testing.assert_allclose(e, exact, rtol=1e-4)
    assert e.sum() > 0.95        # the paths are nearly planar
    assert plane.axis_labels[0].startswith("PC1 (") and plane.axis_labels[0].endswith(" %)")
    # oriented so that the paths run towards positive coordinates
    ends = np.stack([plane.project(p[-1]).xy[0] for p in paths])
    assert ends[:, 0].mean() > 0 and ends[:, 1].mean() > -1e-9


def test_filter_normalisation_matches_every_filter_norm():
    model = build_model("cnn", seed=0)
    w = flat(model)
    d = filter_normalize(torch.randn(w.shape[0], generator=torch.Generator().manual_seed(0)), w, shapes(model))
    start = 0
    for p in model.parameters():
        n = p.numel()
        dp, wp = d[start:start + n].view(p.shape), w[start:start + n].view(p.shape)
        if p.ndim >= 2:   # per output channel / output neuron
            np.testing.assert_allclose(dp.reshape(p.shape[0], -1).norm(dim=1).numpy(),
                                       wp.reshape(p.shape[0], -1).norm(dim=1).numpy(), rtol=1e-5)
        else:             # biases zeroed (Li et al.)
            assert torch.count_nonzero(dp) == 0
        start += n
    kept = filter_normalize(torch.ones_like(w), w, shapes(model), bias="keep")
    assert torch.count_nonzero(kept) == w.numel()


def test_random_plane_is_seeded_and_reports_shares():
    model = build_model("mlp", seed=0)
    w = flat(model)
    a = random_plane(shapes(model), w, seed=5)
    b = random_plane(shapes(model), w, seed=5)
    c = random_plane(shapes(model), w, seed=6)
    assert torch.equal(a.directions, b.directions) and not torch.equal(a.directions, c.directions)
    assert not a.orthonormal and np.all(np.isnan(a.explained))
    paths = [torch.stack([w, w + 0.01 * a.directions[0], w + 0.02 * a.directions[1]])]
    d = random_plane(shapes(model), w, seed=5, paths=paths)
    assert d.explained.sum() == pytest.approx(1.0, abs=1e-4)


def test_bad_planes_are_refused():
    P = 50
    a, b = torch.zeros(P), torch.ones(P)
    with pytest.raises(OptvizError, match="one line"):
        points_plane(a, b, 2 * b)
    with pytest.raises(OptvizError, match="same weights"):
        points_plane(a, a, b)
    bad = torch.stack([a, b, b * float("nan")])
    with pytest.raises(OptvizError, match="non-finite"):
        pca_plane([bad])
    plane = points_plane(a, b, torch.arange(P).float())
    with pytest.raises(OptvizError, match="non-finite.*snapshot 1"):
        plane.project(torch.stack([a, b * float("inf")]))
    with pytest.raises(OptvizError, match="different sizes"):
        pca_plane([torch.zeros(3, 5), torch.zeros(3, 6)])
    with pytest.raises(OptvizError, match="less than two dimensions"):
        pca_plane([torch.stack([a, b, 2 * b])])


# ---------------------------------------------------------------- the grid


def some_plane(model, seed=0):
    """A plane through the model's weights and two perturbations of it (all in the plane)."""
    g = torch.Generator().manual_seed(seed)
    w = flat(model)
    return points_plane(w, w + 0.05 * torch.randn(w.shape, generator=g), w + 0.05 * torch.randn(w.shape, generator=g))


class Tiny(nn.Module):          # not an nn.Sequential: only the vmap path can take it
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(784, 16)
        self.b = nn.Linear(16, 10)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x.flatten(1))))


@pytest.mark.parametrize("name", ["mlp", "cnn", "deep_mlp", "tiny"])
def test_batched_grid_equals_a_per_point_loop(name, xy):
    x, y = xy
    torch.manual_seed(0)
    model = Tiny() if name == "tiny" else build_model(name, seed=0)
    plane = some_plane(model)
    xs, ys = np.linspace(-1.5, 2.0, 4), np.linspace(-1.0, 1.0, 3)
    X, Y = np.meshgrid(xs, ys)
    ref_loss, ref_acc = pointwise_losses(model, plane, x, y, np.stack([X.ravel(), Y.ravel()], 1))
    methods = ["vmap"] if name == "tiny" else ["linear", "vmap"]
    for method in methods:
        ev = PlaneEvaluator(model, plane, x, y, method=method, max_chunk=5)   # several chunks, a ragged last one
        assert ev.method == method
        res = loss_grid(ev, xs, ys)
        assert res.loss.shape == (3, 4)
        np.testing.assert_allclose(res.loss.ravel(), ref_loss, rtol=2e-5)
        np.testing.assert_allclose(res.acc.ravel(), ref_acc, atol=1e-12)
    assert PlaneEvaluator(model, plane, x, y).method == ("vmap" if name == "tiny" else "linear")


def test_grid_loss_at_an_in_plane_snapshot_is_its_loss(xy):
    x, y = xy
    model = build_model("mlp", seed=1)
    w0 = flat(model)
    g = torch.Generator().manual_seed(1)
    snap = w0 + 0.1 * torch.randn(w0.shape, generator=g)             # e.g. a later snapshot
    plane = points_plane(w0, snap, w0 + 0.1 * torch.randn(w0.shape, generator=g))
    ab = plane.project(snap).xy                                      # (|snap - w0|, 0)
    loss, acc = PlaneEvaluator(model, plane, x, y).evaluate(ab)
    torch.nn.utils.vector_to_parameters(snap, model.parameters())
    with torch.no_grad():
        out = model(x)
    assert loss[0] == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-5)
    assert acc[0] == pytest.approx(float((out.argmax(1) == y).float().mean()))
    # and evaluate_weights gives the same for the raw weights
    l2, _ = evaluate_weights(model, snap[None], x, y)
    assert l2[0] == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-5)


def test_evaluate_weights_gives_nan_for_non_finite_rows(xy):
    x, y = xy
    model = build_model("mlp", seed=0)
    w = flat(model)
    loss, acc = evaluate_weights(model, torch.stack([w, w * float("nan"), w]), x, y)
    assert np.isfinite(loss[[0, 2]]).all() and np.isnan(loss[1]) and loss[0] == pytest.approx(loss[2])
    assert np.isnan(acc[1]) and 0 <= acc[0] <= 1


def test_a_grid_too_large_is_refused_before_any_work(xy):
    x, y = xy
    model = build_model("cnn", seed=0)
    plane = some_plane(model)
    ev = PlaneEvaluator(model, plane, x, y, memory_budget=10 ** 6)
    with pytest.raises(GridTooLarge, match=r"needs about [\d.]+ MB .* budget of 1\.0 MB"):
        loss_grid(ev, np.linspace(0, 1, 51), np.linspace(0, 1, 51))
    assert not ev._prepared          # refused before Z0, Z1, Z2 were computed
    est = estimate_memory(model, (1, 28, 28), 2000, 51 * 51, budget=10 ** 12)
    # the CNN's first layer output, three times (Z0, Z1, Z2), 2000 images, float32
    assert est.fixed >= 3 * 2000 * 16 * 28 * 28 * 4 and est.per_point > 2000 * 16 * 28 * 28 * 4
    assert est.chunk >= 1 and est.peak <= 10 ** 12
    assert est.chunk == 1          # one point's activations (100 MB) already exceed the cache target
    mlp = build_model("mlp")
    roomy = estimate_memory(mlp, (1, 28, 28), 100, 51 * 51, budget=10 ** 12)
    small = estimate_memory(mlp, (1, 28, 28), 100, 51 * 51, budget=roomy.fixed + 3 * roomy.per_point)
    assert roomy.chunk > 3 and small.chunk == 3
    assert parse_bytes("1.5GB") == 1_500_000_000 and parse_bytes("2GiB") == 2 * 2 ** 30


def test_thinning_keeps_one_stride_and_the_last_snapshot():
    from optviz.landscape.compute import _thin

    assert _thin(5, 200).tolist() == [0, 1, 2, 3, 4]
    idx = _thin(470, 200)
    assert len(idx) <= 200 and idx[-1] == 469 and len(set(np.diff(idx[:-1]))) == 1


def test_grid_axes_cover_the_points_with_a_margin():
    xs, ys = grid_axes([[0, 0], [10, 2]], 11, margin=0.1)
    assert xs[0] == pytest.approx(-1.0) and xs[-1] == pytest.approx(11.0)
    assert ys[0] < 0 and ys[-1] > 2 and len(xs) == len(ys) == 11
    xs, ys = grid_axes([[0, 1], [4, 1]], 5, margin=0.0)               # no spread in y: a tenth of x's
    assert ys[-1] - ys[0] == pytest.approx(0.4)


# ---------------------------------------------------------------- the pipeline on a real run folder


def test_pipeline_draws_a_run_like_any_surface(run_dir, data, tmp_path):
    land = compute_landscape(run_dir, grid=7, subset=60, data=data)
    assert not land.from_cache and land.method == "linear" and land.loss.shape == (7, 7)
    field = land.field()
    assert isinstance(field, GridField) and field.log_levels
    assert field.xlabel.startswith("PC1 (") and "%" in field.ylabel
    assert [p.run for p in land.paths] == ["sgd-s0", "adam-s0"]
    for p in land.paths:
        assert p.steps[0] == 0 and p.steps[-1] == 8 and len(p.steps) == len(p.xy) == len(p.loss)
        # the shared start is the plane's origin: exactly in the plane, so the plane's loss there is the true loss
        np.testing.assert_allclose(p.xy[0], [0, 0], atol=1e-6)
        assert p.residual[0] == 0 and p.plane_loss[0] == pytest.approx(p.loss[0], rel=1e-5)
        assert 0 <= p.residual_max <= 1 and p.residual_max >= p.residual.max() - 1e-12
        assert np.isfinite(p.loss).all() and p.loss[-1] < p.loss[0]
    trajs = land.trajectories(order="run")
    assert [t.optimizer for t in trajs] == ["sgd", "adam"]
    from optviz.landscape.compute import _pct

    assert f"off-plane: end {_pct(land.paths[0].residual_final)}, max {_pct(land.paths[0].residual_max)}" \
        in trajs[0].label
    rep = land.report()
    assert rep["plane"]["kind"] == "pca" and len(rep["paths"]) == 2
    json.dumps(rep)
    # the cache: same options -> no recomputation; another grid -> a new entry
    t0 = time.perf_counter()
    again = compute_landscape(run_dir, grid=7, subset=60, data=data)
    assert again.from_cache and time.perf_counter() - t0 < 10.0  # no recomputation (generous: CI load)
    np.testing.assert_array_equal(again.loss, land.loss)
    np.testing.assert_array_equal(again.paths[1].xy, land.paths[1].xy)
    assert not compute_landscape(run_dir, grid=5, subset=60, data=data).from_cache

    files = landscape_figures(land, tmp_path / "out", "paper", frames=4)
    names = sorted(p.name for p in files)
    assert names == ["contour.png", "error_rate.png", "landscape.gif", "landscape.json", "paths_vs_plane.png",
                     "surface3d.png"]
    assert all(p.stat().st_size > 1000 for p in files)
    from PIL import Image

    with Image.open(tmp_path / "out" / "landscape.gif") as im:
        assert im.n_frames == 4


def test_lecture_figure_and_animation(run_dir, data, tmp_path):
    from optviz.views.save import save_figure

    from optviz import api
    from optviz.surfaces import get_surface

    land = compute_landscape(run_dir, grid=5, subset=40, data=data)
    surface = get_surface("rosenbrock")
    rosenbrock = (surface, api.race(surface, steps=60))
    fig = lecture_figure(land, "paper", rosenbrock=rosenbrock)
    colours = [[l.get_color() for l in ax.get_lines() if not l.get_label().startswith("_")] for ax in fig.axes[:2]]
    from optviz.views.style import colour_for

    assert colour_for("sgd") in colours[0] and colour_for("sgd") in colours[1]
    assert colour_for("adam") in colours[0] and colour_for("adam") in colours[1]
    save_figure(fig, tmp_path / "lecture.png")
    gif = lecture_animation(land, tmp_path / "lecture.gif", style="paper", frames=3, dpi=30, rosenbrock=rosenbrock)
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 3 and im.size[0] > 1.5 * im.size[1]


@pytest.mark.parametrize("plane,extra", [("random", {}), ("points", {"points": "init,sgd,adam-s0@4"}),
                                         ("pca", {"centre": "mean"})])
def test_other_planes(run_dir, data, plane, extra):
    land = compute_landscape(run_dir, plane=plane, grid=5, subset=40, data=data, cache=False, **extra)
    assert land.plane["kind"] == plane
    if plane == "points":
        # the three points are in the plane: init at the origin, SGD's end on the first axis
        sgd, adam = land.paths
        np.testing.assert_allclose(sgd.xy[0], [0, 0], atol=1e-5)
        assert abs(sgd.xy[-1][1]) < 1e-4 and sgd.residual[-1] < 1e-5
        assert adam.residual[np.flatnonzero(adam.steps == 4)[0]] < 1e-5
        assert land.plane["axis_labels"][0].startswith("init → SGD final")


def test_bad_runs_give_clear_errors(run_dir, data, tmp_path):
    with pytest.raises(OptvizError, match="no run folder"):
        compute_landscape(tmp_path / "nothing", data=data)
    with pytest.raises(UnknownName, match="plane"):
        compute_landscape(run_dir, plane="lda", data=data)
    with pytest.raises(OptvizError, match="grid must be an integer >= 3"):
        compute_landscape(run_dir, grid=2, data=data)
    with pytest.raises(UnknownName, match="run for --points"):
        compute_landscape(run_dir, plane="points", points="init,sgd,rmsprop", grid=5, subset=20, data=data,
                          cache=False)
    with pytest.raises(GridTooLarge, match="needs about"):
        compute_landscape(run_dir, grid=51, subset=2000, memory_budget=10 ** 6, data=data, cache=False)

    empty = copy_run(run_dir, tmp_path)
    shutil.rmtree(empty / "snapshots")
    with pytest.raises(OptvizError, match="no weight snapshots"):
        compute_landscape(empty, data=data)


def test_snapshots_of_different_models_are_refused(run_dir, data, tmp_path):
    run = copy_run(run_dir, tmp_path)
    meta_path = run / "snapshots" / "adam-s0" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(model="cnn", param_shapes=[list(s) for s in shapes(build_model("cnn"))])
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(OptvizError, match="different models"):
        compute_landscape(run, grid=5, subset=20, data=data)


def test_nan_in_a_path_cuts_it_and_marks_it_diverged(run_dir, data, tmp_path):
    from optviz.mnist.snapshots import read_chunk, read_origin, write_chunk

    run = copy_run(run_dir, tmp_path)
    def spoil(name, rows):
        folder = run / "snapshots" / name
        origin = read_origin(folder)
        chunk = read_chunk(folder / "epoch-0001.npz", origin)
        chunk["weights"][rows] = float("nan")
        (folder / "epoch-0001.npz").unlink()
        write_chunk(folder, 1, chunk["steps"], chunk["weights"], chunk["batch_loss"], chunk["val_loss"],
                    "float16", origin)

    spoil("adam-s0", slice(3, None))                                # steps 6, 8
    land = compute_landscape(run, grid=5, subset=20, data=data)
    sgd, adam = land.paths
    assert sgd.diverged_step is None and adam.diverged_step == 6
    assert adam.steps.tolist() == [0, 2, 4] and np.isfinite(adam.xy).all()
    assert any("adam-s0: non-finite weights from step 6" in n for n in land.notes)
    traj = [t for t in land.trajectories() if t.optimizer == "adam"][0]
    assert traj.diverged_at == 2 and "diverged at step 6" in traj.label
    # every snapshot NaN: that path is left out; all of them: a clear error
    for name in ("sgd-s0", "adam-s0"):
        spoil(name, slice(None))
    with pytest.raises(OptvizError, match="non-finite weights from its first snapshot"):
        compute_landscape(run, grid=5, subset=20, data=data)


# ---------------------------------------------------------------- the command line


def test_cli(run_dir, data, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from optviz.cli import main

    monkeypatch.setattr(MNISTData, "load", classmethod(lambda cls, *a, **k: data))
    runner = CliRunner()
    out = tmp_path / "fig.png"
    res = runner.invoke(main, ["landscape", str(run_dir), "--grid", "5", "--subset", "30", "--style", "paper",
                               "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and str(out) in res.output
    for args, message in (
            (["--plane", "lda"], "unknown plane 'lda'"),
            (["--grid", "2"], "--grid must be >= 3"),
            (["--memory", "1MB", "--grid", "51"], "needs about"),
            (["--memory", "lots"], "memory size"),
            (["--points", "init,sgd,adam"], "--points needs --plane points"),
            (["--style", "neon"], "unknown style")):
        res = runner.invoke(main, ["landscape", str(run_dir), "-o", str(tmp_path / "x.png"), *args])
        assert res.exit_code == 2, (args, res.output)
        assert message in res.output and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(main, ["landscape", str(tmp_path / "missing"), "-o", str(tmp_path / "y.png")])
    assert res.exit_code == 2 and "no run folder" in res.output
