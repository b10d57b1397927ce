"""Analytic 2-D test functions and sampled fields: what the 2-D views draw.

>>> from optviz.surfaces import get_surface
>>> s = get_surface("rosenbrock")
>>> s.grad(s.minima).tolist()
[[0.0, 0.0]]
"""
from optviz.surfaces.field import GridField, ScalarField2D
from optviz.surfaces.library import SURFACES, get_surface, surface_names
from optviz.surfaces.surface import Surface

__all__ = ["ScalarField2D", "GridField", "Surface", "get_surface", "surface_names", "SURFACES"]
