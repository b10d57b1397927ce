"""What Ray costs: one small study, trained by the local executor and by Ray with 2 workers.

The local executor trains the shards one after another in this process (torch's own
threads); the Ray executor starts a private local Ray and trains two shards at a time,
one thread each. Both load the data from disk as a user's study would (MNIST when it is
in the data folder, else synthetic digits handed to both). The Ray time includes
starting Ray, because a user waits for it too.

    python benchmarks/tune_scale.py [--seeds 2] [--grid 5] [--epochs 1] [--subset 50000]

Prints ``local_seconds``, ``ray_seconds``, ``ray_startup_seconds``, the largest
relative difference between the two studies' final losses, and last
``ray_overhead_ratio`` (Ray's seconds / the local executor's; target <= 1.3).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def synthetic(n_train: int, n_test: int):
    """Digits-like data (a prototype per class plus noise) when MNIST is not on disk."""
    import numpy as np
    import torch

    from optviz.mnist.dataset import MNISTData

    def digits(n, seed):
        rng = np.random.default_rng(seed)
        protos = np.random.default_rng(7).integers(0, 2, (10, 28, 28)) * 200
        labels = rng.integers(0, 10, n)
        images = np.clip(protos[labels] * 0.35 + rng.integers(0, 170, (n, 28, 28)), 0, 255).astype(np.uint8)
        return torch.from_numpy(images), torch.from_numpy(labels.astype(np.uint8))

    return MNISTData.from_tensors(*digits(n_train, 0), *digits(n_test, 1), val_size=min(10000, n_train // 6))


def losses(folder) -> dict:
    out = {}
    for line in (Path(folder) / "runs.jsonl").read_text().splitlines():
        r = json.loads(line)
        out[r["setting"], r["seed"]] = (r["final_val_loss"], r["test_loss"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2, help="seeds = shards (one stack per seed)")
    ap.add_argument("--grid", type=int, default=5, help="learning rates per optimizer")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--subset", type=int, default=50000, help="training images (50,000: all of them)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--local-threads", type=int, default=None,
                    help="torch threads of the local executor (default: torch's own choice)")
    args = ap.parse_args()

    from optviz.mnist import sources
    from optviz.mnist.presets import LECTURE_OPTIMIZERS
    from optviz.study.ray_executor import RayExecutor, import_ray
    from optviz.study.results import merge
    from optviz.study.run import LocalExecutor, run_study
    from optviz.study.spec import StudySpec

    ray = import_ray()
    real = sources.dataset_status("mnist", trust_stamps=True).ok
    data = None if real else synthetic(args.subset + 2000, 2000)
    val_size = 10000 if real else len(data.val[0])
    spec = StudySpec(optimizers=list(LECTURE_OPTIMIZERS), grid={"lr": f"x0.1..x10:{args.grid}"}, seeds=args.seeds,
                     train={"epochs": args.epochs, "subset": args.subset, "eval_subset": 2000,
                            "val_size": val_size, "batch_size": 32}).validate()
    print(f"study: {spec.num_runs()} runs in {len(spec.shards())} shards, {args.epochs} epoch(s) on "
          f"{args.subset:,} {'MNIST' if real else 'synthetic'} images; {os.cpu_count()} CPUs")

    import torch

    if args.local_threads:
        torch.set_num_threads(args.local_threads)
    print(f"local executor: {torch.get_num_threads()} torch threads; ray: {args.workers} workers")
    with tempfile.TemporaryDirectory(prefix="tune-scale-") as tmp:
        t = time.perf_counter()
        run_study(spec, Path(tmp) / "local", executor=LocalExecutor(), progress=False, data=data)
        local = time.perf_counter() - t
        merge(Path(tmp) / "local")
        print(f"local_seconds: {local:.2f}")

        t = time.perf_counter()
        executor = RayExecutor(workers=args.workers)
        with executor.session():   # the session is timed too: a user waits for it
            startup = time.perf_counter() - t
            run_study(spec, Path(tmp) / "ray", executor=executor, progress=False, data=data)
        ray_seconds = time.perf_counter() - t
        assert not ray.is_initialized()
        merge(Path(tmp) / "ray")
        print(f"ray_seconds: {ray_seconds:.2f}")
        print(f"ray_startup_seconds: {startup:.2f}")
        for name, info in sorted(executor.finished.items()):
            print(f"  shard {name}: worker {info['pid']} on node {info['node_id'][:8]}, {info['threads']} thread(s): "
                  f"data {info['seconds']['data']:.2f} s, training {info['seconds']['train']:.2f} s")
        a, b = losses(Path(tmp) / "local"), losses(Path(tmp) / "ray")
        assert a.keys() == b.keys()
        diff = max((abs(x - y) / max(abs(x), 1e-30) for k in a for x, y in zip(a[k], b[k])
                    if x is not None and y is not None), default=0.0)
        print(f"max_relative_loss_difference: {diff:.2e}")
    print(f"ray_overhead_ratio: {ray_seconds / local:.3f}")


if __name__ == "__main__":
    main()
