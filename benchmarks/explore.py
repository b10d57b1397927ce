"""Explorer: server time per scene update, the lecture's five optimizers x 500 steps on Rosenbrock.

A scene update is what the server does when a slider moves: check the page's query
with the command line's rules, race all five optimizers (the engine's lockstep loop,
:mod:`optviz.engine.lockstep`), hand the paths to the views' RaceAnimation for the
loss panel and the arrows, and encode the JSON the page draws. Every repeat moves
Adam's learning rate, so no cache helps. The baseline is the same race through
``optviz.race`` (one optimizer after another, autograd traced at every step), the
engine the explorer would otherwise call.

    python benchmarks/explore.py                 # 30 repeats, 500 steps
    python benchmarks/explore.py --repeats 3 --steps 20

Prints ``name: value`` lines; medians over the repeats; wall time (``time.perf_counter``)
and, beside it, process CPU time (on a shared machine the wall time swings with the load,
the CPU time counts the work). Target: scene_ms <= 50.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # this checkout's optviz


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--function", default="rosenbrock")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()

    import optviz
    from optviz.engine import presets
    from optviz.explorer.server import Explorer
    from optviz.explorer.state import parse_scene

    explorer = Explorer(out_dir="unused")
    specs = presets.lecture_specs(args.function)
    lrs = [0.1 * (1.0 + 0.01 * i) for i in range(args.repeats + 1)]

    def params(lr):
        opts = [s for s in specs if not s.startswith("adam")] + [f"adam:lr={lr:.6g}"]
        return {"f": [args.function], "opt": opts, "steps": [str(args.steps)], "style": ["slides"]}

    explorer.scene(params(lrs[-1]))            # warm-up: imports, the replayed gradient's recording
    scene_wall, scene_cpu, race_wall = [], [], []
    for lr in lrs[:-1]:
        w, c = time.perf_counter(), time.process_time()
        out = explorer.scene(params(lr))
        body = json.dumps(out)
        scene_wall.append(1e3 * (time.perf_counter() - w))
        scene_cpu.append(1e3 * (time.process_time() - c))
        race_wall.append(out["timing_ms"]["race"])
    assert len(out["paths"]) == len(specs) and body

    scene = parse_scene(params(lrs[0]))
    base = []
    for _ in range(max(1, min(5, args.repeats))):
        w = time.perf_counter()
        optviz.race(args.function, list(scene.opts), steps=scene.steps)
        base.append(1e3 * (time.perf_counter() - w))

    med = statistics.median
    print(f"optimizers: {len(specs)}")
    print(f"steps: {args.steps}")
    print(f"scene_bytes: {len(body)}")
    print(f"race_ms: {med(race_wall):.1f}")
    print(f"baseline_race_ms: {med(base):.1f}")
    print(f"race_speedup: {med(base) / med(race_wall):.1f}")
    print(f"scene_cpu_ms: {med(scene_cpu):.1f}")
    print(f"scene_ms: {med(scene_wall):.1f}")


if __name__ == "__main__":
    main()
