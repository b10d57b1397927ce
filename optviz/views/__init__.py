"""Figures: they read trajectories and fields, never optimizers or models.

- :mod:`~optviz.views.style`: the palette and the ``paper`` / ``slides`` / ``dark`` presets;
- :mod:`~optviz.views.field`: drawing primitives (a field's contours, a path, path styles),
  shared by the still figures and the animations.
"""
from .field import FieldArtists, PathArtists, PathStyle, draw_field, draw_path, path_styles
from .style import colour_for, figure_size, is_dark, style_context, style_names

__all__ = ["style_context", "style_names", "colour_for", "figure_size", "is_dark",
           "draw_field", "draw_path", "path_styles", "FieldArtists", "PathArtists", "PathStyle"]
