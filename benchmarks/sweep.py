"""A learning-rate sweep as one batched run vs one torch.optim.Adam per configuration.

10,000 configurations (100 starts on a grid over Rosenbrock's domain x 100
learning rates, log-spaced 1e-3 .. 1), 500 steps of Adam each:

  - optviz: one vectorised run of the core over a (10000, 2) parameter array,
    with the learning rate an array of shape (10000,) (optviz.engine.run_batch);
  - baseline: the same configurations stepped one by one with torch.optim.Adam
    (foreach=False, float64) and torch autograd on the same Rosenbrock.

The baseline takes minutes, so a random sample of configurations is run and its
time scaled to all 10,000 (the sample size is printed). The sampled
configurations' final points are also compared with the batched run's: the
speed-up is only worth something if both compute the same thing.

    python benchmarks/sweep.py [--sample 200] [--steps 500]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from optviz.engine import run_batch
from optviz.surfaces import get_surface


def rosenbrock_torch(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def torch_one(start, lr, steps):
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr, foreach=False)
    for _ in range(steps):
        opt.zero_grad()
        rosenbrock_torch(p).backward()
        opt.step()
    return p.detach().numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=200, help="configurations run through the torch loop")
    ap.add_argument("--steps", type=int, default=500)
    args = ap.parse_args()

    surface = get_surface("rosenbrock")
    (x0, x1), (y0, y1) = surface.domain
    gx, gy = np.meshgrid(np.linspace(x0, x1, 10), np.linspace(y0, y1, 10))
    starts = np.column_stack([gx.ravel(), gy.ravel()])           # (100, 2)
    lrs = np.logspace(-3, 0, 100)
    S, L = np.meshgrid(np.arange(len(starts)), np.arange(len(lrs)), indexing="ij")
    cfg_starts, cfg_lrs = starts[S.ravel()], lrs[L.ravel()]      # (10000, 2), (10000,)
    n = len(cfg_lrs)

    t = time.perf_counter()
    rec = run_batch(surface, "adam", {"lr": cfg_lrs}, cfg_starts, args.steps, record=False,
                    box=np.array([[-1e300, 1e300], [-1e300, 1e300]]))
    batched = time.perf_counter() - t

    rng = np.random.default_rng(0)
    sample = rng.choice(n, size=min(args.sample, n), replace=False)
    torch_one(cfg_starts[0], 0.01, 5)  # warm-up
    t = time.perf_counter()
    finals = np.array([torch_one(cfg_starts[i], float(cfg_lrs[i]), args.steps) for i in sample])
    sampled = time.perf_counter() - t
    loop = sampled / len(sample) * n

    err = np.max(np.abs(finals - rec.final()[sample]) / (1 + np.abs(finals)))
    print(f"{n} configurations x {args.steps} steps of Adam on Rosenbrock")
    print(f"optviz batched run:           {batched:9.2f} s")
    print(f"torch.optim.Adam loop:        {loop:9.2f} s  (sample of {len(sample)} took {sampled:.2f} s, scaled)")
    print(f"max relative difference of final points on the sample: {err:.2e}")
    print(f"speedup_vs_torch_loop: {loop / batched:.1f}")


if __name__ == "__main__":
    main()
