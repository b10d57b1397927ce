"""What verifying the data on every load costs: ``MNISTData.load`` from a warm cache.

Since bytes can rot while size and mtime stay the same, every load rehashes the
raw IDX files (SHA-256) and checks a CRC-32 of each cached tensor before anything
trains on them. This script measures that load against the same load without the
checks (the cache memory-mapped and trusted, as before), in one process:

    python benchmarks/data_load.py                         # synthetic files of MNIST's size
    python benchmarks/data_load.py --data-dir ~/.cache/optviz --dataset mnist   # the real files

Synthetic files are written as Fashion-MNIST (same sizes; no canonical checksum,
so random images pass its structure check). Prints ``name: value`` lines; the
last ones are the overhead in seconds per load and the ratio of the two loads.
"""
from __future__ import annotations

import argparse
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optviz.mnist import dataset as ds  # noqa: E402
from optviz.mnist import sources  # noqa: E402


def shrink(n_train: int) -> None:
    """Make the synthetic dataset ``n_train`` + ``n_train // 6`` images (a tiny run for the tests)."""
    import dataclasses

    spec = sources.get_spec("fashion_mnist")
    files = tuple(dataclasses.replace(f, count=n_train if f.name.startswith("train") else max(n_train // 6, 1))
                  for f in spec.files)
    sources.DATASETS["fashion_mnist"] = dataclasses.replace(spec, files=files)


def write_synthetic(root: Path) -> Path:
    """Four IDX files with Fashion-MNIST's exact sizes, random content, under ``root``."""
    rng = np.random.default_rng(0)
    folder = sources.raw_dir(sources.get_spec("fashion_mnist"), root)
    folder.mkdir(parents=True, exist_ok=True)
    for f in sources.get_spec("fashion_mnist").files:
        if f.kind == "images":
            body = struct.pack(">4I", 2051, f.count, 28, 28) + rng.integers(0, 256, f.count * 784, np.uint8).tobytes()
        else:
            body = struct.pack(">2I", 2049, f.count) + rng.integers(0, 10, f.count, np.uint8).tobytes()
        (folder / f.name).write_bytes(body)
    return root


def trusted_load(dataset: str, root: Path, val: int):
    """The load without the checks (as it was before them): stamps trusted, the cache
    memory-mapped and believed, then split as ``MNISTData.load`` splits it."""
    import torch

    sources.ensure_dataset(dataset, root, download=False)                # trusts size and mtime
    blob = torch.load(ds.cache_path(dataset, root), map_location="cpu", mmap=True, weights_only=True)
    data = ds.MNISTData.from_tensors(*(blob[n] for n in ("train_x", "train_y", "test_x", "test_y")), val_size=val)
    return float(data.train[0][-1].sum())


def verified_load(dataset: str, root: Path, val: int):
    data = ds.MNISTData.load(dataset, root, download=False, val_size=val)
    return float(data.train[0][-1].sum())


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="a data folder with the files (default: synthetic)")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--train", type=int, default=60000, help="synthetic training images (60,000 as MNIST)")
    args = parser.parse_args(argv)
    if args.data_dir is None and args.train != 60000:
        shrink(args.train)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_dir or write_synthetic(Path(tmp))
        val = min(10000, sources.get_spec(args.dataset).train_images.count // 6)   # the lecture's 10,000
        verified_load(args.dataset, root, val)     # builds the cache and the stamps
        trusted = median_seconds(lambda: trusted_load(args.dataset, root, val), args.repeats)
        verified = median_seconds(lambda: verified_load(args.dataset, root, val), args.repeats)
        print(f"dataset: {args.dataset} ({'synthetic' if args.data_dir is None else root})")
        print(f"trusted_load_seconds: {trusted:.4f}")
        print(f"verified_load_seconds: {verified:.4f}")
        print(f"verify_overhead_seconds: {verified - trusted:.4f}")
        print(f"verified_over_trusted: {verified / trusted:.3f}")


if __name__ == "__main__":
    main()
