"""A training run in the explorer (``optviz explore --run RUN_DIR``): its loss landscape and paths.

The landscape is :func:`optviz.landscape.compute_landscape`'s (cached in the run
folder, as ``optviz landscape`` caches it), so the page shows the same
:class:`~optviz.surfaces.GridField` and the same paths as that command's figures, and
a step slider moves along the recorded weight snapshots. Nothing is recomputed while
the page is open: the paths are a record of training, not a race to rerun.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Optional

__all__ = ["RunSource"]


@dataclass
class RunSource:
    run_dir: Path
    plane: str
    grid: int
    subset: int
    land: object            # optviz.landscape.compute.Landscape
    options: dict           # further compute_landscape options (the command line passes none of them)

    @classmethod
    def load(cls, run_dir, plane: str = "pca", grid: int = 51, subset: int = 2000,
             log: Optional[Callable[[str], None]] = None, **options) -> "RunSource":
        """Compute (or read from the run's cache) the landscape of ``run_dir``."""
        from ..landscape import compute_landscape

        land = compute_landscape(run_dir, plane=plane, grid=grid, subset=subset, log=log, **options)
        return cls(Path(run_dir), plane, int(grid), int(subset), land, dict(options))

    def field(self):
        """The landscape as a :class:`~optviz.surfaces.GridField`, built once (every request reads it)."""
        return self._field

    def trajectories(self):
        """The paths in the run's order (the page numbers them so; ``hide`` refers to these numbers),
        built once: the same list for every request, not to be changed."""
        return self._trajectories

    @cached_property
    def _field(self):
        return self.land.field()

    @cached_property
    def _trajectories(self):
        return self.land.trajectories(order="run")

    def step_values(self):
        """The training step of each path point (the longest path's snapshots)."""
        from ..landscape.pipeline import _step_values

        return _step_values(self.land)

    @property
    def title(self) -> str:
        return self.land.title

    def command(self, output: str, style: str, frames: Optional[int] = None) -> str:
        """``optviz landscape ...``: the command that writes the same file."""
        args = ["optviz", "landscape", str(self.run_dir)]
        if self.plane != "pca":
            args += ["--plane", self.plane]
        if self.grid != 51:
            args += ["--grid", str(self.grid)]
        if self.subset != 2000:
            args += ["--subset", str(self.subset)]
        if style != "slides":
            args += ["--style", style]
        if frames is not None and frames != 120:
            args += ["--frames", str(frames)]
        return shlex.join(args + ["-o", output])
