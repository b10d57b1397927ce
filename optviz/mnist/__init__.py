"""The MNIST harness: verified data files, preloaded splits and seeded batches, models.

* :mod:`.sources`: getting the IDX files (``ensure_dataset``, ``dataset_status``);
* :mod:`.dataset`: ``MNISTData.load(...)``, ``iterate_batches(...)``;
* :mod:`.models`: ``MODELS``, ``build_model(name, seed)``;
* :mod:`.train`: ``TrainConfig``, ``train.train(config, run_dir)``, ``resume(run_dir)``:
  optimizers side by side, from the same weights, on the same batches;
* :mod:`.presets`: ``PRESETS`` (``lecture``, ``quick``), ``preset_config(name, **overrides)``;
* :mod:`.snapshots`: when weights are saved for the landscape (``SnapshotPolicy``), and how;
* :mod:`.divergence`: when a run has diverged (``DivergenceRule``), for both trainers;
* :mod:`.stacked`: many runs as one batched model (``StackedNetwork``) and their optimizer groups;
* :mod:`.results`: the run folder (``RunDir``), ``load_snapshots(run_dir)`` for the landscape;
* :mod:`.report`: ``write_report(run_dir, style)``: the summary table and the figures.

Names are imported lazily, so ``import optviz.mnist`` does not import torch.
"""
from __future__ import annotations

from ..lazy import lazy_exports

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
    "TrainConfig": "train",
    "TrainingInterrupted": "train",
    "resume": "train",
    "evaluate": "train",
    "PRESETS": "presets",
    "preset_config": "presets",
    "RunDir": "results",
    "Snapshots": "snapshots",
    "load_snapshots": "results",
    "SnapshotPolicy": "snapshots",
    "DivergenceRule": "divergence",
    "StackedNetwork": "stacked",
    "write_report": "report",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
