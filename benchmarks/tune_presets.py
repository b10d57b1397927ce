"""How the lecture presets of optviz.engine.presets were chosen (re-run to re-derive them).

For each surface and each of the lecture's five optimizers, one batched run scans
25 learning rates (1e-6 .. 1) from the surface's default start; the preset takes
half the largest rate whose whole path stays inside the plotted domain, so every
optimizer moves visibly without leaving the picture.

    python benchmarks/tune_presets.py [--steps 300]
"""
from __future__ import annotations

import argparse

import numpy as np

from optviz.engine import run_batch
from optviz.optim import LECTURE_FIVE
from optviz.surfaces import get_surface, surface_names

EXTRA = {"momentum": {"momentum": 0.9}, "nesterov": {"momentum": 0.9}}


def tune(surface, name, steps, grid=np.logspace(-6, 0, 25)):
    starts = np.repeat(surface.starts[:1], len(grid), axis=0)
    rec = run_batch(surface, name, {"lr": grid, **EXTRA.get(name, {})}, starts, steps)
    (x0, x1), (y0, y1) = surface.domain
    xy = rec.xy
    inside = ((xy[..., 0] >= x0) & (xy[..., 0] <= x1) & (xy[..., 1] >= y0) & (xy[..., 1] <= y1)).all(axis=0)
    inside &= rec.diverged_at < 0
    if not inside.any():
        return grid[0], rec.loss[-1, 0]
    best = np.flatnonzero(inside).max()
    lr = grid[best] / 2
    final = run_batch(surface, name, {"lr": lr, **EXTRA.get(name, {})}, surface.starts[:1], steps).loss[-1, 0]
    return float(f"{lr:.1g}"), final


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    for sname in surface_names():
        s = get_surface(sname)
        specs = []
        for name in LECTURE_FIVE:
            lr, final = tune(s, name, args.steps)
            extra = ",momentum=0.9" if name in EXTRA else ""
            specs.append(f"{name}:lr={lr:g}{extra}")
            print(f"  {sname:16s} {name:9s} lr={lr:<8g} final loss {final:.4g}")
        print(f"{sname!r}: ({specs!r}, {args.steps}),")


if __name__ == "__main__":
    main()
