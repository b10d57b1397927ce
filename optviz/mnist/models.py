"""The networks the MNIST comparisons train: a registry of name -> builder.

Each builder is registered where it is defined and returns a fresh
``nn.Sequential`` for inputs ``(B, 1, 28, 28)`` and logits ``(B, 10)``.
Builders import torch inside their bodies, so this module (and the names in
:data:`MODELS`) can be read by the CLI without paying for importing torch.

Example::

    model = build_model("mlp", seed=0)       # the lecture's 784-128-ReLU-10 MLP
    logits = model(torch.zeros(64, 1, 28, 28))   # (64, 10)
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from ..errors import UnknownName

__all__ = ["ModelInfo", "MODELS", "register_model", "build_model", "num_parameters"]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    build: Callable  # () -> torch.nn.Module, initialised from torch's global RNG
    description: str


MODELS: dict[str, ModelInfo] = {}


def register_model(name: str, description: str) -> Callable:
    """Decorator: add a builder to :data:`MODELS` under ``name``."""

    def deco(fn: Callable) -> Callable:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = ModelInfo(name, fn, description)
        return fn

    return deco


@register_model("mlp", "the lecture's MLP: 784-128-ReLU-10 (101,770 parameters)")
def mlp():
    from torch import nn

    return nn.Sequential(
        nn.Flatten(),  # (B, 1, 28, 28) -> (B, 784)
        nn.Linear(784, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


@register_model("deep_mlp", "a deeper MLP: 784-256-128-64-10 with ReLU (242,762 parameters)")
def deep_mlp():
    from torch import nn

    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256),
        nn.ReLU(),
        nn.Linear(256, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


@register_model("cnn", "a small CNN: conv16-pool-conv32-pool-linear (20,490 parameters)")
def cnn():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, padding=1),  # (B, 16, 28, 28)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 16, 14, 14)
        nn.Conv2d(16, 32, kernel_size=3, padding=1),  # (B, 32, 14, 14)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 32, 7, 7)
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )


def build_model(name: str, seed: Optional[int] = None):
    """A fresh model ``name``; with ``seed``, its initial weights depend on ``seed`` alone.

    The seeded build runs under ``torch.random.fork_rng``, so it neither reads
    nor advances the global RNG. Without ``seed`` it draws from the global RNG,
    as ``nn.Module`` constructors do.
    """
    try:
        info = MODELS[name]
    except KeyError:
        raise UnknownName("model", name, MODELS) from None
    if seed is None:
        return info.build()
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return info.build()


def num_parameters(model) -> int:
    """The number of trainable scalars of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
