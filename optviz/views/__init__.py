"""Figures: they read trajectories and fields, never optimizers or models.

- :mod:`~optviz.views.style`: the palette and the ``paper`` / ``slides`` / ``dark`` presets;
- :mod:`~optviz.views.field`: drawing primitives (a field's contours, a path, path styles),
  shared by the still figures and the animations;
- :mod:`~optviz.views.stills`: figures (contour with paths, 3-D surface, loss and distance,
  gradient field, dashboard), each returned as a ``Figure``;
- :mod:`~optviz.views.save`: ``save_figure(fig, "out.png")`` (PNG, SVG or PDF, atomic).
"""
from .field import FieldArtists, PathArtists, PathStyle, draw_field, draw_path, path_styles
from .save import FORMATS, save_figure
from .stills import contour_figure, dashboard_figure, gradient_field_figure, loss_figure, surface3d_figure
from .style import colour_for, figure_size, is_dark, style_context, style_names

__all__ = ["style_context", "style_names", "colour_for", "figure_size", "is_dark",
           "draw_field", "draw_path", "path_styles", "FieldArtists", "PathArtists", "PathStyle",
           "contour_figure", "surface3d_figure", "loss_figure", "gradient_field_figure", "dashboard_figure",
           "save_figure", "FORMATS"]
