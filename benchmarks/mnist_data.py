"""The MNIST files for the benchmarks: imported from ``shared/datasets/mnist`` beside the
repository when it is there, else fetched as ``optviz data fetch`` does.

    from mnist_data import ensure_data, load_data
    data_dir = ensure_data(folder)                 # a data folder holding MNIST/raw/, verified
    data = load_data(data_dir, subset=None)        # an MNISTData (optionally the first N images)
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from optviz.mnist import sources

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"


def ensure_data(data_dir):
    """The verified MNIST files in ``data_dir``; returns their status."""
    if SHARED.is_dir():
        return sources.ensure_dataset("mnist", data_dir, source=SHARED)
    return sources.ensure_dataset("mnist", data_dir, log=print)  # = optviz data fetch


def load_data(data_dir, subset: Optional[int] = None):
    """``MNISTData`` of ``data_dir`` (fetched first if needed); with ``subset``, its first images."""
    from optviz.mnist.dataset import MNISTData

    ensure_data(data_dir)
    data = MNISTData.load("mnist", data_dir)
    return data.subset(subset, min(subset, 10000)) if subset else data
