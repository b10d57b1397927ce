"""MNIST's loss landscape in the 2-D views: weight snapshots -> a shared plane -> a loss grid.

- :mod:`.plane`: planes through weight space shared by all optimizers of a
  comparison (PCA, filter-normalised random directions, three points), and the
  projection of weight paths onto them with their off-plane residuals;
- :mod:`.grid`: loss and accuracy on a grid over a plane, many grid points per
  forward pass (first-layer linearity, ``torch.func.vmap``), memory estimated
  and checked first, cache helpers;
- :mod:`.compute`: run folder -> plane -> grid -> :class:`~optviz.engine.Trajectory`
  records (a :class:`Landscape`, cached in the run folder);
- :mod:`.pipeline`: a landscape -> the ordinary figures and animations, and the lecture figure.

Torch is imported inside the functions, so importing this package is cheap.

>>> from optviz.landscape import landscape_pipeline
>>> landscape_pipeline("runs/lecture", "out/landscape", plane="pca", grid=51)   # doctest: +SKIP
"""
from .grid import GridTooLarge, PlaneEvaluator, evaluate_weights, loss_grid, pointwise_losses
from .compute import PLANES, Landscape, LandscapePath, compute_landscape
from .pipeline import landscape_figures, landscape_pipeline, lecture_animation, lecture_figure, paths_figure
from .plane import Plane, Projection, filter_normalize, pca_plane, points_plane, random_plane

__all__ = ["PLANES", "Plane", "Projection", "pca_plane", "random_plane", "points_plane", "filter_normalize",
           "PlaneEvaluator", "GridTooLarge", "loss_grid", "pointwise_losses", "evaluate_weights", "Landscape",
           "LandscapePath", "compute_landscape", "landscape_figures", "landscape_pipeline", "paths_figure",
           "lecture_figure", "lecture_animation"]
