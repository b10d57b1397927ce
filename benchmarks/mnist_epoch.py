"""One epoch of the lecture's MNIST protocol: optviz's harness vs the lecture notebook's own loop.

Both sides train the lecture's MLP (784-128-ReLU-10, the same initial weights)
with SGD lr 0.01, batch 32, for one epoch on the same 50,000 / 10,000 split,
then evaluate on the 10,000 validation images, in one process, in turn:

* **notebook**: the lecture notebook's loop, as written there: torchvision's
  ``datasets.MNIST`` with ``transforms.Compose([ToTensor(), Normalize((0.5,), (0.5,))])``,
  ``random_split`` 50k/10k, ``DataLoader(batch_size=32, shuffle=True)`` for training
  (and ``batch_size=32`` without shuffling for validation), ``torch.optim.SGD``,
  and ``.item()`` on every batch's loss;
* **optviz**: ``optviz.mnist.train`` with the lecture preset's settings for SGD: the
  shared core behind ``TorchOptimizer``, preloaded normalised tensors sliced per
  batch, losses kept on the tensor side, validation in batches of 2,000 under
  ``inference_mode``. Its time is the whole ``train()`` call: also the evaluation
  of the initial weights, the test set, weight snapshots every 50 steps, the
  checkpoint and every file it writes.

Data setup (reading the files) is outside both timings. Both run with the same
number of torch threads (``--threads``, default 1, the harness's default).
Repeats are interleaved; the best time of each side counts.

The real MNIST files are needed: they are imported from ``shared/datasets/mnist``
next to the repository when present, else fetched as ``optviz data fetch`` does.

    python benchmarks/mnist_epoch.py [--repeats 2] [--threads 1] [--data-dir DIR]

The last line is ``speedup_vs_notebook_loop: X`` (notebook time / optviz time).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from mnist_data import ensure_data  # beside this script
from optviz.mnist.dataset import MNISTData
from optviz.mnist.models import build_model
from optviz.mnist.train import TrainConfig, train

def notebook_epoch(root: Path, seed: int = 0):
    """The lecture notebook's cells, one epoch: returns (seconds, val accuracy)."""
    from torch.utils.data import DataLoader, random_split
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    full_train = datasets.MNIST(root=str(root), train=True, download=False, transform=transform)
    train_set, val_set = random_split(full_train, [50000, 10000], generator=torch.Generator().manual_seed(0))
    train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=32, shuffle=False)
    model = build_model("mlp", seed=seed)  # nn.Sequential(Flatten, Linear(784, 128), ReLU, Linear(128, 10))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    start = time.perf_counter()
    model.train()
    running_loss = 0.0
    for images, labels in train_loader:
        optimizer.zero_grad()
        outputs = model(images)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    model.eval()
    val_loss, correct, total = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in val_loader:
            outputs = model(images)
            val_loss += criterion(outputs, labels).item()
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return time.perf_counter() - start, correct / total


def optviz_epoch(data: MNISTData, threads: int, seed: int = 0):
    """optviz's harness, one epoch of SGD lr 0.01: returns (seconds, val accuracy, in-loop seconds)."""
    config = TrainConfig(optimizers=["sgd:lr=0.01"], epochs=1, batch_size=32, seeds=[seed], snapshot_every=50,
                         num_threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train(config, Path(tmp) / "run", data=data)
        seconds = time.perf_counter() - start
        from optviz.mnist.results import RunDir

        epoch = [r for r in RunDir.open(result.run_dir).records("epoch") if r["epoch"] == 1][0]
    return seconds, epoch["val_acc"], epoch["wall_time"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()

    status = ensure_data(args.data_dir)
    root = status.root
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = MNISTData.load("mnist", root)
    load_s = time.perf_counter() - t0
    print(f"torch {torch.__version__}, {args.threads} thread(s), data in {root}; optviz data load {load_s:.2f} s "
          f"(not timed below)")
    print("one epoch of the lecture protocol (MLP 784-128-10, SGD lr 0.01, batch 32, 50k train + 10k val)\n")

    nb_times, ov_times = [], []
    for rep in range(args.repeats):
        s, acc = notebook_epoch(root)
        torch.set_num_threads(args.threads)
        nb_times.append(s)
        print(f"  repeat {rep + 1}: notebook loop {s:7.2f} s  (val acc {100 * acc:.2f}%)")
        s, acc, inner = optviz_epoch(data, args.threads)
        ov_times.append(s)
        print(f"  repeat {rep + 1}: optviz        {s:7.2f} s  (val acc {100 * acc:.2f}%; "
              f"the epoch itself {inner:.2f} s)")
    nb, ov = min(nb_times), min(ov_times)
    print(f"\nnotebook loop (DataLoader + per-sample transforms, .item() per batch): {nb:.2f} s")
    print(f"optviz harness (preloaded tensors, whole train() call):             {ov:.2f} s")
    print(f"speedup_vs_notebook_loop: {nb / ov:.2f}")


if __name__ == "__main__":
    main()
