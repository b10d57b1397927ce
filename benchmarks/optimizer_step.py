"""One epoch of the lecture's MLP with optviz's torch adapter vs torch.optim.

The lecture's network (784-128-ReLU-10), batch 32, random inputs of MNIST's
shape (50,000 samples = 1,563 steps), cross-entropy. For each of the lecture's
five optimizers, the same epoch (same initial weights, same batches) runs with

  - optviz.optim.TorchOptimizer (the shared core behind the adapter),
  - torch.optim with foreach=False (the for-loop implementation),
  - torch.optim with foreach=True (the multi-tensor implementation),

interleaved in one process, several repeats; the table shows medians.
Target: the adapter at most 1.10x torch's for-loop time for each optimizer.

Time is the process's CPU time, with torch on one thread by default: on a
shared 2-core machine, wall time of a 2-thread torch swings 5x with whatever
else runs (each kernel waits at a thread barrier for a descheduled worker),
while CPU time counts only the work done. ``--threads 2 --clock wall`` measures
the other way, for a quiet machine.

    python benchmarks/optimizer_step.py [--repeats 5] [--samples 50000] [--threads 1] [--clock cpu|wall]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from optviz.optim import LECTURE_FIVE, TorchOptimizer
from optviz.optim.torch_reference import torch_optimizer

SETTINGS = {"sgd": {"lr": 0.01}, "momentum": {"lr": 0.01, "momentum": 0.9}, "nesterov": {"lr": 0.01, "momentum": 0.9},
            "adagrad": {"lr": 0.01}, "adam": {"lr": 0.001}}


def make_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


CLOCK = time.process_time


def epoch_seconds(make_opt, x, y, batch_size=32):
    model = make_model()
    opt = make_opt(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    start = CLOCK()
    for i in range(0, len(x), batch_size):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[i:i + batch_size]), y[i:i + batch_size])
        loss.backward()
        opt.step()
    return CLOCK() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="process CPU time or wall time")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.samples, 1, 28, 28) * 2 - 1
    y = torch.randint(0, 10, (args.samples,))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.clock} time, {args.samples} samples, "
          f"batch 32, {args.repeats} repeats (medians)\n")
    print(f"{'optimizer':<10} {'optviz (s)':>11} {'for-loop (s)':>13} {'foreach (s)':>12} {'vs for-loop':>12} {'vs foreach':>11}")
    worst = 0.0
    for name in LECTURE_FIVE:
        h = SETTINGS[name]
        variants = {
            "optviz": lambda p: TorchOptimizer(p, name, **h),
            "forloop": lambda p: torch_optimizer(p, name, foreach=False, **h),
            "foreach": lambda p: torch_optimizer(p, name, foreach=True, **h),
        }
        times = {k: [] for k in variants}
        epoch_seconds(variants["optviz"], x[:3200], y[:3200])  # warm-up
        for _ in range(args.repeats):
            for key, make in variants.items():  # interleaved: drift hits all three alike
                times[key].append(epoch_seconds(make, x, y))
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["optviz"] / med["forloop"]
        worst = max(worst, ratio)
        print(f"{name:<10} {med['optviz']:>11.3f} {med['forloop']:>13.3f} {med['foreach']:>12.3f} "
              f"{ratio:>11.2f}x {med['optviz'] / med['foreach']:>10.2f}x")
    print(f"\nworst_ratio_vs_torch_forloop: {worst:.3f}")


if __name__ == "__main__":
    main()
