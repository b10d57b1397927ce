"""The top Hessian eigenvalue of the lecture MLP on 2,000 images, and the explicit Hessian it avoids.

1. The lecture's MLP (784-128-ReLU-10, 101,770 parameters), after 300 SGD steps
   (batch 32, η = 0.01) so its curvature is a trained network's, on 2,000 MNIST
   training images (random tensors of the same shape when MNIST is not cached: the
   cost does not depend on the pixels). One eigenvalue is computed first and not
   counted (torch.func's first call pays for imports and tracing); then ``--repeats``
   eigenvalues from different Lanczos starts, each timed end to end: the linearisation
   of the gradient (one forward and backward), the Hessian-vector products
   (``torch.func.vjp`` of the gradient) and the Lanczos iteration
   (:func:`optviz.analysis.hessian.lanczos`, relative residual 1e-3). Its full Hessian
   would be 101,770^2 entries, 41.4 GB in float32.
2. A small MLP (784-``--small-hidden``-ReLU-10; 6,370 parameters at 8) on the same
   images: the Hessian formed explicitly with ``torch.func.hessian`` and its top
   eigenvalue by ``torch.linalg.eigvalsh``, against Lanczos on products; both values
   are printed and must agree.

    python benchmarks/sharpness.py [--images 2000] [--repeats 5] [--small-hidden 8] [--threads 1]

Both sides run with the same number of torch threads (default 1: steady on a shared
machine, where threads that wait for busy cores spin; ``--threads 2`` on a quiet one).

Prints ``name: value`` lines; the last two are ``seconds_per_eigenvalue: X`` (target
<= 5 on the project's 2-core machine) and ``speedup_vs_explicit_hessian: Y`` (forming
the small model's Hessian and its eigendecomposition, over Lanczos on products).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's optviz, installed or not
from optviz.analysis.hessian import LossCurvature, explicit_hessian, hessian_memory, lanczos  # noqa: E402
from optviz.mnist.models import build_model  # noqa: E402


def images(n: int):
    try:
        from optviz.mnist.dataset import MNISTData

        data = MNISTData.load(download=False)
        return data.train[0][:n], data.train[1][:n], data.train, f"{n:,} MNIST training images"
    except Exception:  # noqa: BLE001  (not cached: random images cost the same)
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
        return x, y, (x, y), f"{n:,} random images (MNIST not cached)"


def trained_mlp(train, steps: int = 300):
    """The lecture MLP after ``steps`` SGD steps of batch 32 (seeded)."""
    model = build_model("mlp", seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = train
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (32,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return model


def timed_eigenvalue(model, x, y, seed: int, tol: float):
    t0 = time.perf_counter()
    curv = LossCurvature(model, x, y)
    est = lanczos(curv.hvp, curv.dim, tol=tol, seed=seed, like=curv.w)
    return time.perf_counter() - t0, est


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--small-hidden", type=int, default=8, help="hidden units of the small model")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared machine more threads spin against other "
                         "processes; LAPACK's eigvalsh was seen 400 times slower with 2 threads than with 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    x, y, train, what = images(args.images)
    print(f"data: {what}; torch threads: {torch.get_num_threads()}")

    # 1. the lecture MLP
    model = trained_mlp(train)
    warm, _ = timed_eigenvalue(model, x, y, seed=99, tol=args.tol)
    print(f"first_eigenvalue_seconds: {warm:.3f}  (imports and tracing; not counted)")
    times, values, products = [], [], []
    for r in range(args.repeats):
        s, est = timed_eigenvalue(model, x, y, seed=r, tol=args.tol)
        times.append(s)
        values.append(est.value)
        products.append(est.matvecs)
        print(f"  lecture MLP, start {r}: lambda_max = {est.value:.6g}  ({est.matvecs} products, "
              f"residual {est.residual:.1e}, {s:.3f} s)")
    per_eig = statistics.median(times)
    mem = hessian_memory(sum(p.numel() for p in model.parameters()))
    print(f"parameters: {mem['parameters']}")
    print(f"full_hessian_gigabytes_float32: {mem['gigabytes']}")
    print(f"products_per_eigenvalue: {statistics.median(products):g}")
    print(f"seconds_per_product: {per_eig / statistics.median(products):.4f}")
    print(f"lambda_max_spread: {(max(values) - min(values)) / max(abs(max(values)), 1e-30):.1e}")

    # 2. a small model: explicit Hessian vs products
    torch.manual_seed(0)
    small = nn.Sequential(nn.Flatten(), nn.Linear(784, args.small_hidden), nn.ReLU(), nn.Linear(args.small_hidden, 10))
    P = sum(p.numel() for p in small.parameters())
    timed_eigenvalue(small, x[:8], y[:8], seed=99, tol=args.tol)            # warm up at this size
    t0 = time.perf_counter()
    H = explicit_hessian(small, x, y)
    t_form = time.perf_counter() - t0
    t0 = time.perf_counter()
    top_explicit = float(torch.linalg.eigvalsh(H)[-1])
    t_eig = time.perf_counter() - t0
    del H
    t_lz, est = timed_eigenvalue(small, x, y, seed=0, tol=args.tol)
    agree = abs(est.value - top_explicit) / max(abs(top_explicit), 1e-30)
    print(f"small_model_parameters: {P}")
    print(f"small_explicit_form_seconds: {t_form:.3f}")
    print(f"small_explicit_eigvalsh_seconds: {t_eig:.3f}")
    print(f"small_lanczos_seconds: {t_lz:.4f}  ({est.matvecs} products)")
    print(f"small_lambda_max: explicit {top_explicit:.6g}, lanczos {est.value:.6g} (relative difference {agree:.1e})")
    if agree > 10 * args.tol:
        raise SystemExit(f"Lanczos and the explicit Hessian disagree: {agree:.2e}")
    print(f"speedup_vs_forming_only: {t_form / t_lz:.1f}")
    print(f"seconds_per_eigenvalue: {per_eig:.3f}")
    print(f"speedup_vs_explicit_hessian: {(t_form + t_eig) / t_lz:.1f}")


if __name__ == "__main__":
    main()
