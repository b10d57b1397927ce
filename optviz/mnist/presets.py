"""Named training protocols for ``optviz mnist --preset NAME``.

A preset is a set of :class:`~optviz.mnist.train.TrainConfig` fields; options
given on the command line override them.

* ``lecture`` (the default): the CO@Work 2024 lecture notebook's protocol. The
  MLP 784-128-ReLU-10, cross-entropy, batch 32, 15 epochs, a seeded 50,000 /
  10,000 split of the training set; SGD lr 0.01, Momentum lr 0.01 gamma 0.9,
  Nesterov lr 0.01 gamma 0.9, AdaGrad lr 0.01, Adam lr 0.001. Weights are saved
  for the loss landscape with the ``landscape`` snapshot policy (36 snapshots per
  run, about 40 MB per seed in all).
* ``quick``: the same five, one epoch on the first 5,000 training images, for
  trying things in seconds (dense snapshots every 20 steps).

Example::

    config = preset_config("lecture", epochs=3)     # a TrainConfig
"""
from __future__ import annotations

from typing import Any, Dict

from ..errors import UnknownName
from .config import LECTURE_OPTIMIZERS, TrainConfig

__all__ = ["PRESETS", "LECTURE_OPTIMIZERS", "preset_fields", "preset_config"]


PRESETS: Dict[str, Dict[str, Any]] = {
    "lecture": {
        "description": "the lecture notebook: MLP 784-128-10, batch 32, 15 epochs, the five optimizers",
        "optimizers": list(LECTURE_OPTIMIZERS),
        "model": "mlp",
        "epochs": 15,
        "batch_size": 32,
        "seeds": [0],
        "snapshots": "landscape",
    },
    "quick": {
        "description": "a smoke run: the lecture's five, 1 epoch on 5,000 training images",
        "optimizers": list(LECTURE_OPTIMIZERS),
        "model": "mlp",
        "epochs": 1,
        "batch_size": 32,
        "seeds": [0],
        "subset": 5000,
        "snapshots": "dense",
        "snapshot_every": 20,
    },
}


def preset_fields(name: str) -> Dict[str, Any]:
    """The :class:`TrainConfig` fields of preset ``name`` (a fresh copy)."""
    if name not in PRESETS:
        raise UnknownName("preset", name, PRESETS)
    fields = {k: (list(v) if isinstance(v, list) else v) for k, v in PRESETS[name].items() if k != "description"}
    fields["preset"] = name
    return fields


def preset_config(name: str = "lecture", **overrides):
    """A :class:`~optviz.mnist.train.TrainConfig` of preset ``name`` with ``overrides`` on top
    (``None`` values are ignored, so CLI options that were not given can be passed through)."""
    fields = preset_fields(name)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**fields)
