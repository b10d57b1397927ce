"""MNIST preloaded once as normalised tensors, split, and cut into seeded minibatches.

No DataLoader and no per-sample transforms: each split is one float32 tensor
``(N, 1, 28, 28)`` with the lecture notebook's preprocessing
``ToTensor()`` + ``Normalize((0.5,), (0.5,))``, i.e. ``(x / 255 - 0.5) / 0.5``
in ``[-1, 1]``, bit for bit, and int64 labels. A minibatch is an index slice.

Seeds, precisely:

* ``split_seed``: the 60,000 training images are split by
  ``perm = torch.randperm(60000, generator=torch.Generator().manual_seed(split_seed))``;
  train is ``perm[:60000 - val_size]`` and validation is the rest, in that
  order. This is exactly what the lecture's
  ``random_split(train_set, [50000, 10000], generator=torch.Generator().manual_seed(split_seed))``
  selects. The 10,000 test images are held out, in file order.
* ``(seed, epoch)``: the batch order of an epoch is a permutation drawn from a
  private ``torch.Generator`` seeded with a hash of the pair (numpy's
  ``SeedSequence([seed, epoch])``). It depends on nothing else (not the
  optimizer, the model, or the global RNG, which it never touches), so every
  optimizer of a comparison run with the same ``seed`` sees the same batches,
  and each epoch gets a different order.

The normalised tensors are cached in ``<data dir>/<MNIST|FashionMNIST>/optviz/``
(about 220 MB, written atomically, keyed by the SHA-256 of the raw files and
a format version), so a second load memory-maps them instead of re-decoding.

Nothing trains on bytes that were not verified, checked cheaply but surely on
every load: the raw files are rehashed (SHA-256 of MNIST's 55 MB; a file whose
bytes rotted is refetched or refused), the raw bytes that are decoded are the
very bytes that were hashed, and the cache stores a CRC-32 of each tensor's
bytes, checked on load: a corrupt cache is reported in the log and rebuilt,
never mistaken for a diverging optimizer. All of it costs about 0.15 s a load
(``benchmarks/data_load.py``: 0.58 s against 0.42 s unchecked, warm cache).

Example::

    data = MNISTData.load("mnist")                 # .train, .val, .test: (x, y)
    x, y = data.train
    for xb, yb in iterate_batches(x, y, batch_size=64, seed=0, epoch=0):
        ...                                        # xb: (64, 1, 28, 28), yb: (64,)
"""
from __future__ import annotations

import dataclasses
import hashlib
import zlib
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from ..errors import InvalidValue, OptvizError
from ..io import atomic_path
from . import sources

__all__ = [
    "MEAN",
    "STD",
    "MNISTData",
    "normalize",
    "split_indices",
    "epoch_generator",
    "batch_order",
    "num_batches",
    "iterate_batches",
    "cache_path",
]

MEAN, STD = 0.5, 0.5  # Normalize((0.5,), (0.5,)) of the lecture notebook
CACHE_VERSION = 2   # 2: a CRC-32 of every tensor's bytes, checked on load

Split = tuple  # (x: float32 (N, 1, 28, 28), y: int64 (N,))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` -> float32 ``(N, 1, 28, 28)``, as ToTensor + Normalize((0.5,), (0.5,))."""
    if images.dtype != torch.uint8 or images.dim() != 3:
        raise InvalidValue(f"expected uint8 images of shape (N, H, W), got {images.dtype} {tuple(images.shape)}")
    x = images.unsqueeze(1).to(torch.float32).div_(255)  # ToTensor
    return x.sub_(MEAN).div_(STD)  # Normalize


def _check_int(name: str, value, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidValue(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def split_indices(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train_idx, val_idx)``: the seeded split of ``range(n)`` (= ``random_split``'s)."""
    val_size = _check_int("val_size", val_size)
    if val_size >= n:
        raise InvalidValue(f"val_size must be smaller than the {n:,} training images, got {val_size:,}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(_check_int("split_seed", seed)))
    return perm[: n - val_size], perm[n - val_size:]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A private CPU generator for the batch order of ``epoch`` under ``seed``."""
    mixed = np.random.SeedSequence([_check_int("seed", seed), _check_int("epoch", epoch)])
    return torch.Generator().manual_seed(int(mixed.generate_state(1, np.uint64)[0]))


def batch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The permutation of ``range(n)`` that epoch ``epoch`` visits (int64, on the CPU)."""
    return torch.randperm(n, generator=epoch_generator(seed, epoch))


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`iterate_batches` yields for ``n`` examples."""
    batch_size = _check_int("batch_size", batch_size, low=1)
    return n // batch_size if drop_last else -(-n // batch_size)


def iterate_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0, epoch: int = 0,
                    shuffle: bool = True, drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Minibatches ``(x[idx], y[idx])`` of one epoch.

    With ``shuffle``, ``idx`` runs through :func:`batch_order` ``(len(x), seed, epoch)``;
    without, batches are contiguous views in order (for evaluation in large
    batches; ``seed`` and ``epoch`` are then unused). The last batch is smaller
    unless ``drop_last``. Arguments are checked here, not at the first ``next()``.
    """
    batch_size = _check_int("batch_size", batch_size, low=1)
    if len(x) != len(y):
        raise InvalidValue(f"x and y differ in length: {len(x)} != {len(y)}")
    order = batch_order(len(x), seed, epoch).to(x.device) if shuffle else None
    stop = num_batches(len(x), batch_size, drop_last) * batch_size
    return _batches(x, y, batch_size, order, stop)


def _batches(x, y, batch_size, order, stop):
    for start in range(0, min(stop, len(x)), batch_size):
        if order is None:
            yield x[start:start + batch_size], y[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            yield x[idx], y[idx]


def cache_path(dataset: str = "mnist", data_dir=None) -> Path:
    """Where :meth:`MNISTData.load` caches the normalised tensors of ``dataset``."""
    spec = sources.get_spec(dataset)
    return sources.cache_dir(spec, sources.resolve_data_dir(data_dir)) / f"normalized-v{CACHE_VERSION}.pt"


def _read_idx(path: Path, fspec: sources.FileSpec, sha256: str) -> torch.Tensor:
    """One IDX file as a uint8 tensor, decoded from the bytes whose SHA-256 is checked
    here (so what trains is what was verified, whatever happened to the file since)."""
    data = Path(path).read_bytes()
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise OptvizError(f"{path}: its bytes changed while it was being read (expected sha256 {sha256[:12]}…); "
                          "run `optviz data info` to check the files")
    offset, shape = (16, (fspec.count, sources.ROWS, sources.COLS)) if fspec.kind == "images" else (8, (fspec.count,))
    return torch.frombuffer(bytearray(data[offset:]), dtype=torch.uint8).reshape(shape)


def _read_raw(status: sources.DatasetStatus) -> tuple:
    """(train uint8 (N,28,28), train labels, test uint8, test labels), from the verified files."""
    return tuple(_read_idx(f.path, f.spec, f.sha256) for f in status.files)


def _crc(t: torch.Tensor) -> int:
    return zlib.crc32(memoryview(t.contiguous().numpy()).cast("B"))


def _load_normalized(status: sources.DatasetStatus, cache: bool,
                     log: Optional[Callable[[str], None]] = None) -> tuple:
    """(train x, train y, test x, test y), normalised; from the cache when it matches the
    files and its checksums hold, else rebuilt from the raw files (and cached again)."""
    path = cache_path(status.spec.name, status.root)
    key = {"version": CACHE_VERSION, "mean": MEAN, "std": STD, "files": status.fingerprint()}
    names = ("train_x", "train_y", "test_x", "test_y")
    if cache and path.is_file():
        problem = ""
        try:
            blob = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
            if blob.get("key") == key:
                tensors = tuple(blob[n] for n in names)
                crcs = blob.get("crc32", {})
                bad = [n for n, t in zip(names, tensors) if crcs.get(n) != _crc(t)]
                if not bad:
                    return tensors
                problem = f"corrupt ({', '.join(bad)} fail their checksum)"
        except Exception as exc:  # noqa: BLE001  (truncated, garbage, another version)
            problem = f"unreadable ({type(exc).__name__})"
        if problem and log:
            log(f"{path}: preprocessed cache {problem}; rebuilding it from the raw files")
    xtr, ytr, xte, yte = _read_raw(status)
    tensors = (normalize(xtr), ytr.to(torch.int64), normalize(xte), yte.to(torch.int64))
    if cache:
        try:  # best effort: a read-only data folder only costs speed
            with atomic_path(path) as tmp:
                torch.save({"key": key, "crc32": {n: _crc(t) for n, t in zip(names, tensors)},
                            **dict(zip(names, tensors))}, tmp)
        except (OSError, OptvizError):
            pass
    return tensors


@dataclasses.dataclass(frozen=True, repr=False)
class MNISTData:
    """The three splits of an MNIST-like dataset, each ``(x, y)``: float32 ``(N, 1, 28, 28)``, int64 ``(N,)``."""

    train: Split
    val: Split
    test: Split
    dataset: str = "mnist"
    split_seed: int = 0
    classes: tuple = tuple(str(d) for d in range(10))

    @classmethod
    def load(cls, dataset: str = "mnist", data_dir=None, val_size: int = 10000, split_seed: int = 0, *,
             cache: bool = True, download: bool = True,
             log: Optional[Callable[[str], None]] = None) -> "MNISTData":
        """Load ``dataset`` ("mnist" or "fashion_mnist"), fetching its files first if needed.

        ``val_size`` images of the 60,000 training images (chosen by ``split_seed``,
        see the module docstring) form the validation split; the test split is
        the 10,000 test images. ``download=False`` never touches the network.
        """
        spec = sources.get_spec(dataset)
        # verify=True: rehash the raw files; a matching size and mtime proves nothing about the bytes
        status = sources.ensure_dataset(dataset, data_dir, download=download, log=log, verify=True)
        xtr, ytr, xte, yte = _load_normalized(status, cache, log)
        return cls.from_tensors(xtr, ytr, xte, yte, val_size=val_size, split_seed=split_seed,
                                dataset=spec.name, classes=spec.classes)

    @classmethod
    def from_tensors(cls, train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor,
                     test_labels: torch.Tensor, *, val_size: int = 10000, split_seed: int = 0,
                     dataset: str = "mnist", classes: Optional[tuple] = None) -> "MNISTData":
        """Split preloaded tensors: uint8 ``(N, 28, 28)`` images are normalised,
        float ``(N, 1, 28, 28)`` ones are taken as already normalised."""
        if train_images.dtype == torch.uint8:
            train_images, test_images = normalize(train_images), normalize(test_images)
        train_labels, test_labels = train_labels.to(torch.int64), test_labels.to(torch.int64)
        tr, va = split_indices(len(train_images), val_size, split_seed)
        return cls(
            train=(train_images[tr], train_labels[tr]),
            val=(train_images[va], train_labels[va]),
            test=(test_images, test_labels),
            dataset=dataset,
            split_seed=split_seed,
            classes=tuple(classes) if classes is not None else cls.classes,
        )

    def subset(self, n: int, n_eval: Optional[int] = None) -> "MNISTData":
        """The first ``n`` training and ``n_eval`` (default ``n``) validation and test examples.

        The training and validation splits are already in random order, so their
        heads are random samples. The tensors are copies: the full ones can be freed.
        """
        n = _check_int("n", n, low=1)
        n_eval = n if n_eval is None else _check_int("n_eval", n_eval)

        def head(split, k):
            return split[0][:k].clone(), split[1][:k].clone()

        return dataclasses.replace(self, train=head(self.train, n), val=head(self.val, n_eval),
                                   test=head(self.test, n_eval))

    def to(self, device) -> "MNISTData":
        """All splits on ``device`` (e.g. "cuda"), for batches without host-to-device copies."""
        move = lambda split: (split[0].to(device), split[1].to(device))  # noqa: E731
        return dataclasses.replace(self, train=move(self.train), val=move(self.val), test=move(self.test))

    @property
    def sizes(self) -> dict:
        return {"train": len(self.train[0]), "val": len(self.val[0]), "test": len(self.test[0])}

    def __repr__(self) -> str:
        s = self.sizes
        return (f"MNISTData({self.dataset}: train {s['train']:,}, val {s['val']:,}, test {s['test']:,}; "
                f"split_seed={self.split_seed}, device={self.train[0].device})")
