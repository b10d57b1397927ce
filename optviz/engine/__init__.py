"""The 2-D engine: runs optimizers across surfaces and records trajectories.

Modules, each reading only the ones above it: ``record`` (the arrays of a run, the box
a path stays in), ``trajectory`` (one path), ``newton`` (second-order baselines),
``external`` (torch.optim and scipy.optimize), ``specs`` (one parser for all of them),
``race`` (the batched loop and the race), ``sweep``, ``presets``.
"""
from .newton import METHODS as SECOND_ORDER
from .race import BatchRecord, race, run_batch
from .specs import OptimizerSpec, parse_spec, parse_specs, scipy_spec, torch_spec
from .trajectory import Trajectory

__all__ = ["race", "run_batch", "parse_spec", "parse_specs", "OptimizerSpec", "torch_spec", "scipy_spec",
           "BatchRecord", "Trajectory", "SECOND_ORDER"]
