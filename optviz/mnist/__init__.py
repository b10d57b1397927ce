"""The MNIST harness: verified data files, preloaded splits and seeded batches, models.

* :mod:`.sources`: getting the IDX files (``ensure_dataset``, ``dataset_status``);
* :mod:`.dataset`: ``MNISTData.load(...)``, ``iterate_batches(...)``;
* :mod:`.models`: ``MODELS``, ``build_model(name, seed)``.

Names are imported lazily, so ``import optviz.mnist`` does not import torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "DATASETS": "sources",
    "ensure_dataset": "sources",
    "dataset_status": "sources",
    "resolve_data_dir": "sources",
    "MNISTData": "dataset",
    "iterate_batches": "dataset",
    "batch_order": "dataset",
    "num_batches": "dataset",
    "normalize": "dataset",
    "MODELS": "models",
    "build_model": "models",
    "num_parameters": "models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
