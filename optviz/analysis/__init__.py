"""Second order and stability: the curvature that decides what first-order methods can do.

In 2-D (numpy, the engine's batched runs):

* :mod:`.thresholds`: each optimizer's stability limit ``lambda_max < c / eta`` on a
  quadratic, and the diagonal preconditioner of the adaptive ones;
* :mod:`.stability`: maps over two hyperparameters (``stability_map``), with the
  theoretical boundary;
* :mod:`.basins`: which minimum (or saddle, or nothing) each start leads to (``basin_map``);
* :mod:`.curvature`: the Hessian's eigenvalues along a path, beside ``c / eta``.

On MNIST (torch, ``torch.func``):

* :mod:`.hessian`: Hessian- and Gauss-Newton-vector products of a model's loss on a fixed
  batch, Lanczos and power iteration for the top eigenvalue, the explicit Hessian of
  tiny models, the memory a full Hessian needs;
* :mod:`.sharpness`: the top eigenvalue at each weight snapshot of a run folder;
* :mod:`.newton_cg`: a Hessian-free (Newton-CG) step;
* :mod:`.second_order`: L-BFGS and Newton-CG beside first-order methods on MNIST.

Names are imported lazily, so ``import optviz.analysis`` does not import torch.
"""
from __future__ import annotations

from ..lazy import lazy_exports

_EXPORTS = {
    "Limit": "thresholds",
    "stability_limit": "thresholds",
    "preconditioner": "thresholds",
    "Axis": "stability",
    "StabilityMap": "stability",
    "stability_map": "stability",
    "stability_maps": "stability",
    "BasinMap": "basins",
    "basin_map": "basins",
    "PathCurvature": "curvature",
    "path_curvature": "curvature",
    "LossCurvature": "hessian",
    "lanczos": "hessian",
    "power_iteration": "hessian",
    "explicit_hessian": "hessian",
    "hessian_memory": "hessian",
    "SharpnessResult": "sharpness",
    "run_sharpness": "sharpness",
    "NewtonCG": "newton_cg",
    "compare_second_order": "second_order",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
