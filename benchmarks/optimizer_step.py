"""One epoch of the lecture's MLP with optviz's torch adapter vs torch.optim.

The lecture's network (784-128-ReLU-10), batch 32, random inputs of MNIST's
shape (50,000 samples = 1,563 steps), cross-entropy. For each of the lecture's
five optimizers, the same epoch (same initial weights, same batches) runs with

  - optviz.optim.TorchOptimizer, eager updates (the shared core behind the adapter),
  - optviz.optim.TorchOptimizer(compile=True) (the core's update through torch.compile),
  - torch.optim with foreach=False (the for-loop implementation),
  - torch.optim with foreach=True (the multi-tensor implementation),
  - torch.optim with fused=True (torch's fused CPU kernels: SGD, Adagrad, Adam, AdamW),

interleaved in one process, several repeats; the tables show medians, of the
whole epoch (forward, backward and step) and of the optimizer steps alone.

Targets:
  - worst_ratio_vs_torch_forloop: eager adapter / torch for-loop, whole epoch, <= 1.10
  - worst_ratio_vs_torch_fused: the adapter's fastest mode (eager or compiled) /
    torch fused, optimizer steps alone (where the two differ), <= 1.0, over every
    optimizer torch fuses on CPU.

Time is the process's CPU time, with torch on one thread by default: on a
shared 2-core machine, wall time of a 2-thread torch swings 5x with whatever
else runs (each kernel waits at a thread barrier for a descheduled worker),
while CPU time counts only the work done. ``--threads 2 --clock wall`` measures
the other way, for a quiet machine. The compiled mode is compiled (or loaded from
inductor's cache) before the timing starts.

``--compile-cache-check`` measures instead what the on-disk caches save: the
first compiled step of a fresh process, with an empty cache folder and again with
the folder the first process filled (``compile_seconds_cold`` / ``_warm``).

    python benchmarks/optimizer_step.py [--repeats 5] [--samples 50000] [--threads 1] [--clock cpu|wall]
    python benchmarks/optimizer_step.py --compile-cache-check
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the optviz of this checkout

from optviz.optim import LECTURE_FIVE, TorchOptimizer
from optviz.optim.compiled import available
from optviz.optim.torch_reference import torch_optimizer

SETTINGS = {"sgd": {"lr": 0.01}, "momentum": {"lr": 0.01, "momentum": 0.9}, "nesterov": {"lr": 0.01, "momentum": 0.9},
            "adagrad": {"lr": 0.01}, "adam": {"lr": 0.001}}
FUSED_ON_CPU = {"SGD", "Adagrad", "Adam", "AdamW"}


def make_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


CLOCK = time.process_time


def epoch_seconds(make_opt, x, y, batch_size=32):
    """(whole epoch, optimizer steps alone), in seconds of CLOCK."""
    model = make_model()
    opt = make_opt(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    stepping = 0.0
    start = CLOCK()
    for i in range(0, len(x), batch_size):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[i:i + batch_size]), y[i:i + batch_size])
        loss.backward()
        t = CLOCK()
        opt.step()
        stepping += CLOCK() - t
    return CLOCK() - start, stepping


def compile_cache_check() -> None:
    """Two fresh processes, one compiled Adam step each: cold cache, then warm."""
    code = ("import time, torch; from optviz.optim import TorchOptimizer\n"
            "torch.manual_seed(0); m = torch.nn.Linear(784, 128)\n"
            "opt = TorchOptimizer(m.parameters(), 'adam', compile=True)\n"
            "m(torch.randn(32, 784)).sum().backward(); t = time.perf_counter(); opt.step()\n"
            "from torch._dynamo.utils import counters\n"
            "print(time.perf_counter() - t, dict(counters['inductor']).get('fxgraph_cache_hit', 0))\n")
    with tempfile.TemporaryDirectory() as cache:
        # the optviz of this tree, not another checkout installed in the venv
        here = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache,
                   PYTHONPATH=os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            runs.append(out.stdout.split())
    (cold, _), (warm, hits) = runs
    print(f"first compiled step, empty cache: {float(cold):.1f} s; a second process: {float(warm):.1f} s "
          f"(FX graph cache hits: {hits})")
    print(f"compile_seconds_cold: {float(cold):.2f}")
    print(f"compile_seconds_warm: {float(warm):.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="process CPU time or wall time")
    ap.add_argument("--no-compile", action="store_true", help="leave out the compiled mode")
    ap.add_argument("--compile-cache-check", action="store_true", help="measure inductor's on-disk caches instead")
    args = ap.parse_args()
    if args.compile_cache_check:
        return compile_cache_check()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.samples, 1, 28, 28) * 2 - 1
    y = torch.randint(0, 10, (args.samples,))
    compiled = not args.no_compile and available("cpu")[0]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.clock} time, {args.samples} samples, "
          f"batch 32, {args.repeats} repeats (medians); compiled mode: {'yes' if compiled else 'no'}\n")
    names = ["optviz", "compiled", "forloop", "foreach", "fused"]
    rows = {}
    for name in LECTURE_FIVE:
        h = SETTINGS[name]
        variants = {
            "optviz": lambda p: TorchOptimizer(p, name, compile=False, **h),
            "compiled": lambda p: TorchOptimizer(p, name, compile=True, **h),
            "forloop": lambda p: torch_optimizer(p, name, foreach=False, **h),
            "foreach": lambda p: torch_optimizer(p, name, foreach=True, **h),
            "fused": lambda p: torch_optimizer(p, name, fused=True, **h),
        }
        if not compiled:
            del variants["compiled"]
        times = {k: [] for k in variants}
        for make in variants.values():  # warm-up (and the compile, paid here or loaded from the cache)
            epoch_seconds(make, x[:640], y[:640])
        for _ in range(args.repeats):
            for key, make in variants.items():  # interleaved: drift hits all alike
                times[key].append(epoch_seconds(make, x, y))
        rows[name] = {k: (statistics.median(e for e, _ in v), statistics.median(s for _, s in v))
                      for k, v in times.items()}

    for part, col in (("whole epoch", 0), ("optimizer steps alone", 1)):
        print(f"{part} (s):")
        print(f"{'optimizer':<10}" + "".join(f"{k:>10}" for k in names) + f"{'vs loop':>9}{'vs fused':>9}")
        for name, med in rows.items():
            best = min(med[k][col] for k in ("optviz", "compiled") if k in med)
            cells = "".join(f"{med[k][col]:>10.3f}" if k in med else f"{'-':>10}" for k in names)
            print(f"{name:<10}{cells}{med['optviz'][col] / med['forloop'][col]:>8.2f}x"
                  f"{best / med['fused'][col]:>8.2f}x")
        print()
    worst_loop = max(med["optviz"][0] / med["forloop"][0] for med in rows.values())
    worst_fused = max(min(med[k][1] for k in ("optviz", "compiled") if k in med) / med["fused"][1]
                      for name, med in rows.items() if _fused_on_cpu(name))
    print(f"worst_ratio_vs_torch_forloop: {worst_loop:.3f}")
    print(f"worst_ratio_vs_torch_fused: {worst_fused:.3f}")


def _fused_on_cpu(name: str) -> bool:
    from optviz.optim.torch_reference import COUNTERPARTS

    return COUNTERPARTS[name][0] in FUSED_ON_CPU


if __name__ == "__main__":
    main()
