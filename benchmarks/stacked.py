"""The lecture protocol's runs as one stacked model vs one by one (the sequential trainer).

Both sides train the lecture's five optimizers (SGD, Momentum, Nesterov, AdaGrad, Adam
at the lecture's settings) on three seeds: 15 runs of the MLP 784-128-ReLU-10, batch
32, for ``--epochs`` epochs (default 1) on the 50,000 / 10,000 split, validation at
every epoch end, no weight snapshots, in one process, in turn:

* **sequential**: ``optviz.mnist.train(config, trainer="sequential")``: one model and one
  ``TorchOptimizer`` per run, stepped in turn, on 1 torch thread (its default: batch-32
  steps are too small to split);
* **stacked**: the same config with ``trainer="stacked"``: the 15 runs as one batched model,
  the five optimizers as five core transforms over the stack, on all cores (its default).

Each time is the whole ``train()`` call (initial and test evaluations, checkpoints,
files); data loading is outside. Repeats are interleaved; the best time of each side
counts. Printed: both times, ``speedup_vs_sequential`` (sequential / stacked), the
stack's memory estimate, the process's peak resident memory, and
``lecture_3seed_seconds``: the full lecture protocol (15 epochs, 3 seeds) projected as
15 x the stacked time per epoch; the per-epoch time carries the whole call's fixed costs
(start-up, initial and test evaluation), so the projection is an upper bound.

    python benchmarks/stacked.py [--epochs 1] [--repeats 2] [--stacked-threads N]

The last line is ``lecture_3seed_seconds: Y``.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from mnist_data import load_data  # beside this script
from optviz.mnist.presets import LECTURE_OPTIMIZERS
from optviz.mnist.train import TrainConfig, train

def timed(config: TrainConfig, data, folder: Path) -> float:
    t = time.perf_counter()
    train(config, folder, data=data)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--subset", type=int, default=None, help="train on N images (a quick check)")
    ap.add_argument("--stacked-threads", type=int, default=None, help="torch threads of the stacked trainer "
                    "(default: all cores)")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or str(Path(tmp) / "data")
        data = load_data(data_dir, args.subset)
        base = dict(optimizers=list(LECTURE_OPTIMIZERS), epochs=args.epochs, seeds=args.seeds, snapshots="none",
                    data_dir=data_dir)
        configs = {"sequential": TrainConfig(trainer="sequential", **base),
                   "stacked": TrainConfig(trainer="stacked", num_threads=args.stacked_threads, **base)}
        best = {k: float("inf") for k in configs}
        for r in range(args.repeats):
            for name, config in configs.items():
                seconds = timed(config, data, Path(tmp) / f"{name}-{r}")
                best[name] = min(best[name], seconds)
                print(f"  {name:<10} repeat {r + 1}: {seconds:6.2f} s")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        from optviz.mnist.models import build_model
        from optviz.mnist.stacked import bytes_per_member, eval_chunk

        runs = 5 * args.seeds
        estimate = bytes_per_member(build_model("mlp"), (1, 28, 28), 32, eval_chunk(runs, 2000), 2) * runs
    runs_epochs = 5 * args.seeds * args.epochs
    print(f"sequential_seconds: {best['sequential']:.2f}   ({runs_epochs} run-epochs, 1 thread)")
    print(f"stacked_seconds: {best['stacked']:.2f}   ({runs_epochs} run-epochs, "
          f"{args.stacked_threads or torch.get_num_threads()} threads)")
    print(f"stack_memory_estimate_mb: {estimate / 1e6:.1f}")
    print(f"peak_rss_mb: {peak_mb:.0f}")
    print(f"speedup_vs_sequential: {best['sequential'] / best['stacked']:.2f}")
    scale = 60000 - 10000 if not args.subset else args.subset
    per_epoch = best["stacked"] / args.epochs * (50000 / scale) * (3 / args.seeds)
    print(f"lecture_3seed_seconds: {15 * per_epoch:.0f}")


if __name__ == "__main__":
    main()
