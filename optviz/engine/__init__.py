"""The 2-D engine: runs optimizers across surfaces and records trajectories."""
from .newton import METHODS as SECOND_ORDER
from .race import BatchRecord, parse_specs, race, run_batch
from .trajectory import Trajectory

__all__ = ["race", "run_batch", "parse_specs", "BatchRecord", "Trajectory", "SECOND_ORDER"]
