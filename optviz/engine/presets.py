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
    # tuned by hand for the lecture's three showcase surfaces
    "rosenbrock": (["sgd:lr=2e-3", "momentum:lr=1e-3,momentum=0.9", "nesterov:lr=1e-3,momentum=0.9",
                    "adagrad:lr=0.5", "adam:lr=0.1"], 400),
    "beale": (["sgd:lr=1e-3", "momentum:lr=1e-3,momentum=0.9", "nesterov:lr=1e-3,momentum=0.9",
               "adagrad:lr=0.3", "adam:lr=0.05"], 300),
    "saddle": (["sgd:lr=0.01", "momentum:lr=0.01,momentum=0.9", "nesterov:lr=0.01,momentum=0.9",
                "adagrad:lr=0.1", "adam:lr=0.01"], 200),
    # the lecture's gradient-clipping question: momentum flies off the wall, clipped momentum does not
    "cliff": (["sgd:lr=0.1", "momentum:lr=0.1,momentum=0.9", "momentum:lr=0.1,momentum=0.9,clip_norm=1",
               "adagrad:lr=0.5", "adam:lr=0.1"], 300),
    # from benchmarks/tune_presets.py: half the largest rate whose path stays in the picture
    "monkey_saddle": (["sgd:lr=0.002", "momentum:lr=0.0005,momentum=0.9", "nesterov:lr=0.0003,momentum=0.9",
                       "adagrad:lr=0.02", "adam:lr=0.002"], 300),
    "himmelblau": (["sgd:lr=0.02", "momentum:lr=0.009,momentum=0.9", "nesterov:lr=0.005,momentum=0.9",
                    "adagrad:lr=0.5", "adam:lr=0.5"], 300),
    "booth": (["sgd:lr=0.03", "momentum:lr=0.03,momentum=0.9", "nesterov:lr=0.02,momentum=0.9",
               "adagrad:lr=0.5", "adam:lr=0.5"], 300),
    "six_hump_camel": (["sgd:lr=0.09", "momentum:lr=0.009,momentum=0.9", "nesterov:lr=0.03,momentum=0.9",
                        "adagrad:lr=0.5", "adam:lr=0.3"], 300),
    "rastrigin": (["sgd:lr=0.005", "momentum:lr=0.003,momentum=0.9", "nesterov:lr=0.003,momentum=0.9",
                   "adagrad:lr=0.5", "adam:lr=0.3"], 300),
    "ackley": (["sgd:lr=0.2", "momentum:lr=0.03,momentum=0.9", "nesterov:lr=0.02,momentum=0.9",
                "adagrad:lr=0.5", "adam:lr=0.5"], 300),
    "goldstein_price": (["sgd:lr=9e-06", "momentum:lr=9e-06,momentum=0.9", "nesterov:lr=5e-06,momentum=0.9",
                         "adagrad:lr=0.2", "adam:lr=0.2"], 300),
    "long_valley": (["sgd:lr=0.02", "momentum:lr=0.03,momentum=0.9", "nesterov:lr=0.009,momentum=0.9",
                     "adagrad:lr=0.5", "adam:lr=0.5"], 300),
}
_GENERIC = (["sgd:lr=1e-3", "momentum:lr=1e-3,momentum=0.9", "nesterov:lr=1e-3,momentum=0.9",
             "adagrad:lr=0.1", "adam:lr=0.05"], 300)


def lecture_specs(surface_name: str) -> List[str]:
    """The lecture's five optimizers with settings tuned for ``surface_name``."""
    return list(_LECTURE.get(surface_name, _GENERIC)[0])


def default_steps(surface_name: str) -> int:
    return _LECTURE.get(surface_name, _GENERIC)[1]
