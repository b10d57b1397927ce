"""Lecture defaults: hyperparameters that let each of the five optimizers show its character.

Chosen by scanning learning rates from each surface's default start (see
``benchmarks/`` and the README): SGD stable but slow, Momentum fast and
overshooting, Nesterov the same with less overshoot, AdaGrad's steps shrinking,
Adam adapting to the valley. ``optviz animate rosenbrock`` uses these.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

__all__ = ["lecture_specs", "default_steps"]

_LECTURE: Dict[str, Tuple[List[str], int]] = {
    "rosenbrock": (["sgd:lr=2e-3", "momentum:lr=1e-3,momentum=0.9", "nesterov:lr=1e-3,momentum=0.9",
                    "adagrad:lr=0.5", "adam:lr=0.1"], 400),
    "beale": (["sgd:lr=1e-3", "momentum:lr=1e-3,momentum=0.9", "nesterov:lr=1e-3,momentum=0.9",
               "adagrad:lr=0.3", "adam:lr=0.05"], 300),
    "saddle": (["sgd:lr=0.01", "momentum:lr=0.01,momentum=0.9", "nesterov:lr=0.01,momentum=0.9",
                "adagrad:lr=0.1", "adam:lr=0.01"], 200),
}
_GENERIC = (["sgd:lr=1e-3", "momentum:lr=1e-3,momentum=0.9", "nesterov:lr=1e-3,momentum=0.9",
             "adagrad:lr=0.1", "adam:lr=0.05"], 300)


def lecture_specs(surface_name: str) -> List[str]:
    """The lecture's five optimizers with settings tuned for ``surface_name``."""
    return list(_LECTURE.get(surface_name, _GENERIC)[0])


def default_steps(surface_name: str) -> int:
    return _LECTURE.get(surface_name, _GENERIC)[1]
