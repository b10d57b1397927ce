"""Run folders that fit on a laptop: the landscape snapshot policy vs dense snapshots.

The lecture preset (the five optimizers, one seed) is trained for ``--epochs`` epochs
(default 2) twice, the same training both times, with

* **dense** snapshots: the weights every 50 steps (``--snapshots dense``, optviz 0.1's
  default), and
* the **default** policy (``--snapshots landscape``: steps 0, 1, 10, 100, 1000, ... and two
  per epoch, stored as float16 offsets from the initial weights),

and the landscape pipeline builds its PCA plane from each (``compute_landscape``, a
small grid: only the plane and the projections are compared). Printed: each folder's
size and snapshot count, the loss of the final weights as stored (float16 offsets) vs
exact, and the gaps in percentage points between the two landscapes: the PCA explained
variance of each axis and every path's off-plane residual at its end.

    python benchmarks/run_size.py [--epochs 2] [--subset N]

Lines: ``megabytes_per_seed_epoch: X`` (the default policy's folder / seeds / epochs;
target <= 7, i.e. <= 100 MB for the 15-epoch lecture), ``pca_variance_gap_pp: Y`` and
``residual_gap_pp: Z`` (targets <= 1 each).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from mnist_data import load_data  # beside this script
from optviz.landscape import compute_landscape
from optviz.mnist.presets import preset_config
from optviz.mnist.results import disk_usage, load_snapshots
from optviz.mnist.train import train

def folder_mb(path) -> float:
    return sum(b for _, _, b in disk_usage(path)) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--subset", type=int, default=None, help="train on N images (a quick check)")
    ap.add_argument("--grid", type=int, default=5)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or str(Path(tmp) / "data")
        data = load_data(data_dir, args.subset)
        folders = {}
        for policy, extra in (("dense", {"snapshots": "dense", "snapshot_every": 50, "snapshot_dtype": "float32"}),
                              ("default", {})):
            config = preset_config("lecture", epochs=args.epochs, data_dir=data_dir, **extra)
            folders[policy] = Path(tmp) / policy
            train(config, folders[policy], data=data)
        lands = {k: compute_landscape(f, grid=args.grid, subset=500, cache=False, data=data) for k, f in folders.items()}
        snaps = {k: load_snapshots(f) for k, f in folders.items()}
        count = {k: np.mean([len(s) for s in v.values()]) for k, v in snaps.items()}
        sizes = {k: folder_mb(f) for k, f in folders.items()}
        for k in folders:
            print(f"{k:>8}: {sizes[k]:7.1f} MB, {count[k]:.0f} snapshots per run, PCA "
                  f"{', '.join(f'{100 * e:.2f} %' for e in lands[k].plane['explained'])}")
        res = {k: {p.run: p.residual_final for p in v.paths} for k, v in lands.items()}
        for run in res["dense"]:
            print(f"   {run:<12} off-plane at the end: dense {100 * res['dense'][run]:5.2f} %, "
                  f"default {100 * res['default'][run]:5.2f} %")
        # the stored (float16 offset) final weights against the exact ones in the checkpoint
        from optviz.mnist.models import build_model
        from optviz.mnist.results import RunDir
        from optviz.mnist.train import evaluate

        x, y = data.val[0][:2000], data.val[1][:2000]
        rel = []
        for run, s in snaps["default"].items():
            model = build_model("mlp")
            model.load_state_dict(RunDir.open(folders["default"]).load_checkpoint(run)["model"])
            exact = evaluate(model, x, y)[0]
            stored = evaluate(s.load_into(build_model("mlp"), -1), x, y)[0]
            rel.append(abs(stored - exact) / exact)
    gap_var = 100 * float(np.max(np.abs(np.array(lands["dense"].plane["explained"])
                                        - np.array(lands["default"].plane["explained"]))))
    gap_res = 100 * max(abs(res["dense"][r] - res["default"][r]) for r in res["dense"])
    print(f"dense_megabytes_per_seed_epoch: {sizes['dense'] / args.epochs:.1f}")
    print(f"snapshot_loss_rel_error: {max(rel):.1e}")
    print(f"pca_variance_gap_pp: {gap_var:.2f}")
    print(f"residual_gap_pp: {gap_res:.2f}")
    print(f"megabytes_per_seed_epoch: {sizes['default'] / args.epochs:.2f}")


if __name__ == "__main__":
    main()
