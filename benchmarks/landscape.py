"""A 51 x 51 loss grid of the lecture MLP on 2,000 images: batched vs a per-point loop.

- batched: :class:`optviz.landscape.PlaneEvaluator` (the first layer's output on the
  plane is ``Z0 + a Z1 + b Z2``, computed once; chunks of grid points then run the
  rest of the network at once), the whole grid, timed end to end (including Z0/Z1/Z2);
- baseline: the plain loop of :func:`optviz.landscape.pointwise_losses`: for each grid
  point, write the weights into the model and forward the 2,000 images. It would take
  minutes, so an evenly spread sample of grid points is run and its time scaled to
  all 2,601 (the sample is also checked against the batched values).

The plane is a filter-normalised random plane (Li et al. 2018) through the MLP's
trained weights when a lecture run is at ``runs/lecture`` (else through its initial
weights); the images are 2,000 MNIST validation images when the data is cached,
else random tensors of the same shape (the cost does not depend on the pixels).

    python benchmarks/landscape.py [--grid 51] [--subset 2000] [--sample 60] [--threads N]

Prints ``speedup_vs_pointwise: X`` (wall clock) and ``batched_seconds: Y`` (wall clock)
as its last lines, after the same ratio on CPU time (steadier when other processes
share the cores).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from optviz.landscape import PlaneEvaluator, loss_grid, pointwise_losses, random_plane
from optviz.mnist.models import build_model


def weights_and_data(subset: int):
    model = build_model("mlp", seed=0)
    w = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    where = "initial weights"
    run = Path(__file__).resolve().parents[1] / "runs" / "lecture"
    try:
        from optviz.mnist.results import load_snapshots

        snaps = load_snapshots(run, runs=["adam-s0"])
        w, where = snaps["adam-s0"].weights[-1].clone(), f"{run.name}/adam-s0 final weights"
    except Exception:  # noqa: BLE001  (no run: the initial weights do as well for timing)
        pass
    try:
        from optviz.mnist.dataset import MNISTData

        data = MNISTData.load(download=False)
        g = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(data.val[0]), generator=g)[:subset].sort().values
        x, y, what = data.val[0][idx], data.val[1][idx], f"{subset:,} MNIST validation images"
    except Exception:  # noqa: BLE001
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(subset, 1, 28, 28, generator=g), torch.randint(0, 10, (subset,), generator=g)
        what = f"{subset:,} random images (MNIST not cached)"
    return model, w, x, y, where, what


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=51)
    ap.add_argument("--subset", type=int, default=2000)
    ap.add_argument("--sample", type=int, default=60, help="grid points run through the per-point loop")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model, w, x, y, where, what = weights_and_data(args.subset)
    shapes = [tuple(p.shape) for p in model.parameters()]
    plane = random_plane(shapes, w, seed=0)
    xs = ys = np.linspace(-1.0, 1.0, args.grid)
    n = args.grid ** 2
    print(f"model mlp (101,770 weights), plane through {where}, {what}, {args.grid} x {args.grid} = {n:,} points, "
          f"{torch.get_num_threads()} threads")

    # warm-up (first calls allocate and load kernels), then the timed batched grid
    loss_grid(PlaneEvaluator(model, plane, x, y), xs[:3], ys[:3])
    t0, c0 = time.perf_counter(), time.process_time()
    ev = PlaneEvaluator(model, plane, x, y)
    res = loss_grid(ev, xs, ys)
    batched, batched_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"batched ({res.method}, {res.chunk} points per pass): {batched:.2f} s wall, {batched_cpu:.2f} s CPU "
          f"({1e3 * batched / n:.2f} ms per point)")

    X, Y = np.meshgrid(xs, ys)
    ab = np.stack([X.ravel(), Y.ravel()], axis=1)
    pick = np.unique(np.rint(np.linspace(0, n - 1, min(args.sample, n))).astype(int))
    pointwise_losses(model, plane, x, y, ab[pick[:2]])                  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    ref_loss, ref_acc = pointwise_losses(model, plane, x, y, ab[pick])
    per_point, per_point_cpu = (time.perf_counter() - t0) / len(pick), (time.process_time() - c0) / len(pick)
    pointwise, pointwise_cpu = per_point * n, per_point_cpu * n
    print(f"per-point loop: {1e3 * per_point:.1f} ms per point over a sample of {len(pick)}, "
          f"scaled to {n:,} points: {pointwise:.1f} s wall, {pointwise_cpu:.1f} s CPU")
    print(f"speedup on CPU time (robust on a shared machine): {pointwise_cpu / batched_cpu:.1f}")
    err = np.max(np.abs(res.loss.ravel()[pick] - ref_loss) / np.abs(ref_loss))
    acc_err = np.max(np.abs(res.acc.ravel()[pick] - ref_acc))
    print(f"agreement on the sample: max relative loss difference {err:.1e}, max accuracy difference {acc_err:.1e}")
    print(f"loss on the grid: {np.nanmin(res.loss):.3f} .. {np.nanmax(res.loss):.3f}")
    print(f"speedup_vs_pointwise: {pointwise / batched:.1f}")
    print(f"batched_seconds: {batched:.2f}")


if __name__ == "__main__":
    main()
