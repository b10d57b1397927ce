"""The benchmark scripts still run (tiny sizes) and end with their ratio line
(mnist_epoch.py needs a full MNIST epoch, so it is left to a manual run).

They measure nothing here; this only keeps them from rotting as the library changes.
The real measurements are in the README (run each script without arguments).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "optimizer_step": (["--repeats", "1", "--samples", "320", "--no-compile"], "worst_ratio_vs_torch_fused:"),
    "sweep": (["--sample", "2", "--steps", "5"], "speedup_vs_torch_loop:"),
    "render": (["--repeats", "1", "--frames", "3", "--style", "paper"], "gif_megabytes:"),
    "landscape": (["--grid", "5", "--subset", "64", "--sample", "3"], "batched_seconds:"),
    "explore": (["--repeats", "2", "--steps", "20"], "scene_ms:"),
    "data_load": (["--repeats", "1", "--train", "600"], "verified_over_trusted:"),
    "sharpness": (["--images", "64", "--repeats", "1", "--small-hidden", "1"], "speedup_vs_explicit_hessian:"),
    # these need the MNIST files (shared/datasets/mnist): skipped without them
    "stacked": (["--repeats", "1", "--subset", "320", "--seeds", "1"], "lecture_3seed_seconds:"),
    "run_size": (["--epochs", "1", "--subset", "640", "--grid", "3"], "megabytes_per_seed_epoch:"),
    "tune_scale": (["--grid", "1", "--subset", "256", "--epochs", "1"], "ray_overhead_ratio:"),
}
NEEDS_MNIST = {"stacked", "run_size", "tune_scale"}
NEEDS = {"tune_scale": "ray"}
SHARED_MNIST = ROOT.parent / "shared" / "datasets" / "mnist"


@pytest.mark.parametrize("name", CASES)
def test_benchmark_runs_and_prints_its_ratio(name, tmp_path):
    if name in NEEDS_MNIST and not SHARED_MNIST.is_dir():
        pytest.skip("shared/datasets/mnist is not here")
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    args, last_key = CASES[name]
    # PYTHONPATH: the scripts import the optviz of this tree (not another checkout installed in the venv)
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args], capture_output=True,
                         text=True, cwd=tmp_path, timeout=600, env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin",
                                                                     "OPTVIZ_DATA_DIR": str(tmp_path / "data"),
                                                                     "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    assert any(l.startswith(last_key) for l in lines[-2:]), out.stdout[-1000:]
    value = float(next(l for l in lines if l.startswith(last_key)).split(":")[1])
    assert value >= 0
